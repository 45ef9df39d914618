"""The result row (one per cell: task x model x seed) and its atomic storage.

Each finished cell is written to ``OUT/cells/<cell_id>.json`` (temp file + rename, so a
kill -9 never leaves half a row), then appended as one line to ``OUT/results.jsonl``
(fsync'd). ``results.jsonl`` is rebuilt from the cell files only when a run starts, after
an interrupted run and by ``recbench leaderboard``; a torn last line (a kill in the middle
of an append) is ignored by readers and cut off by the next append. ``results.jsonl`` is
the stable interface; its rows follow `ResultRow` (:mod:`recbench.schema.result_row`,
exported as ``recbench/schema/result_row.schema.json``), and it is strict JSON (NaN and
infinities are written as null). Every result file is created with the same permissions
(0666 less the umask).
"""

from __future__ import annotations

from typing import Any

from ..io.atomic import atomic_write_bytes, atomic_write_text
from .rows import _ROW_MODELS, SCHEMA_VERSION, dumps, finite_or_none, validate_row
from .store import (append_jsonl, finished_ids, per_user_readable, read_cell_files, read_cells,
                    read_json_file, read_jsonl, read_per_user, rebuild_jsonl, write_cell)


def __getattr__(name: str) -> Any:
    """`ResultRow` and its blocks, imported on first use (pydantic; see
    :mod:`recbench.schema.result_row`)."""
    if name in _ROW_MODELS:
        from ..schema import result_row

        return getattr(result_row, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCHEMA_VERSION", "append_jsonl", "atomic_write_bytes", "atomic_write_text", "dumps",
           "finished_ids", "finite_or_none", "per_user_readable", "read_cell_files", "read_cells",
           "read_json_file", "read_jsonl", "read_per_user", "rebuild_jsonl", "validate_row",
           "write_cell"]
