"""Board rendering: the self-contained HTML leaderboard and the PNG plot (matplotlib,
Agg backend)."""

from __future__ import annotations

import base64
import io
import math
import textwrap
import zlib
from pathlib import Path
from typing import Any

from .. import defaults
from ..io.atomic import atomic_write_bytes, atomic_write_text
from .board import (SECTION_COLD, SECTION_ORACLE, SECTION_REFERENCE, _RATE_NAMES, _fmt,
                    _fmt_rate, board_context, ci_label, diagnostics, diagnostics_rows,
                    task_class, title)
from .jinja import templates

PLOT_NAME = "leaderboard.png"

# matplotlib's tab10, then nine darker or softer tones that differ from them. 19 slots (a
# prime) give the eight built-in models eight different slots, so each keeps its colour on
# every board whatever else is on it.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#6b6ecf", "#b5cf6b", "#e7ba52", "#ce6dbd"]
REFERENCE_COLOUR = "#222222"


def model_colours(rows: list[dict[str, Any]]) -> dict[str, str]:
    """A colour per model row (keyed by its label), chosen by the model's name (the plugin
    name; a CRC32 of it picks the palette slot), never by row order: a model gets the same
    colour on every board and run. Two models of one board that land on the same slot are
    told apart by taking the next free slot, in sorted (name, label) order."""
    out: dict[str, str] = {}
    used: set[int] = set()
    for name, label in sorted({(r.get("name") or r["label"], r["label"]) for r in rows}):
        i = zlib.crc32(name.encode("utf-8")) % len(PALETTE)
        while i in used and len(used) < len(PALETTE):
            i = (i + 1) % len(PALETTE)
        used.add(i)
        out[label] = PALETTE[i]
    return out


def _primary_board(lb: dict[str, Any]) -> dict[str, Any] | None:
    boards = lb.get("tasks", {})
    return boards.get(defaults.TASK) or next(iter(boards.values()), None)


def _plot_title(board: dict[str, Any], suite: str | None) -> str:
    """The board title, plus the synthetic-fallback notice (wrapped) when there is one."""
    text = title(board, suite)
    notice = (board.get("dataset") or {}).get("notice")
    if notice:
        text += "\n" + "\n".join(textwrap.wrap(f"NOTICE: {notice}", 150))
    return text


def _forest(ax: Any, board: dict[str, Any], rows: list[dict], colours: dict[str, str]) -> None:
    """The primary metric per model as a forest plot: one line per row (cold-start ranked,
    then the oracle section on a hatched band, then published reference rows), the interval
    as a thick bar with caps, the mean as a marker and its value as text."""
    metric = board["primary_metric"]
    ticks: list[tuple[float, str, bool]] = []  # (y, text, is a section heading)
    y = 0.0
    xs: list[float] = []
    for section in (SECTION_COLD, SECTION_ORACLE, SECTION_REFERENCE):
        members = [r for r in rows if r["section"] == section]
        if not members:
            continue
        if ticks:
            y += 1.0
        ticks.append((y, section.upper(), True))
        top = y
        for r in members:
            y += 1
            m = r["metrics"][metric]
            mean, ci = m["mean"], m.get("ci")
            oracle, ref = section == SECTION_ORACLE, section == SECTION_REFERENCE
            colour = REFERENCE_COLOUR if ref else colours[r["label"]]
            tag = " [oracle]" if oracle else " [published]" if ref else ""
            rank = f"{r['rank']}. " if r.get("rank") else ""
            ticks.append((y, f"{rank}{r['label']}{tag}", False))
            text = _fmt(mean)
            if ci and None not in ci:
                ax.plot(ci, [y, y], color=colour, lw=7, alpha=0.35, solid_capstyle="butt",
                        zorder=2)
                ax.errorbar([mean], [y], xerr=[[max(0.0, mean - ci[0])], [max(0.0, ci[1] - mean)]],
                            fmt="none", ecolor=colour, elinewidth=1.5, capsize=8, capthick=2.5,
                            zorder=2)
                xs += ci
                text += f"  [{_compact(ci[0])}, {_compact(ci[1])}]"
            ax.plot([mean], [y], marker="D" if ref else "s" if oracle else "o",
                    ms=6 if ref else 4.5, mfc="white" if (oracle or ref) else colour, mec=colour, mew=1.5,
                    ls="none", zorder=3)
            xs.append(mean)
            # The values as a column right of the axes: never on a marker or a bar.
            ax.text(1.02, y, text, transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="#333", clip_on=False)
        if section == SECTION_ORACLE:
            ax.axhspan(top + 0.5, y + 0.5, facecolor="#eeeeee", edgecolor="#bbbbbb",
                       hatch="///", lw=0, zorder=0)
    ax.set_yticks([t[0] for t in ticks], [t[1] for t in ticks])
    for (_, _, heading), lab in zip(ticks, ax.get_yticklabels()):
        if heading:
            lab.set_fontweight("bold")
            lab.set_fontsize(8)
            lab.set_color("#555555")
    ax.tick_params(axis="y", length=0, labelsize=8.5)
    ax.set_ylim(y + 0.7, -0.7)
    if xs:
        lo, hi = min(xs), max(xs)
        pad = (hi - lo) * 0.08 or 0.05
        ax.set_xlim(lo - pad, hi + pad)
    ax.grid(axis="x", color="#dddddd", lw=0.6)
    ax.set_axisbelow(True)
    label = board.get("metric_info", {}).get(metric, {}).get("label") or metric
    ax.set_xlabel(f"{label} [{metric}]: mean, bar = {ci_label(board)}")
    ax.set_title(f"{metric} per model", fontsize=11)


