"""`recbench compare`: a candidate leaderboard against a baseline, as a regression gate.

A metric regresses when it moved in its bad direction by more than the tolerance and,
where the candidate has a confidence interval, the baseline value lies outside it. A model
present in the baseline but missing (or failed) in the candidate regresses too. Boards
whose dataset or split fingerprints differ are not compared (exit 2) unless allowed.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RecbenchError

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


def load_leaderboard(path: str | Path) -> dict[str, Any]:
    """A leaderboard.json, from the file or an OUT folder (rebuilt from its results)."""
    p = Path(path)
    if p.is_dir():
        if (p / "results.jsonl").exists() or (p / "cells").is_dir():
            from .leaderboard import write_leaderboards

            return write_leaderboards(p)
        if (p / "leaderboard.json").exists():
            p = p / "leaderboard.json"
        else:
            raise RecbenchError(f"{p}: no results.jsonl or leaderboard.json in this folder")
    if not p.exists():
        raise RecbenchError(f"{p}: no such file or folder")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecbenchError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or "tasks" not in data:
        raise RecbenchError(f"{p}: not a recbench leaderboard.json (no 'tasks' key)")
    return data


@dataclass
class Change:
    """One compared (task, model, metric)."""

    task: str
    model: str
    metric: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    candidate_ci: list[float] | None
    regressed: bool
    note: str = ""


def compare(candidate: dict[str, Any], baseline: dict[str, Any], *, tolerance: float = 0.01,
            metrics: list[str] | None = None, allow_different_data: bool = False
            ) -> tuple[list[Change], list[str]]:
    """Changes per (task, model, metric) and a list of data mismatches."""
    changes: list[Change] = []
    mismatches: list[str] = []
    for task, base in baseline["tasks"].items():
        cand = candidate["tasks"].get(task)
        if cand is None:
            changes.append(Change(task, "*", "*", None, None, None, None, True,
                                  "task missing in candidate"))
            continue
        for part in ("dataset", "split"):
            bfp = (base.get(part) or {}).get("fingerprint")
            cfp = (cand.get(part) or {}).get("fingerprint")
            if bfp != cfp:
                mismatches.append(f"{task}: {part} fingerprint {cfp} (candidate) != {bfp} "
                                  f"(baseline)")
        if mismatches and not allow_different_data:
            continue
        info = {**base.get("metric_info", {}), **cand.get("metric_info", {})}
        cand_rows = {r.get("model_id"): r for r in cand["rows"] if r.get("model_id")}
        failed = {f["model_id"] for f in cand.get("failed", [])}
        for brow in base["rows"]:
            mid = brow.get("model_id")
            if not mid:  # reference rows
                continue
            crow = cand_rows.get(mid)
            for col, bm in brow["metrics"].items():
                if metrics and col not in metrics:
                    continue
                b = bm.get("mean")
                if crow is None:
                    changes.append(Change(task, mid, col, b, None, None, None, True,
                                          "failed in candidate" if mid in failed
                                          else "missing in candidate"))
                    continue
                cm = crow["metrics"].get(col, {})
                c = cm.get("mean")
                if b is None or c is None or (isinstance(c, float) and math.isnan(c)):
                    changes.append(Change(task, mid, col, b, c, None, cm.get("ci"),
                                          c is None and b is not None, "no value"))
                    continue
                hib = info.get(col, {}).get("higher_is_better", True)
                worse = (b - c) if hib else (c - b)
                ci = cm.get("ci")
                outside = True
                if ci and ci[0] is not None and ci[1] is not None:
                    outside = not (ci[0] <= b <= ci[1])
                regressed = worse > tolerance and outside
                note = ""
                if worse > tolerance and not outside:
                    note = "within candidate CI"
                changes.append(Change(task, mid, col, b, c, c - b, ci, regressed, note))
    return changes, mismatches


def render(changes: list[Change]) -> str:
    """The changes as a table."""
    from tabulate import tabulate

    rows = []
    for ch in changes:
        status = "REGRESSED" if ch.regressed else "ok"
        ci = f"[{ch.candidate_ci[0]:.4f}, {ch.candidate_ci[1]:.4f}]" if (
            ch.candidate_ci and None not in ch.candidate_ci) else ""
        f = (lambda v: "–" if v is None else f"{v:.4f}")
        rows.append([ch.task, ch.model, ch.metric, f(ch.baseline), f(ch.candidate),
                     "–" if ch.delta is None else f"{ch.delta:+.4f}", ci, status, ch.note])
    return tabulate(rows, headers=["task", "model", "metric", "baseline", "candidate", "delta",
                                   "candidate CI", "status", "note"], tablefmt="github",
                    disable_numparse=True)
