"""The runner: a suite expands into cells (model x seed x task), each run by an executor
and written atomically as soon as it finishes.

`run_cell` is a top-level function of one picklable payload so that process and Dask
executors can ship it; each worker process memoises the dataset, the split and the last
fitted model (the tasks of one model and seed share one fit).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import results
from .components import CellContext, FitContext, LoadContext
from .env import device_info, environment, peak_rss_mb, resolve_device
from .errors import RecbenchError
from .registry import default_registry
from .suite import Suite, validate_raw

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
    """One cell to run and the payload its worker needs."""

    cell_id: str
    task: str
    model: str
    seed: int
    payload: dict[str, Any] = field(repr=False)


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


def plan_cells(suite: Suite, *, device: str = "cpu", cache_dir: str | None = None,
               limit: int | None = None, show_progress: bool = False) -> list[CellPlan]:
    """Cells in model-major order (model, seed, task) so that tasks share a fit. Tasks that
    do not apply to a model (e.g. tagging a model without song vectors) get no cell."""
    registry = default_registry()
    tasks = [registry.create("task", t.spec.name, **t.spec.options) for t in suite.tasks]
    cells = []
    for mi, model in enumerate(suite.models):
        instance = registry.create("recommender", model.name, **model.options)
        for ti, task in enumerate(suite.tasks):
            if not tasks[ti].applies_to(instance):
                log.info("task %s does not apply to model %s: no cells", task.spec.id, model.id)
        for seed in suite.seeds:
            for ti, task in enumerate(suite.tasks):
                if not tasks[ti].applies_to(instance):
                    continue
                payload = {"suite_raw": suite.raw, "suite_path": suite.path, "task_idx": ti,
                           "model_idx": mi, "seed": seed, "device": device,
                           "cache_dir": cache_dir or default_cache_dir(), "limit": limit,
                           "show_progress": show_progress}
                cid = _cell_id(suite, ti, mi, seed)
                payload["cell_id"] = cid
                payload["fit_group"] = f"{model.config_hash}:{seed}"
                cells.append(CellPlan(cid, task.spec.id, model.id, seed, payload))
    return cells


# --------------------------------------------------------------------------- worker side

_STATE: dict[str, Any] = {"suites": {}, "data": {}, "splits": {}, "fitted": None}


def _progress_fn(show: bool) -> Callable[..., Any]:
    if not show:
        return lambda it, **kw: it
    from tqdm.auto import tqdm

    def progress(it, **kw):
        kw.setdefault("leave", False)
        kw.setdefault("dynamic_ncols", True)
        return tqdm(it, **kw)
    return progress


def _suite_from_payload(p: dict[str, Any]) -> Suite:
    key = hashlib.sha256(json.dumps(p["suite_raw"], sort_keys=True, default=str).encode()
                         ).hexdigest()
    if key not in _STATE["suites"]:
        _STATE["suites"] = {key: validate_raw(p["suite_raw"], default_registry(),
                                              p["suite_path"])}
    return _STATE["suites"][key]


def load_dataset(suite: Suite, cache_dir: str, limit: int | None = None,
                 progress: Callable[..., Any] = lambda it, **kw: it):
    """The suite's dataset, loaded once per process."""
    key = (suite.dataset.config_hash, limit)
    if key not in _STATE["data"]:
        registry = default_registry()
        loader = registry.create("dataset", suite.dataset.name, **suite.dataset.options)
        ctx = LoadContext(cache_dir=cache_dir, limit=limit, suite_dir=str(Path(suite.path).parent),
                          progress=progress)
        t0 = time.perf_counter()
        data = loader.load(ctx)
        data.manifest.setdefault("load_s", round(time.perf_counter() - t0, 3))
        if data.n_users == 0 or data.n_songs == 0 or data.counts.nnz == 0:
            raise RecbenchError(f"dataset {suite.dataset.name!r} is empty after loading")
        _STATE["data"] = {key: data}  # keep one dataset in memory
    return _STATE["data"][key]


def load_split(suite: Suite, dataset) -> Any:
    """The suite's split of `dataset`, computed once per process."""
    key = (suite.split.config_hash, suite.split_seed, dataset.fingerprint)
    if key not in _STATE["splits"]:
        splitter = default_registry().create("split", suite.split.name, **suite.split.options)
        _STATE["splits"] = {key: splitter.split(dataset, suite.split_seed)}
    return _STATE["splits"][key]


