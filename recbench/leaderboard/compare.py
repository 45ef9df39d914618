"""`recbench compare`: a candidate leaderboard against a baseline, as a regression gate.

A metric regresses when it moved in its bad direction by more than the tolerance and the
move is significant: when both sides are run folders holding per-user values, by a paired
bootstrap over the same users (the interval of candidate - baseline excludes zero);
otherwise, where the candidate has a confidence interval, by the baseline value lying
outside it. The tolerance is absolute, or relative to the baseline value
(`rel_tolerance`), whichever allows more. A metric's direction comes from whichever side
declares it, else from the metric registry, never from a default. A model present in the
baseline but missing (or failed) in the candidate regresses too, as does a missing or NaN
value (named), and a model compared on fewer seeds than its baseline. Boards whose
dataset or split fingerprints differ are not compared (exit 2) unless allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RecbenchError

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


def load_leaderboard(path: str | Path) -> dict[str, Any]:
    """A leaderboard.json, from the file or an OUT folder (built in memory from its
    results: compare never writes into the folders it compares)."""
    p = Path(path)
    if p.is_dir():
        if (p / "results.jsonl").exists() or (p / "cells").is_dir():
            from ..leaderboard import build_from_folder

            return build_from_folder(p)[0]
        if (p / "leaderboard.json").exists():
            p = p / "leaderboard.json"
        else:
            raise RecbenchError(f"{p}: no results.jsonl or leaderboard.json in this folder")
    if not p.exists():
        raise RecbenchError(f"{p}: no such file or folder")
    from ..results import read_json_file

    data = read_json_file(p, "leaderboard (not valid JSON)")
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
    paired: dict[str, float] | None = None  # paired bootstrap of candidate - baseline


def _per_user(folder: Path | None, task: str, model: str) -> dict[int, dict[str, Any]]:
    """seed -> per-user arrays of one (task, model) in a run folder (planned, ok cells)."""
    if folder is None or not (folder / "cells").is_dir():
        return {}
    from ..results import read_cells, read_per_user

    from ..results import read_json_file

    plan = None
    if (folder / "plan.json").exists():
        data = read_json_file(folder / "plan.json", "run plan")
        try:
            plan = {c["cell_id"] for c in data["cells"]}
        except (TypeError, KeyError):
            raise RecbenchError(f"{folder / 'plan.json'}: corrupt run plan (no cell list)"
                                ) from None
    out = {}
    for row in read_cells(folder):
        if (row.get("status") == "ok" and row["task"] == task and row["model"]["id"] == model
                and (plan is None or row["cell_id"] in plan)):
            values = read_per_user(folder, row["cell_id"])
            if values is not None:
                out[row["seed"]] = values
    return out


def paired_change(cand: dict[int, dict], base: dict[int, dict], metric: str,
                  values: tuple[float, float] | None = None, n_resamples: int = 1000,
                  level: float = 0.95) -> dict[str, Any] | None:
    """Paired bootstrap of candidate - baseline over the same users (per-user values
    averaged over the seeds both sides ran), or None when it cannot be paired: dict(diff,
    low, high, p_value) of paired_bootstrap, plus n_users and the seeds used.

    `values` (candidate, baseline) are the leaderboards' numbers: per-user values that do
    not reproduce them (an edited leaderboard, other seeds) are not used."""
    import numpy as np

    from ..metrics.uncertainty import paired_bootstrap

    seeds = sorted(set(cand) & set(base))
    seeds = [s for s in seeds if metric in cand[s] and metric in base[s]
             and np.array_equal(cand[s]["users"], base[s]["users"])]
    if not seeds:
        return None
    if values is not None:
        for side, stated in zip((cand, base), values):
            with np.errstate(invalid="ignore"):
                mean = float(np.mean([np.nanmean(side[s][metric]) for s in side
                                      if metric in side[s]]))
            if not math.isclose(mean, stated, rel_tol=1e-6, abs_tol=1e-9):
                return None
    a, b = (_unit_means(side, seeds, metric) for side in (cand, base))
    keep = ~(np.isnan(a) | np.isnan(b))
    if not keep.any():
        return None
    out = paired_bootstrap(a[keep], b[keep], n_resamples=n_resamples, seed=0, level=level)
    return {**out, "n_users": int(keep.sum()), "seeds": seeds}


def _unit_means(side: dict[int, dict], seeds: list[int], metric: str) -> Any:
    """Each unit's value averaged over the seeds that evaluated it (NaN skipped), units in
    order of first appearance. Units are matched by id ("users"), so seeds may evaluate
    different units (new songs of each seed's split, each seed's groups of artists); a
    unit NaN on every seed stays NaN."""
    import numpy as np

    ids = np.concatenate([np.asarray(side[s]["users"]) for s in seeds])
    v = np.concatenate([np.asarray(side[s][metric], dtype=np.float64) for s in seeds])
    _, first, inv = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    unit, ok = rank[inv.ravel()], ~np.isnan(v)
    total = np.bincount(unit[ok], weights=v[ok], minlength=len(first))
    count = np.bincount(unit[ok], minlength=len(first))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _finite(v: Any) -> float | None:
    """A metric value, or None when it is missing, null, NaN or infinite (treated alike)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _registry_direction(col: str) -> bool | None:
    """higher_is_better of the metric plugin a column names, or None (no registry)."""
    try:
        from ..registry import default_registry

        return default_registry().metric_direction(col)
    except Exception:  # noqa: BLE001 - no registry (broken plugin environment): unknown
        return None