def _chart(ax: Any, chart: Any, sections: dict[str, str], colours: dict[str, str]) -> None:
    """The task's diagnostics chart: grouped bars coloured by model, oracle series hatched,
    the legend outside the axes (right)."""
    n = len(chart.groups)
    k = max(1, len(chart.series))
    width = 0.84 / k
    for i, (label, values) in enumerate(chart.series.items()):
        vals = [v if v is not None else float("nan") for v in values]
        oracle = sections.get(label) == SECTION_ORACLE
        ax.bar([g - 0.42 + (i + 0.5) * width for g in range(n)], vals, width=width * 0.92,
               color=colours.get(label, "#999999"), edgecolor="white" if oracle else "none",
               hatch="////" if oracle else None, lw=0,
               label=label + (" [oracle]" if oracle else ""))
    ax.set_xticks(range(n), chart.groups)
    if chart.baseline is not None:
        ax.axhline(chart.baseline, color="#555555", lw=1, ls=":")
    if chart.ylim is not None:
        ax.set_ylim(*chart.ylim)
    ax.grid(axis="y", color="#dddddd", lw=0.6)
    ax.set_axisbelow(True)
    ax.set_ylabel(chart.ylabel)
    ax.set_title(chart.title, fontsize=11)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
              frameon=False)


def write_plots(out: Path, lb: dict[str, Any]) -> Path | None:
    """OUT/leaderboard.png for the primary board: the primary metric per model with its
    interval (reference rows included), and the task's diagnostics chart when it has one.
    Returns the path, or None if there is nothing to plot."""
    board = _primary_board(lb)
    if not board or not board.get("primary_metric"):
        return None
    metric = board["primary_metric"]
    rows = [r for r in board["rows"] if r["metrics"].get(metric, {}).get("mean") is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [r for r in board["rows"] if r["section"] != SECTION_REFERENCE]
    cls = task_class(board)
    chart = cls.diagnostics_chart(models) if cls is not None else None
    if chart is not None and not chart.series:
        chart = None
    colours = model_colours(models)
    height = max(4.6, 0.32 * (len(rows) + 3) + 1.6)
    if chart is not None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(14, height), layout="constrained",
                                       gridspec_kw={"width_ratios": [1.15, 1]})
        _chart(ax2, chart, {r["label"]: r["section"] for r in models}, colours)
    else:
        fig, ax1 = plt.subplots(figsize=(9, height), layout="constrained")
    _forest(ax1, board, rows, colours)
    synthetic = (board.get("dataset") or {}).get("synthetic")
    fig.suptitle(_plot_title(board, lb.get("suite")), fontsize=10,
                 color="#9c2a00" if synthetic else "black")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    path = Path(out) / PLOT_NAME
    atomic_write_bytes(path, buf.getvalue())  # same permissions as every result file
    return path


