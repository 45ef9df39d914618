"""The split stage: the `Split` a splitter plugin makes of a dataset (defined with the
dataset in `recbench.io.dataset`), and the per-process cache of the dataset and split that
the fit units of a run share."""

from __future__ import annotations

from ..io.dataset import Split
from .cache import WORKER_CACHE, WorkerCache, load_dataset, load_split

__all__ = ["Split", "WORKER_CACHE", "WorkerCache", "load_dataset", "load_split"]
