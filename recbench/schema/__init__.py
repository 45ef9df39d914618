"""Exported schemas of recbench's stable files.

``result_row.schema.json`` is the JSON Schema of a result row (generated from
:class:`recbench.schema.result_row.ResultRow` by :func:`result_row_schema`; a test checks
that the committed file equals the generated one). Regenerate it with
``python -m recbench.schema``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("result_row.schema.json")


def result_row_schema() -> dict[str, Any]:
    """The JSON Schema of a result row, with its schema version."""
    from ..results import SCHEMA_VERSION
    from .result_row import ResultRow

    schema = ResultRow.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://recbench/schema/result_row.schema.json",
            "x-schema-version": SCHEMA_VERSION, **schema}


def result_row_schema_text() -> str:
    """`result_row_schema()` as the committed file's text."""
    return json.dumps(result_row_schema(), indent=1, sort_keys=True) + "\n"


def write_result_row_schema(path: Path = SCHEMA_FILE) -> Path:
    """Write the result row's JSON Schema to `path` (default: the committed file)."""
    Path(path).write_text(result_row_schema_text(), encoding="utf-8")
    return Path(path)