def _compact(v: float | None) -> str:
    """An interval bound in few characters (4 decimals below 10, fewer above)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return _fmt(v, 4 if abs(v) < 10 else 2 if abs(v) < 1000 else 0)


def html_board(board: dict[str, Any], suite: str | None) -> dict[str, Any]:
    """The template context of one HTML board: metric columns, sections of rows (value with
    its interval under it), diagnostics, plus `board_context`."""
    ctx = board_context(board, suite)
    info, cols = board["metric_info"], board["columns"]
    rates = sorted({k for e in board["rows"] for k in e.get("throughput", {})})
    ctx["metrics"] = [{"id": c, "label": info.get(c, {}).get("label") or c,
                       "primary": c == board["primary_metric"]} for c in cols]
    ctx["rates"] = [{"id": r, "name": _RATE_NAMES.get(r, r)} for r in rates]
    ctx["n_columns"] = len(cols) + len(rates) + 5
    hib = info.get(board["primary_metric"], {}).get("higher_is_better", True)
    notes = {SECTION_COLD: f"ranked by {board['primary_metric']} "
                           f"({'higher' if hib else 'lower'} is better)",
             SECTION_ORACLE: "used held-out (test) interactions; not ranked",
             SECTION_REFERENCE: "published numbers (the suite's references), not run here"}
    css = {SECTION_COLD: "cold", SECTION_ORACLE: "oracle", SECTION_REFERENCE: "ref"}
    sections: list[dict[str, Any]] = []
    for e in board["rows"]:
        if not sections or sections[-1]["name"] != e["section"]:
            sections.append({"name": e["section"], "css": css.get(e["section"], ""),
                             "note": notes.get(e["section"]), "rows": []})
        cells = []
        for c in cols:
            m = e["metrics"].get(c, {})
            value = _fmt(m.get("mean")) if m else ""
            if m.get("std") and m.get("n_seeds", 1) > 1:
                value += f" ± {_fmt(m['std'])}"
            ci = m.get("ci")
            cells.append({"value": value, "primary": c == board["primary_metric"],
                          "ci": f"{_compact(ci[0])} – {_compact(ci[1])}" if ci else ""})
        timing = e.get("timing") or {}
        sections[-1]["rows"].append({
            "rank": e.get("rank", ""), "label": e["label"], "source": e.get("source", ""),
            "setting": e.get("setting", ""),
            "cells": cells, "seeds": len(e["seeds"]) if e.get("seeds") else "",
            "rates": [_fmt_rate(e.get("throughput", {}).get(r)) if "throughput" in e else ""
                      for r in rates],
            "fit": _fmt(timing.get("fit_s"), 1) if timing else ""})
    ctx["sections"] = sections
    diag = diagnostics(board)
    ctx["diagnostics"] = None
    if diag is not None:
        header, rows = diagnostics_rows(board) or ([], [])
        ctx["diagnostics"] = {"caption": diag.caption, "header": header, "rows": rows}
    return ctx


def render_html(lb: dict[str, Any], png: bytes | None = None) -> str:
    """The leaderboard as one HTML page (templates/leaderboard.html.j2; the plot inlined)."""
    suite = lb.get("suite")
    boards = [html_board(b, suite) for b in lb.get("tasks", {}).values()]
    return templates().get_template("leaderboard.html.j2").render(
        suite=suite, boards=boards, parts=lb.get("parts") or [],
        plot=base64.b64encode(png).decode() if png else None,
        plot_alt=f"{suite}: primary metric per model with intervals, and diagnostics")


def write_html(out: Path, lb: dict[str, Any]) -> Path:
    """OUT/leaderboard.html (the plot is inlined when it exists)."""
    plot = write_plots(out, lb)
    png = plot.read_bytes() if plot and plot.exists() else None
    path = Path(out) / "leaderboard.html"
    atomic_write_text(path, render_html(lb, png))
    return path