def extract_features_task(payload: dict[str, Any]) -> tuple[list, dict]:
    """One executor task of feature extraction: the features of `payload['songs']`."""
    from .features import extract_songs

    suite = _suite_from_payload(payload)
    dataset = load_dataset(suite, payload["cache_dir"], payload.get("limit"))
    return extract_songs(dataset, payload["songs"], payload["kind"], payload["params"],
                         payload["max_samples"])


def prefetch_features(suite: Suite, executor, *, cache_dir: str, limit: int | None,
                      kind: str = "logmel") -> None:
    """Extract (or find cached) the suite's features through `executor` before the cells
    run, so parallel cells only read the cache instead of each extracting."""
    from .features import load_features

    dataset = load_dataset(suite, cache_dir, limit)
    if dataset.audio is None and kind not in dataset.features:
        return
    split = load_split(suite, dataset)
    params = dict(dataset.manifest.get("feature_params", {}))
    params.update(suite.features)
    base = {"suite_raw": suite.raw, "suite_path": suite.path, "cache_dir": cache_dir,
            "limit": limit, "kind": kind}

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
    text = f"{type(exc).__name__}: {exc}".strip()
    return " ".join(text.split())[:2000]


def run_cell(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one cell and return its result row (status 'failed' with the error on failure)."""
    t_start = time.perf_counter()
    suite = _suite_from_payload(payload)
    ti, mi, seed = payload["task_idx"], payload["model_idx"], payload["seed"]
    task_spec, model_spec = suite.tasks[ti], suite.models[mi]
    registry = default_registry()
    model_entry = registry.get("recommender", model_spec.name)
    device = payload["device"]
    row: dict[str, Any] = {
        "schema": results.SCHEMA_VERSION,
        "cell_id": payload["cell_id"],
        "suite": suite.name,
        "task": task_spec.spec.name,
        "protocol": None,
        "dataset": {"name": suite.dataset.name, "params": suite.dataset.record_options,
                    "fingerprint": None,
                    "synthetic": bool(registry.get("dataset", suite.dataset.name).cls.synthetic)},
        "split": {"name": suite.split.name, "seed": suite.split_seed, "fingerprint": None,
                  "params": suite.split.record_options},
        "model": {"id": model_spec.id, "name": model_spec.name, "label": model_spec.label,
                  "params": model_spec.record_options, "config_hash": model_spec.config_hash,
                  "uses_test_interactions": bool(model_entry.cls.uses_test_interactions),
                  "consumes": list(model_entry.cls.consumes),
                  "provider": model_entry.provider},
        "seed": seed, "metrics": {}, "metrics_ci": {}, "metrics_ci_level": suite.confidence,
        "metric_info": {}, "throughput": {},
        "timing": {}, "peak_rss_mb": None, "device": {"type": device},
        "env": environment(), "status": "failed", "error": None, "extra": {},
        "features": suite.features,
    }
    progress = _progress_fn(payload.get("show_progress", False))
    try:
        dataset = load_dataset(suite, payload["cache_dir"], payload.get("limit"), progress)
        split = load_split(suite, dataset)
        memory = {"after_data_mb": round(peak_rss_mb(), 1)}
        row["memory"] = memory
        row["dataset"].update(dataset.summary())
        row["dataset"]["params"] = suite.dataset.record_options
        row["dataset"]["manifest"] = suite.redact(_small_manifest(dataset.manifest))
        if suite.notice:
            row["dataset"]["notice"] = suite.notice
        row["split"].update(split.summary())
        row["protocol"] = split.protocol
        row["device"] = device_info(device)

        fit_key = (model_spec.config_hash, seed, split.fingerprint, device)
        fitted = _STATE["fitted"]
        if fitted is not None and fitted[0] == fit_key:
            model, fit_s, feature_info = fitted[1], fitted[2], fitted[3]
            state = {"done": True, "fit_s": fit_s, "cached": True}
        else:
            model = registry.create("recommender", model_spec.name, **model_spec.options)
            feature_info = {}
            state = {"done": False, "fit_s": 0.0, "cached": False}
            _STATE["fitted"] = None
        row["dataset"]["features"] = feature_info  # {kind: SongFeatures.manifest}

        def features(kind: str, _params: dict | None = None):
            from .features import load_features

            params = dict(dataset.manifest.get("feature_params", {}))
            params.update(suite.features)
            params.update(_params or {})
            f = load_features(dataset, kind, split.train_songs, payload["cache_dir"],
                              params=params)
            feature_info[kind] = f.manifest
            return f

        fit_ctx = FitContext(dataset=dataset, split=split, seed=seed, device=device,
                             create=registry.create, features=features, progress=progress,
                             oracle=bool(model_entry.cls.uses_test_interactions))

        def ensure_fitted() -> float:
            if not state["done"]:
                _seed_everything(seed)
                t0 = time.perf_counter()
                model.fit(fit_ctx)
                state["fit_s"] = time.perf_counter() - t0
                memory["after_fit_mb"] = round(peak_rss_mb(), 1)
                state["done"] = True
                _STATE["fitted"] = (fit_key, model, state["fit_s"], feature_info)
            return state["fit_s"]

        task = registry.create("task", task_spec.spec.name, **task_spec.spec.options)
        metrics = [(m.column, registry.create("metric", m.name), m.k)
                   for m in task_spec.metrics]
        ctx = CellContext(dataset=dataset, split=split, model=model, metrics=metrics,
                          fit=fit_ctx, seed=seed, ensure_fitted=ensure_fitted,
                          bootstrap=suite.bootstrap, confidence=suite.confidence,
                          chunk_users=suite.run["chunk_users"],
                          progress=progress)
        out = task.run(ctx)
        memory["after_eval_mb"] = round(peak_rss_mb(), 1)
        row["metrics"] = out.metrics
        row["metrics_ci"] = out.metrics_ci
        row["metric_info"] = out.extra.pop("metric_info", {})
        ignored = set(out.extra.get("ignored_metrics") or ())
        _check_metrics_defined(row, [m.column for m in task_spec.metrics
                                     if m.column not in ignored] + list(out.metrics))
        row["throughput"] = {**model.throughput(), **out.throughput}
        row["model"]["fit"] = model.fit_report()
        row["timing"] = dict(out.timing)
        row["timing"]["fit_shared"] = state["cached"]
        per_user = out.extra.pop("per_user", None)
        row["extra"] = out.extra
        if per_user:
            row["_per_user"] = per_user  # stored beside the row as <cell_id>.npz
        row["status"] = "ok"
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a failing cell is recorded,
        # the others still run (a plugin calling sys.exit() fails only its cell)
        row["status"] = "failed"
        row["error"] = _one_line(exc) if not isinstance(exc, SystemExit) else (
            f"SystemExit: the plugin called sys.exit({exc.code!r})")
        row["extra"]["traceback"] = traceback.format_exc(limit=20)
        _STATE["fitted"] = None
    row["timing"]["total_s"] = round(time.perf_counter() - t_start, 4)
    row["peak_rss_mb"] = round(peak_rss_mb(), 1)
    row["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return row


def _check_metrics_defined(row: dict[str, Any], columns: list[str]) -> None:
    """A metric that is missing, NaN or infinite (no evaluable user, or undefined for every
    user) fails the cell, naming the metric and why, instead of an ok row without a number."""
    import math

    bad = []
    if not columns:
        raise RecbenchError("the task reported no metric")
    for col in dict.fromkeys(columns):
        v = row["metrics"].get(col)
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) \
                and math.isfinite(float(v)):
            continue
        info = row["metric_info"].get(col) or {}
        n, excluded = info.get("n_users"), info.get("excluded_users")
        if col not in row["metrics"]:
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
    """Run every cell of `suite` into `out`; returns a summary (exit code included)."""
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
        cells = plan_cells(suite, device=device, cache_dir=cache_dir, limit=limit,
                           show_progress=show_progress and executor.in_process)
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
        todo = [c for c in cells if c.cell_id not in done]
        summary.skipped = len(cells) - len(todo)
        audio_models = any("audio" in registry.get("recommender", m.name).cls.consumes
                           for m in suite.models)
        if todo and audio_models and not executor.in_process:
            # Parallel cells would each extract the features: do it once, in parallel.
            try:
                prefetch_features(suite, executor, cache_dir=cache_dir or default_cache_dir(),
                                  limit=limit)
            except RecbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - the cells extract for themselves
                log.warning("feature prefetch failed (%s); cells will extract", _one_line(exc))
        if summary.skipped:
            log.info("resuming: %d of %d cells already finished", summary.skipped, len(cells))
        bar = None
        complete = False
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(cells), initial=summary.skipped, desc="cells", unit="cell",
                       dynamic_ncols=True)
        try:
            for i, row in executor.map(run_cell, [c.payload for c in todo]):
                results.write_cell(out, row)
                summary.ran += 1
                c = todo[i]
                if row["status"] != "ok":
                    summary.failed += 1
                    summary.failures.append(f"{c.task}/{c.model}/seed {c.seed}: {row['error']}")
                    log.error("cell %s / %s / seed %s failed: %s", c.task, c.model, c.seed,
                              row["error"])
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
