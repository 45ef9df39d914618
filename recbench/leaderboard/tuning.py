"""What a leaderboard says about tuned rows: the budget each received, in words and as
data (every model of a fair suite gets the same; ``[tuning.per_model]`` shows here)."""

from __future__ import annotations

from typing import Any


def budget_text(budget: dict[str, Any]) -> str:
    """A search budget in words.

    >>> budget_text({"trials": 20, "seconds": None}), budget_text({"trials": 5, "seconds": 60})
    ('budget 20 trials', 'budget 5 trials or 60 s')
    """
    parts = []
    if budget.get("trials") is not None:
        parts.append(f"{budget['trials']} trials")
    if budget.get("seconds") is not None:
        parts.append(f"{budget['seconds']:g} s")
    return "budget " + " or ".join(parts)


def tuning_summary(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """What a tuned entry's seeds received: budget, sampler, metric, trials run per seed
    and the chosen parameters per seed (None for hand-set rows)."""
    blocks = [r["model"].get("tuning") for r in rows]
    if not any(blocks):
        return None
    b0 = next(b for b in blocks if b)
    return {"budget": b0["budget"], "sampler": b0["sampler"], "metric": b0["metric"],
            "trials_run": [b["trials_run"] if b else None for b in blocks],
            "best_value": [b["best_value"] if b else None for b in blocks],
            "chosen": [b["chosen"] if b else None for b in blocks]}
