"""The worker side: one fit unit fitted once, then evaluated by each of its tasks."""

from __future__ import annotations

import datetime as _dt
import logging
import time
import traceback
from typing import Any, Callable

import numpy as np

from .. import results
from ..components import CellContext, FitContext
from ..env import device_info, environment, peak_rss_mb
from ..errors import RecbenchError
from ..registry import default_registry
from ..suite import Suite
from ..split.cache import load_dataset, load_split
from .plan import CellPlan, FitUnit
from .seeding import seed_everything

log = logging.getLogger("recbench")


def _progress_fn(show: bool) -> Callable[..., Any]:
    if not show:
        return lambda it, **kw: it
    from tqdm.auto import tqdm

    def progress(it, **kw):
        kw.setdefault("leave", False)
        kw.setdefault("dynamic_ncols", True)
        return tqdm(it, **kw)
    return progress


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the plugin called sys.exit({exc.code!r})"
    text = f"{type(exc).__name__}: {exc}".strip()
    return " ".join(text.split())[:2000]


def _unit_rows(unit: FitUnit) -> list[dict[str, Any]]:
    """The part of each cell's row that the unit decides before anything runs (a failed
    row as it stands)."""
    suite = unit.suite
    registry = default_registry()
    model_spec = suite.models[unit.model_idx]
    model_entry = registry.get("recommender", model_spec.name)
    synthetic = bool(registry.get("dataset", suite.dataset.name).cls.synthetic)
    env = environment()
    rows = []
    for cell in unit.cells:
        rows.append({
            "schema": results.SCHEMA_VERSION, "cell_id": cell.cell_id, "suite": suite.name,
            "task": suite.tasks[cell.task_idx].spec.name, "protocol": None,
            "dataset": {"name": suite.dataset.name, "params": suite.dataset.record_options,
                        "fingerprint": None, "synthetic": synthetic},
            "split": {"name": suite.split.name, "seed": suite.split_seed, "fingerprint": None,
                      "params": suite.split.record_options},
            "model": {"id": model_spec.id, "name": model_spec.name, "label": model_spec.label,
                      "params": model_spec.record_options,
                      "config_hash": model_spec.config_hash,
                      "uses_test_interactions": bool(model_entry.cls.uses_test_interactions),
                      "consumes": list(model_entry.cls.consumes),
                      "provider": model_entry.provider},
            "seed": unit.seed, "metrics": {}, "metrics_ci": {},
            "metrics_ci_level": suite.confidence, "metric_info": {}, "throughput": {},
            "timing": {}, "peak_rss_mb": None, "device": {"type": unit.device}, "env": env,
            "status": "failed", "error": None, "extra": {}, "features": suite.features,
        })
    return rows


