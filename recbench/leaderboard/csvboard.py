"""The leaderboard as CSV: one line per (task, model) row of every board."""

from __future__ import annotations

import csv
import io
from typing import Any


def render_csv(lb: dict[str, Any]) -> str:
    """One CSV line per (task, model): means, CI bounds, std, throughput."""
    buf = io.StringIO()
    w = csv.writer(buf)
    cols = sorted({c for b in lb["tasks"].values() for c in b["columns"]})
    rates = sorted({k for b in lb["tasks"].values() for e in b["rows"]
                    for k in e.get("throughput", {})})
    w.writerow(["task", "section", "rank", "model_id", "label", "uses_test_interactions",
                "synthetic", "dataset_fingerprint", "split_fingerprint", "n_seeds"]
               + [f"{c}{s}" for c in cols for s in ("", "_ci_low", "_ci_high", "_std")]
               + rates + ["fit_s"])
    for task, b in lb["tasks"].items():
        ds, sp = b.get("dataset") or {}, b.get("split") or {}
        for e in b["rows"]:
            line = [task, e["section"], e.get("rank", ""), e.get("model_id", ""), e["label"],
                    e.get("uses_test_interactions"), ds.get("synthetic"),
                    ds.get("fingerprint"), sp.get("fingerprint"), len(e.get("seeds", []))]
            for c in cols:
                m = e["metrics"].get(c, {})
                ci = m.get("ci") or [None, None]
                line += [m.get("mean"), ci[0], ci[1], m.get("std")]
            line += [e.get("throughput", {}).get(r) for r in rates]
            line.append((e.get("timing") or {}).get("fit_s"))
            w.writerow(["" if v is None else v for v in line])
    return buf.getvalue()
