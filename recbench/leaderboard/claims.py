"""Claims on a board: does row A beat row B, judged on the same users?

Each row's interval on the board is a bootstrap over users of that row alone; two rows whose
intervals overlap can still differ reliably, because most of the spread is which users
were drawn, and both rows saw the same users. A claim (the suite's ``[[claims]]``,
recbench.suite.claims) is judged by a paired bootstrap: each user's value is averaged over
the seeds both rows ran, the difference ``model - baseline`` is resampled over users
(recbench.uncertainty.paired_bootstrap, the suite's resample count and level), and the
verdict is

- ``holds``: the interval excludes 0 on the expected side;
- ``reversed``: it excludes 0 on the other side;
- ``not significant``: it contains 0;
- ``not judged``: a row, its per-user values or common users are missing (and why).

No correction for testing several claims at once is applied: read a board's claims as
separate questions stated before the run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

HOLDS, REVERSED, NOT_SIGNIFICANT, NOT_JUDGED = ("holds", "reversed", "not significant",
                                                "not judged")


def judge_claims(out: Path, lb: dict[str, Any], claims: list[dict[str, Any]]) -> None:
    """Add ``board["claims"]`` (a list of judged claims) to each board of `lb` that a claim
    names, from the per-user values stored in OUT/cells. A claim's task with no board
    (nothing ran) is skipped."""
    from .compare import _per_user, paired_change

    for c in claims:
        board = lb["tasks"].get(c["task"])
        if board is None:
            continue
        judged = {k: c[k] for k in ("label", "model", "baseline", "metric", "expect")}
        judged.update(diff=None, low=None, high=None, p_value=None, n_users=0, seeds=[],
                      level=c.get("confidence", 0.95), verdict=NOT_JUDGED, note="",
                      unit=_unit(board, c["metric"]))
        rows = {e.get("model_id"): e for e in board["rows"]}
        missing = [m for m in (c["model"], c["baseline"]) if m not in rows]
        if missing:
            judged["note"] = f"no row for {', '.join(missing)} on this board"
        elif c["metric"] not in board["columns"]:
            judged["note"] = f"this board has no column {c['metric']!r}"
        else:
            paired = paired_change(_per_user(out, c["task"], c["model"]),
                                   _per_user(out, c["task"], c["baseline"]), c["metric"],
                                   n_resamples=c.get("bootstrap", 1000),
                                   level=c.get("confidence", 0.95))
            if paired is None or math.isnan(paired["low"]):
                judged["note"] = (f"no per-unit {c['metric']} values common to both rows "
                                  f"(same seeds and {judged['unit']})")
            else:
                judged.update({k: paired[k] for k in ("diff", "low", "high", "p_value",
                                                      "n_users", "seeds")})
                judged["verdict"] = _verdict(paired["low"], paired["high"], c["expect"])
        board.setdefault("claims", []).append(judged)


def _unit(board: dict[str, Any], metric: str) -> str:
    """What a column's per-unit values are over: its ``paired_over`` when the task pairs on
    another unit than its intervals resample (genres of artist groups), else its
    ``ci_over`` (users, songs)."""
    info = (board.get("metric_info") or {}).get(metric) or {}
    return str(info.get("paired_over") or info.get("ci_over") or "users")


def _verdict(low: float, high: float, expect: str) -> str:
    """holds / reversed / not significant for an interval of model - baseline."""
    above, below = low > 0, high < 0
    if not (above or below):
        return NOT_SIGNIFICANT
    return HOLDS if above == (expect == "higher") else REVERSED


def claims_context(board: dict[str, Any]) -> dict[str, Any] | None:
    """What the templates show of a board's claims: rows of text and a Markdown table
    (tabulate), or None when the board has no claims."""
    claims = board.get("claims")
    if not claims:
        return None
    from tabulate import tabulate

    def f(v: float | None, sign: bool = True) -> str:
        return "–" if v is None else (f"{v:+.4f}" if sign else f"{v:.4f}")
    level = claims[0].get("level", 0.95)
    header = ["claim", "model", "baseline", "metric", "expected", "model − baseline",
              f"{level:.0%} paired CI", "p", "users", "seeds", "verdict"]
    rows = []
    for c in claims:
        ci = "–" if c["low"] is None else f"[{f(c['low'])}, {f(c['high'])}]"
        verdict = c["verdict"] + (f" ({c['note']})" if c.get("note") else "")
        rows.append([c["label"], c["model"], c["baseline"], c["metric"], c["expect"],
                     f(c["diff"]), ci, f(c["p_value"], sign=False),
                     str(c["n_users"]) + ("" if c.get("unit", "users") == "users"
                                          else f" {c['unit']}"),
                     ",".join(str(s) for s in c["seeds"]) or "–", verdict])
    units = sorted({c.get("unit", "users") for c in claims})
    over = "users" if units == ["users"] else "units (" + ", ".join(units) + ")"
    caption = (f"Claims stated in the suite, judged by a paired bootstrap over the {over} both "
               f"rows were evaluated on (per-{'user' if over == 'users' else 'unit'} values "
               f"averaged over the seeds both ran; "
               f"{level:.0%} percentile interval of model − baseline; no multiple-testing "
               f"correction). *holds*: the interval excludes 0 on the expected side.")
    return {"header": header, "rows": rows, "caption": caption,
            "markdown": tabulate(rows, headers=header, tablefmt="github",
                                 disable_numparse=True)}
