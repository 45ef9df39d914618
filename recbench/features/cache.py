"""load_features: a verified cache entry, extracted or rebuilt under its lock when needed."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..io.dataset import Dataset
from ..errors import ConfigError, DataError
from .drops import drop_reason
from .extract import _extract, cache_key
from .frontend import KINDS, MAX_NAMED_DROPPED, resolve_params
from .song_features import SongFeatures, _song_sums, _stats
from .store import CacheEntryDamaged, _file_lock, _read_entry

log = logging.getLogger("recbench")


def default_workers() -> int:
    """Worker threads for extraction: the usable cores, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def load_features(dataset: Dataset, kind: str, train_songs: Sequence[int] | np.ndarray,
                  cache_dir: str | os.PathLike, params: dict[str, Any] | None = None,
                  workers: int | None = None, map_chunks=None) -> SongFeatures:

    """Features of every song of `dataset`, standardised on `train_songs`.

    kind: "logmel" (n_mels channels, one step per STFT hop) or "waveform" (1 channel,
    one step per sample at params['sample_rate']). Uses dataset.features[kind] when the
    dataset ships precomputed features (optional dataset.features[kind + ".lengths"]);
    otherwise extracts from dataset.audio with `workers` threads (default: usable cores)
    and caches the result in `cache_dir`, where a later call with the same audio and
    parameters reads it back. Songs whose audio raises get length 0 and are listed in
    `.failed` (the caller counts and drops them).

    `map_chunks(chunks, params, max_samples)`, when given, computes the extraction elsewhere (the
    runner passes its executor): it yields (chunk position, (features, errors)) as
    :func:`extract_songs` returns them for ``chunks[position]``, in any order.
    """
    if kind not in KINDS and kind not in dataset.features:  # e.g. pretrained "embedding"
        raise ConfigError(f"unknown feature kind {kind!r}; expected one of {', '.join(KINDS)}",
                          key="features.kind")
    p = resolve_params(params, dataset)
    from .pretrained import features_key, window_of

    win = window_of(kind, p)
    train_songs = np.asarray(train_songs, dtype=np.int64)

    if kind in dataset.features:
        arr = dataset.features[kind]
        if arr.ndim != 3 or arr.shape[0] != dataset.n_songs:
            raise DataError(f"dataset {dataset.name}: features[{kind!r}] has shape {arr.shape}"
                            f"; expected ({dataset.n_songs}, steps, channels)")
        lengths = dataset.features.get(f"{kind}.lengths")
        lengths = (np.full(arr.shape[0], arr.shape[1], dtype=np.int64) if lengths is None
                   else np.minimum(np.asarray(lengths, dtype=np.int64), arr.shape[1]))
        errors = {int(i): "no precomputed features" for i in np.flatnonzero(lengths == 0)}
        # a NaN or infinite value drops the song (length 0): the training songs' sums show
        # it; the other songs are checked directly (no float64 pass over them)
        sums, sumsq = _song_sums(arr, lengths, train_songs)
        full_sums = np.zeros((arr.shape[0], arr.shape[2]))
        full_sq = np.zeros_like(full_sums)
        full_sums[train_songs], full_sq[train_songs] = sums, sumsq
        bad = np.zeros(arr.shape[0], dtype=bool)
        bad[train_songs] = ~(np.isfinite(sums).all(axis=1) & np.isfinite(sumsq).all(axis=1))
        for i in np.setdiff1d(np.arange(arr.shape[0]), train_songs):
            bad[i] = not np.isfinite(arr[i, :lengths[i]]).all()
        if bad.any():
            for i in np.flatnonzero(bad):
                errors[int(i)] = ("NonFiniteFeatures: precomputed features hold NaN or "
                                  "infinite values")
            log.warning("%s features of dataset %s: %d songs hold NaN or infinite values; "
                        "dropped", kind, dataset.name, int(bad.sum()))
            lengths = lengths.copy()
            lengths[bad] = 0
            full_sums[bad] = 0.0
            full_sq[bad] = 0.0
        mean, std = _stats(full_sums, full_sq, lengths, train_songs, p["normalise"])
        failed = np.array(sorted(errors), dtype=np.int64)
        return SongFeatures(kind, arr, lengths, mean, std, win, failed=failed, errors=errors,
                            params=p, key=features_key(dataset, kind),
                            manifest=_manifest(dataset, kind, features_key(dataset, kind),
                                               errors, {
                                "entry": "precomputed by the dataset",
                                "verified": "finite values"}))

    if dataset.audio is None:
        raise DataError(f"dataset {dataset.name} has no audio and no precomputed "
                        f"{kind!r} features; audio models cannot run on it")
    if len(dataset.audio) != dataset.n_songs:
        raise DataError(f"dataset {dataset.name}: audio has {len(dataset.audio)} songs, "
                        f"interactions have {dataset.n_songs}")
    key = cache_key(dataset, kind, p)
    os.makedirs(cache_dir, exist_ok=True)
    npy_path = os.path.join(os.fspath(cache_dir), f"{kind}-{key}.npy")
    npz_path = os.path.join(os.fspath(cache_dir), f"{kind}-{key}.npz")
    lock_path = os.path.join(os.fspath(cache_dir), f"{kind}-{key}.lock")
    n_channels = p["n_mels"] if kind == "logmel" else 1
    cache: dict[str, Any] = {"entry": "read"}

    def extract() -> None:
        _extract(dataset, kind, p, workers or default_workers(), npy_path, npz_path,
                 map_chunks)
        cache["entry"] = "extracted"

    if not (os.path.exists(npy_path) and os.path.exists(npz_path)):
        # one extraction per cache entry even when parallel cells ask at once: the others
        # wait on the lock, then find the finished entry
        with _file_lock(lock_path):
            if not (os.path.exists(npy_path) and os.path.exists(npz_path)):
                extract()
    try:
        arr, meta, how = _read_entry(npy_path, npz_path, dataset.n_songs, n_channels)
    except CacheEntryDamaged as exc:
        log.warning("feature cache entry %s is damaged (%s); rebuilding it", npy_path, exc)
        with _file_lock(lock_path):
            try:  # another process may have rebuilt it meanwhile
                _read_entry(npy_path, npz_path, dataset.n_songs, n_channels)
            except CacheEntryDamaged:
                extract()
        cache["rebuilt"] = str(exc)
        try:
            arr, meta, how = _read_entry(npy_path, npz_path, dataset.n_songs, n_channels)
        except CacheEntryDamaged as again:
            raise DataError(f"{npy_path}: feature cache entry still damaged after rebuilding "
                            f"({again}); delete it and check the disk") from None
    cache["verified"] = ("checksum recorded at extraction; size, shape and record checked"
                         if cache["entry"] == "extracted" else how)
    lengths, sums, sumsq = meta["lengths"], meta["sums"], meta["sumsq"]
    failed = meta["failed"]
    errors = dict(zip(failed.tolist(), meta["messages"].tolist()))
    mean, std = _stats(sums, sumsq, lengths, train_songs, p["normalise"])
    return SongFeatures(kind, arr, lengths, mean, std, win, failed=failed, errors=errors,
                        params=p, key=key,
                        manifest=_manifest(dataset, kind, key, errors, cache))


def _manifest(dataset: Dataset, kind: str, key: str, errors: dict[int, str],
              cache: dict[str, Any]) -> dict[str, Any]:
    """SongFeatures.manifest (see there): bounded whatever the number of dropped songs."""
    reasons: dict[str, int] = {}
    named: list[dict[str, str]] = []
    for i in sorted(errors):
        r = drop_reason(errors[i])
        reasons[r] = reasons.get(r, 0) + 1
        if len(named) < MAX_NAMED_DROPPED:
            named.append({"song": str(dataset.song_ids[i]), "reason": r,
                          "detail": " ".join(str(errors[i]).split())[:200]})
    out: dict[str, Any] = {"kind": kind, "key": key, "n_songs": int(dataset.n_songs),
                           "n_dropped": len(errors), "dropped": reasons,
                           "dropped_songs": named, "cache": dict(cache)}
    if len(errors) > len(named):
        out["dropped_songs_truncated"] = True
    if errors:
        out["dropped_songs_seen_as"] = ("no audio: left out of training and of the "
                                        "standardisation; scored from one all-zero "
                                        "standardised window")
    return out
