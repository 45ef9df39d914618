"""Feature extraction through the executor before the fit units run."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..suite import Suite
from ..split.cache import load_dataset, load_split

log = logging.getLogger("recbench")


def extract_features_task(payload: dict[str, Any]) -> tuple[list, dict]:
    """One executor task of feature extraction: the features of `payload['songs']` of
    `payload['suite']`'s dataset."""
    from ..features import extract_songs

    dataset = load_dataset(payload["suite"], payload["cache_dir"], payload.get("limit"))
    return extract_songs(dataset, payload["songs"], payload["kind"], payload["params"],
                         payload["max_samples"])


def prefetch_features(suite: Suite, executor, *, cache_dir: str, limit: int | None,
                      kind: str = "logmel") -> None:
    """Extract (or find cached) the suite's features through `executor` before the fit
    units run, so parallel units only read the cache instead of each extracting."""
    from ..features import load_features

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
