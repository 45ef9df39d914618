"""The result row: its schema version, validation and strict JSON (NaN and infinities as null)."""

from __future__ import annotations

import json
import math
from typing import Any

SCHEMA_VERSION = 1
"""Version of the result row's meaning: bumps only when a field changes meaning (adding
an optional field does not)."""


_ROW_MODELS = ("ResultRow", "DatasetBlock", "SplitBlock", "ModelBlock", "MetricInfoBlock")


def validate_row(row: dict[str, Any]) -> dict[str, Any]:
    """`row` checked against :class:`ResultRow` and returned as stored (the keys it had);
    a ``_per_user`` entry (stored beside the row) is kept as it is."""
    from ..schema.result_row import ResultRow

    per_user = row.get("_per_user")
    out = ResultRow.model_validate({k: v for k, v in row.items() if k != "_per_user"}
                                   ).to_json_dict()
    if per_user is not None:
        out["_per_user"] = per_user
    return out


def finite_or_none(obj: Any) -> Any:
    """`obj` with NaN and infinite floats (also numpy scalars and arrays) replaced by None,
    so that it serialises as strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [finite_or_none(v) for v in obj]
    if type(obj).__module__ == "numpy":
        return finite_or_none(_json_default(obj))
    return obj


def dumps(obj: Any, **kw: Any) -> str:
    """Strict JSON (no bare NaN / Infinity: they become null)."""
    return json.dumps(finite_or_none(obj), allow_nan=False, default=_json_default, **kw)


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
