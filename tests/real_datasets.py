"""Test helpers for the published-dataset loaders: a registry that includes a loader
module even when the installed entry points do not list it yet, an in-process suite run
on it, and small WAV writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SUITE = """
[suite]
name = "{name}-fixture"
bootstrap = 20

[dataset]
name = "{name}"
root = "{root}"
{options}

[split]
name = "{split}"
{split_options}

[[tasks]]
name = "{task}"
{task_options}

{models}
{extra}
"""

RECOMMENDATION_MODELS = """
[[models]]
name = "popularity"

[[models]]
name = "random"
"""


def registry_with(module):
    """The installed plugins plus `module` (its hooks added when the entry points do not
    already load it)."""
    from recbench.registry import build_registry

    reg = build_registry()
    names = set()
    for hook in ("recbench_register_datasets",):
        impl = getattr(module, hook, None)
        if impl is not None:
            impl(lambda cls: names.add(cls.name))
    if names <= set(reg.names("dataset")):
        return reg
    return build_registry([module])


def run_suite(tmp_path: Path, monkeypatch, module, root: Path, *, options: str = "",
              split: str = "warm", split_options: str = "", task: str = "recommendation",
              task_options: str = 'metrics = ["auc", "ndcg@3"]',
              models: str = RECOMMENDATION_MODELS, extra: str = ""
              ) -> tuple[int, Path, str]:
    """Run a small suite on `module`'s dataset in this process (local executor); returns
    (exit status, output folder, stderr text)."""
    import contextlib
    import io

    from recbench.cli import main
    from recbench.registry import discovery

    name = _dataset_name(module)
    monkeypatch.setattr(discovery, "_DEFAULT", registry_with(module))
    suite = tmp_path / f"{name}.toml"
    suite.write_text(SUITE.format(name=name, root=str(root).replace("\\", "/"),
                                  options=options, split=split, split_options=split_options,
                                  task=task, task_options=task_options, models=models,
                                  extra=extra))
    out = tmp_path / f"out-{name}"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["run", str(suite), "-o", str(out), "-q", "--cache-dir",
                   str(tmp_path / "cache")])
    return rc, out, err.getvalue()


def _dataset_name(module) -> str:
    found = []
    module.recbench_register_datasets(lambda cls: found.append(cls.name))
    return found[0]


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def check_leaderboard(out: Path, task: str, dataset: str, protocol: str) -> dict:
    """The leaderboard names the dataset, protocol and fingerprint of the rows."""
    rows = rows_of(out)
    lb = json.loads((out / "leaderboard.json").read_text())
    block = lb["tasks"][task]
    assert block["dataset"]["name"] == dataset
    assert block["dataset"]["fingerprint"] == rows[0]["dataset"]["fingerprint"]
    md = (out / "leaderboard.md").read_text()
    assert dataset in md and rows[0]["dataset"]["fingerprint"] in md and protocol in md
    assert "SYNTHETIC" not in md
    return lb


def write_wav(path: Path, freq: float, seconds: float = 1.0, sr: int = 8000) -> Path:
    """A short mono sine clip (PCM 16)."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = path.suffix.lstrip(".").upper()
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr,
             format=fmt if fmt in ("WAV", "FLAC", "MP3", "OGG") else None)
    return path
