"""The runner: a suite expands into fit units (model x seed), each fitted once and then
evaluated by every task that applies to the model, one result row (cell) per task.

An executor maps `run_fit_unit` over the units (a `FitUnit` is picklable: it carries the
resolved suite, so process and Dask workers never re-validate it); each finished cell is
written atomically as soon as its unit returns. Cell ids, result files and resume stay
per cell: a unit whose cells are all finished is skipped, a partly finished one runs only
its missing tasks. Each worker process keeps the dataset and split in `WORKER_CACHE`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import random
import shutil
import socket
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import results
from .components import CellContext, FitContext, LoadContext
from .env import device_info, environment, peak_rss_mb, resolve_device
from .errors import RecbenchError
from .registry import default_registry
from .suite import Suite

log = logging.getLogger("recbench")


def default_cache_dir() -> str:
    """Feature/data cache folder: $RECBENCH_CACHE, else ~/.cache/recbench."""
    return os.environ.get("RECBENCH_CACHE") or str(Path.home() / ".cache" / "recbench")


def resolve_cache_dir(suite: Suite, cli_cache_dir: str | None = None) -> str:
    """The cache folder of a run: --cache-dir, else the suite's ``[run] cache_dir``
    (``~`` expanded; a relative path is relative to the suite file's folder), else
    $RECBENCH_CACHE, else ~/.cache/recbench."""
    if cli_cache_dir:
        return cli_cache_dir
    declared = (suite.run or {}).get("cache_dir")
    if declared:
        path = Path(os.path.expanduser(str(declared)))
        if not path.is_absolute() and suite.path:
            path = Path(suite.path).resolve().parent / path
        return str(path)
    return default_cache_dir()


# --------------------------------------------------------------------------- planning


@dataclass
class CellPlan:
    """One cell (task x model x seed): its id (its result files and what resume skips)."""

    cell_id: str
    task: str
    model: str
    seed: int
    task_idx: int


@dataclass
class FitUnit:
    """The unit of work: one model and seed, fitted once, then evaluated by each task of
    `cells` (the tasks that apply to the model; on resume, those not finished yet).

    Picklable, so that executors can ship it to a worker process or cluster: it carries the
    resolved suite (never re-validated in the worker) and the run's settings."""

    suite: Suite = field(repr=False)
    model_idx: int
    model: str
    seed: int
    cells: list[CellPlan]
    device: str = "cpu"
    cache_dir: str = ""
    limit: int | None = None
    show_progress: bool = False

    @property
    def cell_ids(self) -> list[str]:
        """The ids of the cells this unit produces (executors name them when it is lost)."""
        return [c.cell_id for c in self.cells]


def _cell_id(suite: Suite, ti: int, mi: int, seed: int) -> str:
    blob = json.dumps({
        "suite": suite.name,
        "task": suite.tasks[ti].spec.to_dict(),
        "metrics": [m.column for m in suite.tasks[ti].metrics],
        "model": suite.models[mi].to_dict(),
        "seed": seed,
        "dataset": suite.dataset.to_dict(),
        "split": [suite.split.to_dict(), suite.split_seed],
        "features": suite.features,
        "bootstrap": [suite.bootstrap, suite.confidence],
    }, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_units(suite: Suite, *, device: str = "cpu", cache_dir: str | None = None,
               limit: int | None = None, show_progress: bool = False) -> list[FitUnit]:
    """The fit units of `suite` (model x seed, in model-major order), each with one cell per
    task that applies to the model (e.g. tagging needs song vectors); a model no task
    applies to gets no unit."""
    registry = default_registry()
    tasks = [registry.create("task", t.spec.name, **t.spec.options) for t in suite.tasks]
    units = []
    for mi, model in enumerate(suite.models):
        instance = registry.create("recommender", model.name, **model.options)
        applies = [ti for ti, task in enumerate(tasks) if task.applies_to(instance)]
        for ti, task in enumerate(suite.tasks):
            if ti not in applies:
                log.info("task %s does not apply to model %s: no cells", task.spec.id, model.id)
        if not applies:
            continue
        for seed in suite.seeds:
            cells = [CellPlan(_cell_id(suite, ti, mi, seed), suite.tasks[ti].spec.id, model.id,
                              seed, ti) for ti in applies]
            units.append(FitUnit(suite, mi, model.id, seed, cells, device=device,
                                 cache_dir=cache_dir or default_cache_dir(), limit=limit,
                                 show_progress=show_progress))
    return units


def plan_cells(suite: Suite, **kw: Any) -> list[CellPlan]:
    """Every cell of `suite`, in the order of its fit units (see `plan_units`)."""
    return [c for u in plan_units(suite, **kw) for c in u.cells]


# --------------------------------------------------------------------------- worker side


class WorkerCache:
    """What a worker process keeps between fit units: the dataset and the split it last
    used (one of each in memory), so the units of one suite load them once per process."""

    def __init__(self) -> None:
        self._dataset: tuple[Any, Any] | None = None  # (key, Dataset)
        self._split: tuple[Any, Any] | None = None  # (key, Split)

    def dataset(self, suite: Suite, cache_dir: str, limit: int | None = None,
                progress: Callable[..., Any] = lambda it, **kw: it):
        """The suite's dataset (loaded on first use)."""
        key = (suite.dataset.config_hash, limit)
        if self._dataset is None or self._dataset[0] != key:
            self._dataset = None  # free the previous one before loading
            loader = default_registry().create("dataset", suite.dataset.name,
                                               **suite.dataset.options)
            ctx = LoadContext(cache_dir=cache_dir, limit=limit,
                              suite_dir=str(Path(suite.path).parent), progress=progress)
            t0 = time.perf_counter()
            data = loader.load(ctx)
            data.manifest.setdefault("load_s", round(time.perf_counter() - t0, 3))
            if data.n_users == 0 or data.n_songs == 0 or data.counts.nnz == 0:
                raise RecbenchError(f"dataset {suite.dataset.name!r} is empty after loading")
            self._dataset = (key, data)
        return self._dataset[1]

    def split(self, suite: Suite, dataset) -> Any:
        """The suite's split of `dataset` (computed on first use)."""
        key = (suite.split.config_hash, suite.split_seed, dataset.fingerprint)
        if self._split is None or self._split[0] != key:
            splitter = default_registry().create("split", suite.split.name,
                                                 **suite.split.options)
            self._split = (key, splitter.split(dataset, suite.split_seed))
        return self._split[1]

    def clear(self) -> None:
        """Forget the dataset and split."""
        self._dataset = self._split = None


WORKER_CACHE = WorkerCache()
"""This process's cache (one per worker process)."""


def _progress_fn(show: bool) -> Callable[..., Any]:
    if not show:
        return lambda it, **kw: it
    from tqdm.auto import tqdm

    def progress(it, **kw):
        kw.setdefault("leave", False)
        kw.setdefault("dynamic_ncols", True)
        return tqdm(it, **kw)
    return progress


def load_dataset(suite: Suite, cache_dir: str, limit: int | None = None,
                 progress: Callable[..., Any] = lambda it, **kw: it):
    """The suite's dataset, loaded once per process (`WORKER_CACHE`)."""
    return WORKER_CACHE.dataset(suite, cache_dir, limit, progress)


def load_split(suite: Suite, dataset) -> Any:
    """The suite's split of `dataset`, computed once per process (`WORKER_CACHE`)."""
    return WORKER_CACHE.split(suite, dataset)


def extract_features_task(payload: dict[str, Any]) -> tuple[list, dict]:
    """One executor task of feature extraction: the features of `payload['songs']` of
    `payload['suite']`'s dataset."""
    from .features import extract_songs

    dataset = load_dataset(payload["suite"], payload["cache_dir"], payload.get("limit"))
    return extract_songs(dataset, payload["songs"], payload["kind"], payload["params"],
                         payload["max_samples"])


def prefetch_features(suite: Suite, executor, *, cache_dir: str, limit: int | None,
                      kind: str = "logmel") -> None:
    """Extract (or find cached) the suite's features through `executor` before the fit
    units run, so parallel units only read the cache instead of each extracting."""
    from .features import load_features

    dataset = load_dataset(suite, cache_dir, limit)
    if dataset.audio is None and kind not in dataset.features:
        return
    split = load_split(suite, dataset)
    params = dict(dataset.manifest.get("feature_params", {}))
    params.update(suite.features)
    base = {"suite": suite, "cache_dir": cache_dir, "limit": limit, "kind": kind}

    def map_chunks(chunks, resolved, max_samples):
        payloads = [{**base, "songs": c.tolist(), "params": resolved,
                     "max_samples": max_samples} for c in chunks]
        return executor.map(extract_features_task, payloads)

    t0 = time.perf_counter()
    load_features(dataset, kind, split.train_songs, cache_dir, params=params,
                  map_chunks=map_chunks)
    log.info("%s features ready in %.1fs (through the %s executor)", kind,
             time.perf_counter() - t0, executor.name)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


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
            from .features import load_features

            params = dict(dataset.manifest.get("feature_params", {}))
            params.update(suite.features)
            params.update(_params or {})
            f = load_features(dataset, kind, split.train_songs, unit.cache_dir, params=params)
            feature_info[kind] = f.manifest
            return f

        model_entry = registry.get("recommender", model_spec.name)
        model = registry.create("recommender", model_spec.name, **model_spec.options)
        fit_ctx = FitContext(dataset=dataset, split=split, seed=seed, device=device,
                             create=registry.create, features=features, progress=progress,
                             oracle=bool(model_entry.cls.uses_test_interactions))
        _seed_everything(seed)
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
    out = {}
    for k, v in manifest.items():
        if isinstance(v, (list, tuple)) and len(v) > limit:
            out[k] = list(v[:limit]) + [f"... {len(v) - limit} more"]
        elif isinstance(v, dict):
            out[k] = _small_manifest(v, limit)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------- driver side


class RunLock:
    """An exclusive lock on OUT so that two runs never write into the same folder.

    ``OUT/.lock`` is an OS lock (`filelock`: flock where the filesystem has it), released by
    the kernel when the process dies, so neither a crash nor a full disk leaves a lock that
    blocks later runs. The holder's pid and host go to the side file ``OUT/.lock.owner``,
    only for the "in use by" message."""

    def __init__(self, out: Path):
        self.path = out / ".lock"
        self.owner_path = out / ".lock.owner"
        self._lock = None

    def __enter__(self) -> RunLock:
        import filelock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path), timeout=0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            pid, host = self._owner()
            raise RecbenchError(
                f"{self.path.parent} is in use by another recbench run (pid {pid} on "
                f"{host}); wait for it to finish") from None
        try:
            results.atomic_write_text(self.owner_path,
                                      f"{os.getpid()} {socket.gethostname()}\n")
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        return self

    def _owner(self) -> tuple[int | str, str]:
        try:
            pid, host = self.owner_path.read_text().split()[:2]
            return int(pid), host
        except (OSError, ValueError):
            return "?", "?"

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            try:
                self.owner_path.unlink(missing_ok=True)
            except OSError:
                pass
            self._lock.release()
            self._lock = None


@dataclass
class RunSummary:
    """What a run did."""

    ran: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


def _archive_stale(out: Path, keep: set[str]) -> None:
    cells = out / "cells"
    if not cells.is_dir():
        return
    stale = [p for p in cells.iterdir() if p.suffix in (".json", ".npz") and p.stem not in keep]
    if not stale:
        return
    dest = out / "archive" / _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    dest.mkdir(parents=True, exist_ok=True)
    for p in stale:
        shutil.move(str(p), dest / p.name)
    log.info("moved %d earlier cell results to %s", len(stale), dest)


def check_output_folder(out: Path) -> None:
    """A RecbenchError (one line) when `out` cannot be a writable output folder."""
    for p in [out, *out.parents]:
        if p.exists():
            if not p.is_dir():
                raise RecbenchError(f"{p}: output path is a file, not a folder"
                                    if p == out else f"{out}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise RecbenchError(f"{out}: cannot write into {p} (read-only or no "
                                    f"permission)")
            return


def run_suite(suite: Suite, out: Path, *, resume: bool = False, device: str | None = None,
              executor_name: str | None = None, executor_params: dict | None = None,
              limit: int | None = None, show_progress: bool = True,
              cache_dir: str | None = None) -> RunSummary:
    """Run every cell of `suite` into `out`, one fit unit (model x seed) at a time through
    the executor; returns a summary (exit code included)."""
    registry = default_registry()
    out = Path(out)
    check_output_folder(out)
    cache_dir = resolve_cache_dir(suite, cache_dir)
    if suite.notice:
        log.warning("\n%s\nNOTICE: %s\n%s", "!" * 78, suite.notice, "!" * 78)
    device = resolve_device(device or suite.run["device"])
    exec_spec = suite.executor
    name = executor_name or exec_spec.name
    params = dict(exec_spec.options if name == exec_spec.name else {})
    params.update(executor_params or {})
    from . import threads as _threads  # thread policy: [run] threads / reproducible
    params = _threads.executor_params(
        suite.run, params, {p.name for p in registry.get("executor", name).cls.params})
    executor = registry.create("executor", name, **params)
    summary = RunSummary()
    with RunLock(out):
        units = plan_units(suite, device=device, cache_dir=cache_dir, limit=limit,
                           show_progress=show_progress and executor.in_process)
        cells = [c for u in units for c in u.cells]
        ids = {c.cell_id for c in cells}
        done: set[str] = set()
        if resume:
            corrupt: list[Path] = []
            done = results.finished_ids(results.read_cell_files(out, corrupt)) & ids
            for p in corrupt:
                log.warning("%s is corrupt: that cell is recomputed (the file goes to "
                            "archive/)", p)
            bad_npz = {cid for cid in done if not results.per_user_readable(out, cid)}
            for cid in sorted(bad_npz):
                log.warning("%s is corrupt: that cell is recomputed (the files go to "
                            "archive/)", out / "cells" / f"{cid}.npz")
            done -= bad_npz
        _archive_stale(out, done)
        (out / "cells").mkdir(parents=True, exist_ok=True)
        results.rebuild_jsonl(out)  # from here on, each finished cell is appended
        results.atomic_write_text(out / "plan.json", json.dumps({
            "suite": suite.name, "suite_path": suite.path, "cells": [
                {"cell_id": c.cell_id, "task": c.task, "model": c.model, "seed": c.seed}
                for c in cells]}, indent=1))
        # a unit runs only its unfinished cells; one with none left is skipped
        todo = [replace(u, cells=[c for c in u.cells if c.cell_id not in done])
                for u in units]
        todo = [u for u in todo if u.cells]
        summary.skipped = len(cells) - sum(len(u.cells) for u in todo)
        audio_models = any("audio" in registry.get("recommender", m.name).cls.consumes
                           for m in suite.models)
        if todo and audio_models and not executor.in_process:
            # Parallel units would each extract the features: do it once, in parallel.
            try:
                prefetch_features(suite, executor, cache_dir=cache_dir or default_cache_dir(),
                                  limit=limit)
            except RecbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - the units extract for themselves
                log.warning("feature prefetch failed (%s); cells will extract", _one_line(exc))
        if summary.skipped:
            log.info("resuming: %d of %d cells already finished", summary.skipped, len(cells))
        log.info("%d fit units (model x seed) for %d cells", len(todo),
                 len(cells) - summary.skipped)
        bar = None
        complete = False
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(cells), initial=summary.skipped, desc="cells", unit="cell",
                       dynamic_ncols=True)
        try:
            for i, rows in executor.map(run_fit_unit, todo):
                for c, row in zip(todo[i].cells, rows):
                    results.write_cell(out, row)
                    summary.ran += 1
                    if row["status"] != "ok":
                        summary.failed += 1
                        summary.failures.append(
                            f"{c.task}/{c.model}/seed {c.seed}: {row['error']}")
                        log.error("cell %s / %s / seed %s failed: %s", c.task, c.model,
                                  c.seed, row["error"])
                    else:
                        log.info("cell %s / %s / seed %s: %s (%.1fs)", c.task, c.model, c.seed,
                                 ", ".join(f"{k}={v:.4f}" for k, v in row["metrics"].items()),
                                 row["timing"].get("total_s", 0))
                    if bar is not None:
                        bar.update(1)
            complete = True
        except KeyboardInterrupt:
            summary.interrupted = True
            log.warning("interrupted: %d finished cells kept in %s; rerun with --resume",
                        summary.ran + summary.skipped, out)
        finally:
            if bar is not None:
                bar.close()
            executor.close()
            if not complete:  # an interrupt may have come between a cell and its line
                results.rebuild_jsonl(out)
        from .leaderboard import write_leaderboards

        write_leaderboards(out, references=suite.references,
                           primary_metric=suite.primary_metric)
    return summary
