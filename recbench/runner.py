"""Old path of the run stage (kept for one release): use `recbench.run` (plan, worker,
lock, runner) and `recbench.split` (the per-process dataset and split cache)."""

from __future__ import annotations

from .run.lock import RunLock
from .run.plan import (CellPlan, FitUnit, default_cache_dir, plan_cells, plan_units,
                       resolve_cache_dir)
from .run.prefetch import extract_features_task, prefetch_features
from .run.runner import RunSummary, check_output_folder, run_suite
from .run.worker import run_fit_unit
from .split.cache import WORKER_CACHE, WorkerCache, load_dataset, load_split

__all__ = ["CellPlan", "FitUnit", "RunLock", "RunSummary", "WORKER_CACHE", "WorkerCache",
           "check_output_folder", "default_cache_dir", "extract_features_task", "load_dataset",
           "load_split", "plan_cells", "plan_units", "prefetch_features", "resolve_cache_dir",
           "run_fit_unit", "run_suite"]
