"""The dataset and split of a suite, loaded once per worker process."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..components import LoadContext
from ..errors import RecbenchError
from ..registry import default_registry
from ..suite import Suite


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


def load_dataset(suite: Suite, cache_dir: str, limit: int | None = None,
                 progress: Callable[..., Any] = lambda it, **kw: it):
    """The suite's dataset, loaded once per process (`WORKER_CACHE`)."""
    return WORKER_CACHE.dataset(suite, cache_dir, limit, progress)


def load_split(suite: Suite, dataset) -> Any:
    """The suite's split of `dataset`, computed once per process (`WORKER_CACHE`)."""
    return WORKER_CACHE.split(suite, dataset)
