"""A run folder's results: the cell files, results.jsonl (appended, fsync'd) and their readers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

from ..errors import RecbenchError
from ..io.atomic import atomic_write_bytes, atomic_write_text, new_file_mode
from .rows import dumps


def write_cell(out: Path, row: dict[str, Any]) -> None:
    """Store one finished cell atomically and append it to results.jsonl.

    A row's ``_per_user`` arrays (per-user metric values, for paired comparisons) go to
    ``cells/<cell_id>.npz`` first, so a cell's JSON never points at a missing file. One
    fsync per cell (the results.jsonl append): the cell files are renamed into place
    without one, which a kill -9 cannot tear; after a power cut a damaged cell file is
    named as corrupt and `--resume` recomputes it."""
    per_user = row.pop("_per_user", None)
    if per_user:
        import io

        import numpy as np

        buf = io.BytesIO()
        arrays = {k: np.asarray(v) for k, v in per_user.items()}
        # numpy's stub lets a ** mapping reach `allow_pickle`; these keys are metric names
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(out / "cells" / f"{row['cell_id']}.npz", buf.getvalue(),
                           fsync=False)
    line = dumps(row, sort_keys=True)
    atomic_write_text(out / "cells" / f"{row['cell_id']}.json", line, fsync=False)
    append_jsonl(out / "results.jsonl", line)


def append_jsonl(path: Path, line: str) -> None:
    """Append one JSON line to `path` and fsync it. A torn last line left by a kill in
    the middle of an earlier append is cut off first."""
    path = Path(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, new_file_mode())
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            os.ftruncate(fd, _last_line_end(fd, size))
            size = os.fstat(fd).st_size
        data = (line.rstrip("\n") + "\n").encode("utf-8")
        written = 0
        while written < len(data):
            written += os.pwrite(fd, data[written:], size + written)
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_line_end(fd: int, size: int, chunk: int = 1 << 16) -> int:
    """The offset just after the last newline in the first `size` bytes of `fd` (0 if none)."""
    end = size
    while end > 0:
        start = max(0, end - chunk)
        block = os.pread(fd, end - start, start)
        i = block.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        end = start
    return 0


def read_per_user(out: Path, cell_id: str) -> dict[str, Any] | None:
    """The per-user values stored beside a cell, or None (RecbenchError naming the file
    when it is corrupt)."""
    path = Path(out) / "cells" / f"{cell_id}.npz"
    if not path.exists():
        return None
    import numpy as np

    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except Exception as exc:  # noqa: BLE001 - BadZipFile, ValueError, EOFError, OSError...
        raise RecbenchError(f"{path}: corrupt per-user values ({_short(exc)}); "
                            f"`recbench run --resume` recomputes that cell") from None


def per_user_readable(out: Path, cell_id: str) -> bool:
    """False when the cell's .npz exists but cannot be read."""
    try:
        read_per_user(out, cell_id)
    except RecbenchError:
        return False
    return True


def _short(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def read_cell_files(out: Path, corrupt: list[Path] | None = None) -> list[dict[str, Any]]:
    """The rows of OUT/cells/*.json, oldest first. Unreadable files are left out and, when
    `corrupt` is given, appended to it."""
    rows = []
    cells = Path(out) / "cells"
    if cells.is_dir():
        for p in sorted(cells.glob("*.json")):
            try:
                row = json.loads(p.read_text(encoding="utf-8"))
                if not isinstance(row, dict) or "cell_id" not in row:
                    raise ValueError("not a result row")
                rows.append(row)
            except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError included
                if corrupt is not None:
                    corrupt.append(p)
    rows.sort(key=lambda r: (r.get("finished_at") or "", r.get("cell_id") or ""))
    return rows


def read_cells(out: Path, corrupt: list[Path] | None = None) -> list[dict[str, Any]]:
    """All stored cell rows, oldest first (unparsable files are left out, and listed in
    `corrupt` when given); a folder without cell files is read from its results.jsonl."""
    out = Path(out)
    rows = read_cell_files(out, corrupt)
    has_cells = (out / "cells").is_dir() and any((out / "cells").glob("*.json"))
    if not has_cells and (out / "results.jsonl").exists():
        rows = read_jsonl(out / "results.jsonl")
        rows.sort(key=lambda r: (r.get("finished_at") or "", r.get("cell_id") or ""))
    return rows


def rebuild_jsonl(out: Path) -> None:
    """Rewrite results.jsonl from the cell files (a folder without cells/ is left alone)."""
    out = Path(out)
    if not (out / "cells").is_dir():
        return
    rows = read_cell_files(out)
    atomic_write_text(out / "results.jsonl",
                      "".join(dumps(r, sort_keys=True) + "\n" for r in rows))


def read_json_file(path: Path, what: str, hint: str = "") -> Any:
    """A JSON file the user may have damaged: a RecbenchError naming it when corrupt."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecbenchError(f"{path}:{exc.lineno}: corrupt {what} ({exc.msg}){hint}") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise RecbenchError(f"{path}: corrupt {what} ({_short(exc)}){hint}") from None


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