def direction(col: str, cand_info: dict[str, Any], base_info: dict[str, Any]
              ) -> tuple[bool | None, str]:
    """(higher_is_better, note) of a metric: from whichever side declares it, else from
    the metric registry; None (and why) when unknown or when the two sides disagree.
    Never a default."""
    declared = {}
    for side, info in (("candidate", cand_info), ("baseline", base_info)):
        hib = (info.get(col) or {}).get("higher_is_better")
        if isinstance(hib, bool):
            declared[side] = hib
    if len(set(declared.values())) > 1:
        return None, ("direction differs: higher_is_better is "
                      f"{declared['candidate']} in the candidate, {declared['baseline']} "
                      "in the baseline")
    if declared:
        return next(iter(declared.values())), ""
    hib = _registry_direction(col)
    if hib is None:
        return None, "direction unknown (no higher_is_better declared, not a registered metric)"
    return hib, ""


def _n_seeds(row: dict[str, Any], metric: dict[str, Any]) -> int:
    n = metric.get("n_seeds")
    return n if isinstance(n, int) else len(row.get("seeds") or [])


def compare(candidate: dict[str, Any], baseline: dict[str, Any], *, tolerance: float = 0.01,
            rel_tolerance: float = 0.0, metrics: list[str] | None = None,
            allow_different_data: bool = False, candidate_dir: Path | None = None,
            baseline_dir: Path | None = None) -> tuple[list[Change], list[str]]:
    """Changes per (task, model, metric) and a list of data mismatches. With both run
    folders given, significance comes from a paired bootstrap over users.

    A drop is beyond tolerance when it exceeds max(tolerance, rel_tolerance * |baseline|)
    (as math.isclose does), so metrics on other scales (popularity@K, in listeners) can be
    gated relatively. A missing or NaN candidate value, a metric whose direction is
    unknown or disputed, and a model run on fewer seeds than in the baseline regress."""
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
        cand_info, base_info = cand.get("metric_info") or {}, base.get("metric_info") or {}
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
                b = _finite(bm.get("mean"))
                if crow is None:
                    changes.append(Change(task, mid, col, b, None, None, None, True,
                                          "failed in candidate" if mid in failed
                                          else "missing in candidate"))
                    continue
                cm = crow["metrics"].get(col) or {}
                c = _finite(cm.get("mean"))
                ci = cm.get("ci")
                if c is None or b is None:
                    if c is None and b is not None:
                        note = ("no value in candidate (missing, null or NaN)"
                                + (" — failed in candidate" if mid in failed else ""))
                    elif b is None and c is not None:
                        note = "no value in baseline (missing, null or NaN)"
                    else:
                        note = "no value on either side (missing, null or NaN)"
                    changes.append(Change(task, mid, col, b, c, None, ci,
                                          c is None and b is not None, note))
                    continue
                fewer = ""
                nb, nc = _n_seeds(brow, bm), _n_seeds(crow, cm)
                if nc < nb:
                    fewer = f"candidate has {nc} seed(s), baseline {nb}"
                hib, why_dir = direction(col, cand_info, base_info)
                if hib is None:
                    changes.append(Change(task, mid, col, b, c, c - b, ci, True,
                                          "; ".join(x for x in (why_dir, fewer) if x)))
                    continue
                worse = (b - c) if hib else (c - b)
                allowed = max(tolerance, rel_tolerance * abs(b))
                paired = None
                if candidate_dir is not None and baseline_dir is not None:
                    paired = paired_change(_per_user(candidate_dir, task, mid),
                                           _per_user(baseline_dir, task, mid), col, (c, b))
                if paired is not None and not math.isnan(paired["low"]):
                    significant = paired["high"] < 0 if hib else paired["low"] > 0
                    why = "paired bootstrap: not significant"
                else:
                    significant = True
                    if ci and _finite(ci[0]) is not None and _finite(ci[1]) is not None:
                        significant = not (ci[0] <= b <= ci[1])
                    why = "within candidate CI"
                regressed = (worse > allowed and significant) or bool(fewer)
                note = why if worse > allowed and not significant else ""
                note = "; ".join(x for x in (note, fewer) if x)
                changes.append(Change(task, mid, col, b, c, c - b, ci, regressed, note,
                                      paired))
    return changes, mismatches


def render(changes: list[Change]) -> str:
    """The changes as a table."""
    from tabulate import tabulate

    rows = []
    for ch in changes:
        status = "REGRESSED" if ch.regressed else "ok"
        ci = f"[{ch.candidate_ci[0]:.4f}, {ch.candidate_ci[1]:.4f}]" if (
            ch.candidate_ci and all(_finite(v) is not None for v in ch.candidate_ci)) else ""
        f = (lambda v: "–" if v is None else f"{v:.4f}")
        pd = (f"[{ch.paired['low']:+.4f}, {ch.paired['high']:+.4f}]" if ch.paired
              and not math.isnan(ch.paired["low"]) else "")
        rows.append([ch.task, ch.model, ch.metric, f(ch.baseline), f(ch.candidate),
                     "–" if ch.delta is None else f"{ch.delta:+.4f}", ci, pd, status, ch.note])
    return tabulate(rows, headers=["task", "model", "metric", "baseline", "candidate", "delta",
                                   "candidate CI", "paired delta CI", "status", "note"],
                    tablefmt="github", disable_numparse=True)
