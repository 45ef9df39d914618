"""Boards from results.jsonl (one per task; see :mod:`recbench.leaderboard` for how rows
aggregate seeds, sections and references) and their Markdown rendering (CSV: csvboard)."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .. import defaults, results
from ..components import DiagnosticsTable
from ..errors import RecbenchError
from .claims import claims_context, judge_claims
from .intervals import ci_label, ci_over
from .tuning import budget_text, tuning_summary

if TYPE_CHECKING:
    from ..components import Task

SECTION_COLD = "cold-start"
SECTION_ORACLE = "oracle / upper bound"
SECTION_REFERENCE = "reference (published)"


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else None


def _std(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if len(xs) < 2:
        return 0.0 if xs else None
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def build(rows: list[dict[str, Any]], *, references: Sequence[dict[str, Any]] = (),
          primary_metric: str | None = None, plan_ids: set[str] | None = None
          ) -> dict[str, Any]:
    """The leaderboard structure (what leaderboard.json holds) from result rows."""
    if plan_ids is not None:
        rows = [r for r in rows if r.get("cell_id") in plan_ids]
    by_task: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_task[r["task"]].append(r)
    suite = rows[0]["suite"] if rows else None
    boards = {}
    for task, trows in by_task.items():
        ok = [r for r in trows if r["status"] == "ok"]
        fps = Counter((r["dataset"]["fingerprint"], r["split"]["fingerprint"]) for r in ok)
        main_fp = fps.most_common(1)[0][0] if fps else (None, None)
        ref_row = next((r for r in ok if (r["dataset"]["fingerprint"],
                                          r["split"]["fingerprint"]) == main_fp), None)
        excluded = [r for r in ok if (r["dataset"]["fingerprint"],
                                      r["split"]["fingerprint"]) != main_fp]
        ok = [r for r in ok if r not in excluded]
        columns: list[str] = []
        info: dict[str, dict] = {}
        for r in ok:
            for c in r["metrics"]:
                if c not in columns:
                    columns.append(c)
                info.setdefault(c, r.get("metric_info", {}).get(c, {}))
        primary = primary_metric if primary_metric in columns else (columns[0] if columns
                                                                    else None)
        models: dict[str, list[dict]] = defaultdict(list)
        for r in ok:
            models[r["model"]["id"]].append(r)
        entries = []
        for mid, mrows in models.items():
            m0 = mrows[0]["model"]
            metrics = {}
            for c in columns:
                vals = [r["metrics"].get(c) for r in mrows]
                lows = [(r["metrics_ci"].get(c) or [None, None])[0] for r in mrows]
                highs = [(r["metrics_ci"].get(c) or [None, None])[1] for r in mrows]
                lo, hi = _mean(lows), _mean(highs)
                metrics[c] = {"mean": _mean(vals), "std": _std(vals),
                              "ci": [lo, hi] if lo is not None else None,
                              "n_seeds": len([v for v in vals if v is not None])}
            tp_keys = sorted({k for r in mrows for k in r.get("throughput", {})})
            entries.append({
                "model_id": mid, "label": m0["label"], "name": m0["name"],
                "section": SECTION_ORACLE if m0["uses_test_interactions"] else SECTION_COLD,
                "uses_test_interactions": m0["uses_test_interactions"],
                "consumes": m0.get("consumes", []), "config_hash": m0["config_hash"],
                "params": m0["params"], "seeds": sorted(r["seed"] for r in mrows),
                "setting": row_setting(mrows[0]),
                "tuning": tuning_summary(mrows),
                "metrics": metrics,
                "throughput": {k: _mean([r["throughput"].get(k) for r in mrows])
                               for k in tp_keys},
                "timing": {k: _mean([r["timing"].get(k) for r in mrows])
                           for k in ("fit_s", "eval_s", "total_s")},
                "peak_rss_mb": max((r.get("peak_rss_mb") or 0) for r in mrows),
                "extra": mrows[0].get("extra", {}),
            })
        for e in entries if any(e["tuning"] for e in entries) else ():
            e["setting"] += "" if e["tuning"] else "; hand-set"  # beside tuned rows
        hib = info.get(primary, {}).get("higher_is_better", True) if primary else True
        levels = {r.get("metrics_ci_level") for r in ok}
        ci_level = levels.pop() if len(levels) == 1 else None  # None: unknown or mixed

        def key(e: dict) -> float:
            v = e["metrics"].get(primary, {}).get("mean") if primary else None
            return -math.inf if v is None else (v if hib else -v)
        cold = sorted([e for e in entries if e["section"] == SECTION_COLD], key=key,
                      reverse=True)
        for rank, e in enumerate(cold, 1):
            e["rank"] = rank
        oracle = sorted([e for e in entries if e["section"] == SECTION_ORACLE], key=key,
                        reverse=True)
        refs = []
        for ref in references:
            if ref.get("task", defaults.TASK) != task:
                continue
            refs.append({"label": ref["label"], "section": SECTION_REFERENCE,
                         "source": ref.get("source", ""),
                         "uses_test_interactions": ref.get("uses_test_interactions"),
                         "metrics": {c: {"mean": float(v)} for c, v in ref.items()
                                     if c not in ("label", "task", "source",
                                                  "uses_test_interactions")}})
        failed = [{"model_id": r["model"]["id"], "seed": r["seed"], "error": r["error"]}
                  for r in trows if r["status"] != "ok"]
        boards[task] = {
            "task": task, "primary_metric": primary, "columns": columns, "metric_info": info,
            "ci_level": ci_level,
            "dataset": ref_row["dataset"] if ref_row else None,
            "split": ref_row["split"] if ref_row else None,
            "protocol": ref_row["protocol"] if ref_row else None,
            "env": ref_row["env"] if ref_row else None,
            # cells per commit: a board assembled from several runs (--resume) says so
            "commits": dict(Counter(commit_text(r.get("env") or {}) for r in ok)),
            "device": ref_row["device"] if ref_row else None,
            "rows": cold + oracle + refs, "failed": failed,
            "excluded_other_data": [{"model_id": r["model"]["id"], "seed": r["seed"],
                                     "dataset": r["dataset"]["fingerprint"],
                                     "split": r["split"]["fingerprint"]} for r in excluded],
        }
    return {"suite": suite, "schema": results.SCHEMA_VERSION, "tasks": boards}


def row_setting(row: dict[str, Any]) -> str:
    """What one row was measured under, in a few words: the protocol it was scored by
    (an oracle row's model also saw the held-out interactions) and its audio backbone.

    A tuned row adds its sampler and budget (every model of a fair suite gets the same).

    >>> row_setting({"split": {"protocol": "warm"}, "model": {
    ...     "uses_test_interactions": False, "params": {"backbone": "conv1d"}}})
    'warm; backbone conv1d'
    >>> row_setting({"split": {"protocol": "warm"}, "model": {"params": {}, "tuning": {
    ...     "sampler": "tpe", "budget": {"trials": 8, "seconds": None}}}})
    'warm; tuned (tpe, budget 8 trials)'
    """
    model = row.get("model") or {}
    protocol = (row.get("split") or {}).get("protocol") or "?"
    if model.get("uses_test_interactions"):
        protocol += ", oracle"
    backbone = (model.get("params") or {}).get("backbone")
    out = protocol + (f"; backbone {backbone}" if backbone else "")
    tuning = model.get("tuning")
    if tuning:
        out += f"; tuned ({tuning['sampler']}, {budget_text(tuning['budget'])})"
    return out


def data_rules(board: dict[str, Any]) -> list[tuple[str, str]]:
    """The dataset's selection rules that hold for every row of the board (rows on other
    data are excluded from it): the loader's ``*_rule`` manifest entries, e.g. the MSD's
    ``subset_rule`` and ``tag_rule``, as (name, rule) pairs."""
    manifest = ((board.get("dataset") or {}).get("manifest") or {})
    return [(k[:-len("_rule")], str(v)) for k, v in sorted(manifest.items())
            if k.endswith("_rule") and v]


# --------------------------------------------------------------------------- rendering


def _fmt(v: float | None, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{digits}f}"


def _fmt_rate(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.1f}"


_RATE_NAMES = {"train_examples_per_s": "train ex/s", "scoring_pairs_per_s": "score pairs/s",
               "songs_embedded_per_s": "songs emb/s"}


def commit_text(env: dict[str, Any]) -> str:
    """'commit <sha>', or why there is none (e.g. not run from a git checkout)."""
    if env.get("git_commit"):
        return f"commit {env['git_commit']}"
    return env.get("git_note") or "commit not recorded"


def commits_text(board: dict[str, Any]) -> str:
    """The commit(s) the board's cells ran at: :func:`commit_text` when they all ran at one,
    else each with its number of cells, most cells first (a board assembled from runs at
    several commits, e.g. rows rerun with ``--resume``)."""
    counts = board.get("commits") or {}
    if len(counts) <= 1:
        return commit_text(board.get("env") or {})
    parts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return "cells at " + ", ".join(f"{text} ({n})" for text, n in parts)


def table_rows(board: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one board as strings (shared by Markdown and HTML)."""
    info = board["metric_info"]
    cols = board["columns"]
    rates = sorted({k for e in board["rows"] for k in e.get("throughput", {})})
    header = ["#", "model", "section", "setting"]
    for c in cols:
        label = info.get(c, {}).get("label") or c
        header.append(label if label == c else f"{label} [{c}]")
        header.append(ci_label(board))
    header += ["seeds"] + [_RATE_NAMES.get(r, r) for r in rates] + ["fit s"]
    out = []
    for e in board["rows"]:
        row = [str(e.get("rank", "")), e["label"], e["section"], e.get("setting", "")]
        for c in cols:
            m = e["metrics"].get(c, {})
            val = _fmt(m.get("mean"))
            if m.get("std") and m.get("n_seeds", 1) > 1:
                val += f" ± {_fmt(m['std'])}"
            row.append(val)
            ci = m.get("ci")
            row.append(f"[{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else "")
        row.append(str(len(e.get("seeds", []))) if e.get("seeds") else "")
        row += [_fmt_rate(e.get("throughput", {}).get(r)) for r in rates]
        row.append(_fmt(e.get("timing", {}).get("fit_s"), 1) if e.get("timing") else "")
        out.append(row)
    return header, out


def task_class(board: dict[str, Any]) -> type[Task] | None:
    """The registered task class of a board (None when that plugin is not installed)."""
    from ..registry import default_registry

    try:
        cls = default_registry().get("task", board["task"]).cls
    except Exception:  # noqa: BLE001 - a board of an uninstalled task renders without extras
        return None
    from ..components import Task

    return cls if issubclass(cls, Task) else None


def diagnostics(board: dict[str, Any]) -> DiagnosticsTable | None:
    """The board's diagnostics table, rendered by its task (`Task.diagnostics_table`) from
    the board's model rows (reference rows are published numbers, not models run here)."""
    cls = task_class(board)
    models = [e for e in board["rows"] if e.get("section") != SECTION_REFERENCE]
    return cls.diagnostics_table(models) if cls is not None else None


def diagnostics_rows(board: dict[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Header and formatted rows of the board's diagnostics table, or None."""
    table = diagnostics(board)
    if table is None:
        return None
    return table.header, [[str(r[0])] + [_cell(v) for v in r[1:]] for r in table.rows]


def _cell(v: Any) -> str:
    """A diagnostics cell: text as is, counts (integers) whole, other numbers to 4 places."""
    if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        return str(v)
    return _fmt(v)


def title(board: dict[str, Any], suite: str | None) -> str:
    """A board's title: suite, task, dataset (with the SYNTHETIC flag) and protocol."""
    ds = board.get("dataset") or {}
    flag = " — SYNTHETIC DATA" if ds.get("synthetic") else ""
    return (f"{suite} · {board['task']} · {ds.get('name', '?')} "
            f"({ds.get('n_users', '?')} users x {ds.get('n_songs', '?')} songs){flag}")


def board_context(board: dict[str, Any], suite: str | None) -> dict[str, Any]:
    """What every board template shows besides the tables: title, data and split,
    environment, notices, failed and excluded cells."""
    ds, sp = board.get("dataset") or {}, board.get("split") or {}
    env = board.get("env") or {}
    return {"title": title(board, suite), "synthetic": bool(ds.get("synthetic")),
            "notice": ds.get("notice"), "protocol": board.get("protocol"),
            "rules": data_rules(board),
            "dataset": {"fingerprint": ds.get("fingerprint"), "name": ds.get("name")},
            "split": {"name": sp.get("name"), "seed": sp.get("seed"),
                      "fingerprint": sp.get("fingerprint")},
            "primary": board["primary_metric"],
            "env": {k: env.get(k) for k in ("recbench", "torch")}, "commit": commits_text(board),
            "device": (board.get("device") or {}).get("type"), "ci_label": ci_label(board),
            "ci_over": ci_over(board), "claims": claims_context(board),
            "lists": [(heading, [json.dumps(f) for f in board[key]])
                      for key, heading in (("failed", "Failed cells"),
                                           ("excluded_other_data",
                                            "Excluded (different data or split)"))
                      if board.get(key)]}


def render_markdown(lb: dict[str, Any]) -> str:
    """The leaderboard as Markdown (templates/leaderboard.md.j2; tables by tabulate)."""
    from tabulate import tabulate

    from .jinja import templates

    boards = []
    for board in lb["tasks"].values():
        ctx = board_context(board, lb["suite"])
        header, rows = table_rows(board)
        ctx["table"] = tabulate(rows, headers=header, tablefmt="github", disable_numparse=True)
        diag = diagnostics(board)
        ctx["diagnostics"] = None
        if diag is not None:
            dheader, drows = diagnostics_rows(board) or ([], [])
            ctx["diagnostics"] = {"caption": diag.caption,
                                  "table": tabulate(drows, headers=dheader, tablefmt="github",
                                                    disable_numparse=True)}
        boards.append(ctx)
    return templates().get_template("leaderboard.md.j2").render(suite=lb["suite"],
                                                                boards=boards)


def _clean(obj: Any) -> Any:
    """NaN and infinities as None: the JSON boards are strict JSON."""
    return results.finite_or_none(obj)


_RESUME_HINT = "; rerun `recbench run SUITE -o OUT --resume` to rewrite it"


def build_from_folder(out: Path, *, references: list[dict[str, Any]] | None = None,
                      primary_metric: str | None = None, warn: Any = None,
                      claims: list[dict[str, Any]] | None = None
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The leaderboard of a run folder, built in memory (nothing is written), and the
    meta (references, primary metric, claims: recbench.leaderboard.claims) it used.
    Corrupt cell files are left out and named through `warn` (a callable taking one
    line); a corrupt plan.json or leaderboard_meta.json is a RecbenchError naming it."""
    out = Path(out)
    corrupt: list[Path] = []
    rows = results.read_cells(out, corrupt)
    for p in corrupt:
        (warn or _warn)(f"{p} is corrupt and left out of the leaderboard; "
                        f"`recbench run --resume` recomputes that cell")
    plan_ids = None
    if (out / "plan.json").exists():
        plan = results.read_json_file(out / "plan.json", "run plan", _RESUME_HINT)
        try:
            plan_ids = {c["cell_id"] for c in plan["cells"]}
        except (TypeError, KeyError) as exc:
            raise RecbenchError(f"{out / 'plan.json'}: corrupt run plan (no cell list: "
                                f"{exc!r}){_RESUME_HINT}") from None
    meta_path = out / "leaderboard_meta.json"
    if references is None and meta_path.exists():
        meta = results.read_json_file(meta_path, "leaderboard settings", _RESUME_HINT)
        if not isinstance(meta, dict) or not isinstance(meta.get("references", []), list):
            raise RecbenchError(f"{meta_path}: corrupt leaderboard settings (expected "
                                f"{{references: [...], primary_metric}}){_RESUME_HINT}")
        references, primary_metric = meta.get("references", []), meta.get("primary_metric")
        claims = meta.get("claims", []) if claims is None else claims
    meta = {"references": references or [], "primary_metric": primary_metric,
            "claims": claims or []}
    lb = build(rows, references=references or [], primary_metric=primary_metric,
               plan_ids=plan_ids)
    judge_claims(out, lb, claims or [])
    return _clean(lb), meta


def _warn(line: str) -> None:
    import logging

    logging.getLogger("recbench").warning("%s", line)
