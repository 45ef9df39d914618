"""The result row (one per cell: task x model x seed) and its atomic storage.

Each finished cell is written to ``OUT/cells/<cell_id>.json`` (temp file + rename, so a
kill -9 never leaves half a row), then ``OUT/results.jsonl`` is rewritten the same way
from all cells. ``results.jsonl`` is the stable interface; its rows follow `ResultRow`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, TypedDict

SCHEMA_VERSION = 1


class DatasetBlock(TypedDict):
    name: str  # dataset plugin name
    fingerprint: str  # content hash of ids, counts, tags, audio identities
    synthetic: bool  # generated data: labelled as such everywhere
    n_users: int
    n_songs: int
    n_interactions: int
    params: dict[str, Any]  # the loader's resolved parameters


class SplitBlock(TypedDict):
    name: str  # split plugin name
    seed: int  # split seed (fixed across model seeds)
    fingerprint: str  # changes when and only when the split changes
    protocol: str  # cold-item | warm | cold-user


class ModelBlock(TypedDict):
    id: str  # unique within the suite
    name: str  # recommender plugin name
    label: str  # display name
    params: dict[str, Any]  # fully resolved parameters
    config_hash: str  # hash of name + params
    uses_test_interactions: bool  # oracle rows: ranked apart
    consumes: list[str]  # information the model reads
    provider: str  # distribution and version of the plugin


class ResultRow(TypedDict):
    schema: int  # SCHEMA_VERSION
    cell_id: str  # hash of suite name, task, model config, seed, dataset and split specs
    suite: str  # suite name
    task: str  # task plugin name
    protocol: str  # the split's protocol
    dataset: DatasetBlock
    split: SplitBlock
    model: ModelBlock
    seed: int  # model seed
    metrics: dict[str, float]  # column name -> value
    metrics_ci: dict[str, list[float]]  # column name -> [low, high] (bootstrap over users)
    metric_info: dict[str, dict[str, Any]]  # column -> {label, higher_is_better, n_users, excluded}
    throughput: dict[str, float]  # e.g. train_examples_per_s, scoring_pairs_per_s
    timing: dict[str, float]  # fit_s, eval_s, total_s (seconds)
    peak_rss_mb: float  # peak resident memory of the process at the end of the cell
    memory: dict[str, float]  # peak RSS (MiB) after_data, after_fit (if fitted here), after_eval
    device: dict[str, Any]  # {type: cpu|cuda, cpu, gpu}
    env: dict[str, Any]  # python, recbench, torch, implicit, librosa, numpy, platform, git_commit
    status: str  # ok | failed
    error: str | None  # one-line error for failed cells
    extra: dict[str, Any]  # task-specific diagnostics (e.g. popularity buckets)
    finished_at: str  # ISO time


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old or the new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_cell(out: Path, row: dict[str, Any]) -> None:
    """Store one finished cell atomically and refresh results.jsonl.

    A row's ``_per_user`` arrays (per-user metric values, for paired comparisons) go to
    ``cells/<cell_id>.npz`` first, so a cell's JSON never points at a missing file."""
    per_user = row.pop("_per_user", None)
    if per_user:
        import numpy as np

        path = out / "cells" / f"{row['cell_id']}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in per_user.items()})
        os.replace(tmp, path)
    atomic_write_text(out / "cells" / f"{row['cell_id']}.json",
                      json.dumps(row, sort_keys=True, default=_json_default))
    rebuild_jsonl(out)


def read_per_user(out: Path, cell_id: str) -> dict[str, Any] | None:
    """The per-user values stored beside a cell, or None."""
    path = Path(out) / "cells" / f"{cell_id}.npz"
    if not path.exists():
        return None
    import numpy as np

    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def read_cells(out: Path) -> list[dict[str, Any]]:
    """All stored cell rows, oldest first (unparsable files are skipped)."""
    rows = []
    cells = out / "cells"
    if cells.is_dir():
        for p in sorted(cells.glob("*.json")):
            try:
                rows.append(json.loads(p.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                continue
    if not rows and (out / "results.jsonl").exists():
        rows = read_jsonl(out / "results.jsonl")
    rows.sort(key=lambda r: (r.get("finished_at", ""), r.get("cell_id", "")))
    return rows


def rebuild_jsonl(out: Path) -> None:
    """Rewrite results.jsonl from the cell files."""
    rows = read_cells(out)
    atomic_write_text(out / "results.jsonl",
                      "".join(json.dumps(r, sort_keys=True, default=_json_default) + "\n"
                              for r in rows))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a results.jsonl file (a truncated last line is ignored)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def finished_ids(rows: Iterable[dict[str, Any]]) -> set[str]:
    """Cell ids whose status is ok (what --resume skips)."""
    return {r["cell_id"] for r in rows if r.get("status") == "ok"}


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