def _finish(row: dict[str, Any], t0: float, exc: BaseException | None = None
            ) -> dict[str, Any]:
    """Stamp a row (failed with `exc` when given) and build it through `ResultRow`."""
    if exc is not None:
        row["status"], row["error"] = "failed", _one_line(exc)
        row["extra"] = {"traceback": "".join(traceback.format_exception(exc, limit=20))}
    row["timing"]["total_s"] = round(time.perf_counter() - t0, 4)
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    row["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    try:
        return results.validate_row(row)
    except Exception as bad:  # noqa: BLE001 - pydantic.ValidationError: a plugin's output
        if row["status"] != "ok":  # or a core defect; the failed row is kept as it is
            log.error("row of cell %s does not match ResultRow: %s", row["cell_id"],
                      _one_line(bad))
            return row
        row.pop("_per_user", None)
        return _finish(row, t0, RecbenchError(
            f"the result row does not match ResultRow: {_one_line(bad)}"))


def run_fit_unit(unit: FitUnit) -> list[dict[str, Any]]:
    """Fit the unit's model once, then run each of its cells' tasks on it; returns one row
    per cell, in order. A failed fit fails every cell with its one-line reason; a failed
    task fails its own cell only. Never raises (a plugin calling sys.exit() included)."""
    t_start = time.perf_counter()
    suite, seed, device = unit.suite, unit.seed, unit.device
    registry = default_registry()
    model_spec = suite.models[unit.model_idx]
    rows = _unit_rows(unit)
    progress = _progress_fn(unit.show_progress)
    memory: dict[str, float] = {}
    try:
        dataset = load_dataset(suite, unit.cache_dir, unit.limit, progress)
        split = load_split(suite, dataset)
        memory["after_data_mb"] = round(peak_rss_mb(), 1)
        feature_info: dict[str, Any] = {}  # {kind: SongFeatures.manifest}
        dataset_block = {**dataset.summary(), "params": suite.dataset.record_options,
                         "manifest": suite.redact(_small_manifest(dataset.manifest)),
                         "features": feature_info}
        if suite.notice:
            dataset_block["notice"] = suite.notice
        dev_info = device_info(device)
        for row in rows:
            row["memory"] = dict(memory)
            row["dataset"].update(dataset_block)
            row["split"].update(split.summary())
            row["protocol"] = split.protocol
            row["device"] = dev_info

        def features(kind: str, _params: dict | None = None):
            from ..features import load_features

            params = dict(dataset.manifest.get("feature_params", {}))
            params.update(suite.features)
            params.update(_params or {})
            f = load_features(dataset, kind, split.train_songs, unit.cache_dir, params=params)
            feature_info[kind] = f.manifest
            return f

        options = model_spec.options
        if model_spec.tuning is not None:  # search on train/valid, then one real fit
            from ..tuning.objective import search_unit

            outcome = search_unit(unit, dataset, split, features, progress)
            options = {**options, **outcome.params}
            for row in rows:
                row["model"]["params"] = {**model_spec.record_options, **outcome.params}
                row["model"]["tuning"] = outcome.block
        model_entry = registry.get("recommender", model_spec.name)
        model = registry.create("recommender", model_spec.name, **options)
        fit_ctx = FitContext(dataset=dataset, split=split, seed=seed, device=device,
                             create=registry.create, features=features, progress=progress,
                             oracle=bool(model_entry.cls.uses_test_interactions))
        seed_everything(seed)
        t0 = time.perf_counter()
        model.fit(fit_ctx)
        fit_s = time.perf_counter() - t0
        memory["after_fit_mb"] = round(peak_rss_mb(), 1)
        fit_report = model.fit_report()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the unit's cells fail, the
        # other units still run (a plugin calling sys.exit() fails only its cells)
        return [_finish(row, t_start, exc) for row in rows]

    out_rows = []
    for i, (cell, row) in enumerate(zip(unit.cells, rows)):
        t_cell = t_start if i == 0 else time.perf_counter()
        row["model"]["fit"] = fit_report
        if i > 0:  # the fit was made (and its memory measured) for the first cell
            row["memory"].pop("after_fit_mb", None)
        else:
            row["memory"] = dict(memory)
        try:
            _run_task(suite, cell, row, model, fit_ctx, fit_s, i > 0, progress)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - fails this cell only
            out_rows.append(_finish(row, t_cell, exc))
            continue
        out_rows.append(_finish(row, t_cell))
    return out_rows


def _run_task(suite: Suite, cell: CellPlan, row: dict[str, Any], model, fit_ctx: FitContext,
              fit_s: float, fit_shared: bool, progress: Callable[..., Any]) -> None:
    """Run one cell's task on the fitted `model` and fill its row's numbers."""
    registry = default_registry()
    task_spec = suite.tasks[cell.task_idx]
    task = registry.create("task", task_spec.spec.name, **task_spec.spec.options)
    metrics = [(m.column, registry.create("metric", m.name), m.k) for m in task_spec.metrics]
    ctx = CellContext(dataset=fit_ctx.dataset, split=fit_ctx.split, model=model,
                      metrics=metrics, fit=fit_ctx, seed=fit_ctx.seed, fit_s=fit_s,
                      bootstrap=suite.bootstrap, confidence=suite.confidence,
                      chunk_users=suite.run["chunk_users"], progress=progress)
    out = task.run(ctx)
    row["memory"]["after_eval_mb"] = round(peak_rss_mb(), 1)
    row["metrics"] = out.metrics
    row["metrics_ci"] = out.metrics_ci
    row["metric_info"] = out.metric_info
    ignored = set(out.ignored_metrics)
    _check_metrics_defined(out.metrics, out.metric_info,
                           [m.column for m in task_spec.metrics if m.column not in ignored]
                           + list(out.metrics))
    row["throughput"] = {**model.throughput(), **out.throughput}
    row["timing"] = {**out.timing, "fit_s": round(fit_s, 4), "fit_shared": fit_shared}
    row["extra"] = {**out.diagnostics, **out.extra}
    if out.ignored_metrics:
        row["extra"]["ignored_metrics"] = list(out.ignored_metrics)
    if out.per_user:
        row["_per_user"] = out.per_user  # stored beside the row as <cell_id>.npz
    row["status"] = "ok"


def _check_metrics_defined(metrics: dict[str, Any], metric_info: dict[str, Any],
                           columns: list[str]) -> None:
    """A metric that is missing, NaN or infinite (no evaluable user, or undefined for every
    user) fails the cell, naming the metric and why, instead of an ok row without a number."""
    import math

    bad = []
    if not columns:
        raise RecbenchError("the task reported no metric")
    for col in dict.fromkeys(columns):
        v = metrics.get(col)
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) \
                and math.isfinite(float(v)):
            continue
        info = metric_info.get(col) or {}
        n, excluded = info.get("n_users"), info.get("excluded_users")
        if col not in metrics:
            why = "the task returned no value for it"
        elif n == 0 and excluded:
            why = f"undefined for all {excluded} users"
        elif n == 0:
            why = "no evaluable users"
        else:
            why = f"value {v!r}" + (f" over {n} users" if n is not None else "")
        bad.append(f"{col} ({why})")
    if bad:
        raise RecbenchError(f"metric undefined: {'; '.join(bad)}")


def _small_manifest(manifest: dict[str, Any], limit: int = 50) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in manifest.items():
        if isinstance(v, (list, tuple)) and len(v) > limit:
            out[k] = list(v[:limit]) + [f"... {len(v) - limit} more"]
        elif isinstance(v, dict):
            out[k] = _small_manifest(v, limit)
        else:
            out[k] = v
    return out
