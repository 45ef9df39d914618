"""What a board's confidence intervals are: their level and what their bootstrap resamples."""

from __future__ import annotations

from typing import Any


def ci_label(board: dict[str, Any]) -> str:
    """'95% CI' from the board's recorded confidence level ('CI' when not recorded)."""
    level = board.get("ci_level")
    if isinstance(level, (int, float)) and 0 < level < 1:
        return f"{level * 100:g}% CI"
    return "CI"


def ci_over(board: dict[str, Any]) -> str:
    """What the board's intervals resample, from its columns' ``metric_info[c]["ci_over"]``
    ("users" where a row does not say, as rows before it was recorded): "users", or e.g.
    "artists (ari, nmi); songs (genre_accuracy)" when the columns differ."""
    info = board.get("metric_info") or {}
    units: dict[str, list[str]] = {}
    for c in board.get("columns") or []:
        units.setdefault(str((info.get(c) or {}).get("ci_over") or "users"), []).append(c)
    if len(units) <= 1:
        return next(iter(units), "users")
    return "; ".join(f"{u} ({', '.join(cols)})" for u, cols in units.items())
