"""Self-contained HTML leaderboard and PNG plots (matplotlib, Agg backend)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from . import defaults
from .leaderboard import SECTION_REFERENCE, ci_label, table_rows, task_class, title
from .results import atomic_write_bytes, atomic_write_text

PLOT_NAME = "leaderboard.png"


def _primary_board(lb: dict[str, Any]) -> dict[str, Any] | None:
    boards = lb.get("tasks", {})
    return boards.get(defaults.TASK) or next(iter(boards.values()), None)


def write_plots(out: Path, lb: dict[str, Any]) -> Path | None:
    """OUT/leaderboard.png: the primary metric (CI bars at the board's level) against
    scoring throughput per model, and the AUC by song-popularity bucket. Returns the path, or None if no data."""
    board = _primary_board(lb)
    if not board or not board.get("primary_metric"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = board["primary_metric"]
    rows = [r for r in board["rows"] if r["section"] != SECTION_REFERENCE
            and r["metrics"].get(metric, {}).get("mean") is not None]
    if not rows:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    for r in rows:
        m = r["metrics"][metric]
        tp = r.get("throughput", {}).get("scoring_pairs_per_s") or float("nan")
        ci = m.get("ci")
        yerr = None
        if ci and None not in ci:
            yerr = [[max(0.0, m["mean"] - ci[0])], [max(0.0, ci[1] - m["mean"])]]
        oracle = r.get("uses_test_interactions")
        ax1.errorbar([tp], [m["mean"]], yerr=yerr, fmt="s" if oracle else "o", capsize=4,
                     label=r["label"] + (" (oracle)" if oracle else ""))
        if not math.isnan(tp):
            ax1.annotate(r["label"], (tp, m["mean"]), textcoords="offset points",
                         xytext=(5, 5), fontsize=8)
    ax1.set_xscale("log")
    ax1.set_xlabel("scoring throughput ((user, song) pairs / s, log scale)")
    label = board.get("metric_info", {}).get(metric, {}).get("label") or metric
    ax1.set_ylabel(f"{label} ({ci_label(board)})")
    ax1.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax1.set_title(f"{metric} vs throughput")
    ax1.legend(fontsize=7, loc="best")

    cls = task_class(board)
    chart = cls.diagnostics_chart(rows) if cls is not None else None
    if chart is not None and chart.series:
        n = len(chart.groups)
        width = 0.8 / max(1, len(chart.series))
        for i, (label, values) in enumerate(chart.series.items()):
            vals = [v if v is not None else float("nan") for v in values]
            ax2.bar([b + i * width for b in range(n)], vals, width=width, label=label)
        ax2.set_xticks([b + 0.4 - width / 2 for b in range(n)], chart.groups)
        if chart.baseline is not None:
            ax2.axhline(chart.baseline, color="grey", lw=0.8, ls=":")
        if chart.ylim is not None:
            ax2.set_ylim(*chart.ylim)
        ax2.set_ylabel(chart.ylabel)
        ax2.set_title(chart.title)
        ax2.legend(fontsize=7)
    else:
        ax2.set_axis_off()
    fig.suptitle(title(board, lb.get("suite")), fontsize=10)
    fig.tight_layout()
    path = Path(out) / PLOT_NAME
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())  # same permissions as every result file
    return path


def render_html(lb: dict[str, Any], png: bytes | None = None) -> str:
    """The leaderboard as one HTML page (tables, notes and the plot inlined)."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>recbench: {html.escape(str(lb.get('suite')))}</title><style>",
             "body{font-family:sans-serif;margin:2em;max-width:1400px}"
             "table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right}"
             "td:nth-child(2),th:nth-child(2){text-align:left}"
             ".synthetic{background:#fff3cd;border:1px solid #e0b000;padding:.6em}"
             "tr.oracle{background:#f1f1f1;font-style:italic}tr.ref{color:#666}",
             "</style></head><body>",
             f"<h1>Leaderboard: {html.escape(str(lb.get('suite')))}</h1>"]
    for board in lb.get("tasks", {}).values():
        ds = board.get("dataset") or {}
        parts.append(f"<h2>{html.escape(title(board, lb.get('suite')))}</h2>")
        if ds.get("synthetic"):
            parts.append("<p class='synthetic'><b>Synthetic data.</b> Not comparable to "
                         "published results on real data.</p>")
        if ds.get("notice"):
            parts.append(f"<p class='synthetic'><b>NOTICE:</b> {html.escape(ds['notice'])}</p>")
        sp = board.get("split") or {}
        parts.append(f"<p>protocol <code>{html.escape(str(board.get('protocol')))}</code>; "
                     f"dataset fingerprint <code>{ds.get('fingerprint')}</code>; split "
                     f"fingerprint <code>{sp.get('fingerprint')}</code>; primary metric "
                     f"<code>{html.escape(str(board.get('primary_metric')))}</code></p>")
        header, rows = table_rows(board)
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                     + "</tr>")
        for entry, row in zip(board["rows"], rows):
            cls = ("oracle" if entry["section"].startswith("oracle") else
                   "ref" if entry["section"] == SECTION_REFERENCE else "")
            parts.append(f"<tr class='{cls}'>" + "".join(f"<td>{html.escape(c)}</td>"
                                                         for c in row) + "</tr>")
        parts.append("</table><p><small>Oracle rows used held-out interactions and are not "
                     f"ranked. {html.escape(ci_label(board))}s: bootstrap over users."
                     "</small></p>")
    if png:
        parts.append(f"<img alt='plot' src='data:image/png;base64,"
                     f"{base64.b64encode(png).decode()}' style='max-width:100%'>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(out: Path, lb: dict[str, Any]) -> Path:
    """OUT/leaderboard.html (the plot is inlined when it exists)."""
    plot = write_plots(out, lb)
    png = plot.read_bytes() if plot and plot.exists() else None
    path = Path(out) / "leaderboard.html"
    atomic_write_text(path, render_html(lb, png))
    return path
