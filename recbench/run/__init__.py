"""The run stage: a suite expands into fit units (model x seed), each fitted once and then
evaluated by every task that applies to the model, one result row (cell) per task.

An executor maps `run_fit_unit` over the units (a `FitUnit` is picklable: it carries the
resolved suite, so process and Dask workers never re-validate it); each finished cell is
written atomically as soon as its unit returns. Cell ids, result files and resume stay
per cell: a unit whose cells are all finished is skipped, a partly finished one runs only
its missing tasks. Each worker process keeps the dataset and split in `WORKER_CACHE`.
"""

from __future__ import annotations

from .plan import default_cache_dir, resolve_cache_dir, CellPlan, FitUnit, plan_units, plan_cells
from .prefetch import extract_features_task, prefetch_features
from .worker import run_fit_unit
from .lock import RunLock
from .runner import RunSummary, check_output_folder, run_suite

__all__ = ["CellPlan", "FitUnit", "RunLock", "RunSummary", "check_output_folder",
           "default_cache_dir", "extract_features_task", "plan_cells", "plan_units",
           "prefetch_features", "resolve_cache_dir", "run_fit_unit", "run_suite"]
