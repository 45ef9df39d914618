"""Extraction of every song's features into a cache entry (written atomically)."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..io.atomic import atomic_path
from ..io.dataset import AudioSource, Dataset, hash_arrays
from ..errors import DataError
from .drops import EmptyAudio, NonFiniteAudio, SilentAudio, drop_reason
from .frontend import (SILENCE_PEAK, _CHUNK, _KEY_NEUTRAL, _NOT_EXTRACTED, _resample, logmel,
                       n_frames, resolve_params)
from .store import _FORMAT, _VERIFIED, _file_record, _key_of

log = logging.getLogger("recbench")


# --------------------------------------------------------------------------- extraction


def _audio_of(dataset: Dataset) -> AudioSource:
    """The dataset's audio; extraction needs it (callers check before extracting)."""
    if dataset.audio is None:
        raise DataError("the dataset has no audio to extract features from")
    return dataset.audio


def cache_key(dataset: Dataset, kind: str, params: dict[str, Any]) -> str:
    """Hash of every song's audio identity and the feature parameters that change what is
    extracted (newer parameters at their default are left out: old keys stay valid)."""
    audio = _audio_of(dataset)
    ids = np.array([audio.identity(i) for i in range(len(audio))])
    keyed = {k: v for k, v in params.items() if k not in _NOT_EXTRACTED
             and not (k in _KEY_NEUTRAL and v == _KEY_NEUTRAL[k])}
    return hash_arrays(_FORMAT, kind, sorted(keyed.items()), int(audio.sample_rate),
                       ids)


def extract_songs(dataset: Dataset, songs: np.ndarray, kind: str, params: dict[str, Any],
                  max_samples: int | None):

    """Features of some songs of `dataset` (what one executor task computes): a list of
    float16 (steps, C) arrays (None where the audio failed) and {song: error}."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _extract_chunk(dataset.audio, np.asarray(songs), kind,
                              resolve_params(params, dataset), max_samples)
    finally:
        torch.set_num_threads(threads)


def _extract_chunk(audio, songs: np.ndarray, kind: str, params: dict[str, Any],
                   max_samples: int | None):
    """Features of `songs`: list of float16 (steps, C) arrays (None if failed) + errors."""
    sr = params["sample_rate"]
    waves: list[np.ndarray | None] = []
    errors: dict[int, str] = {}
    for s in songs:
        try:
            w = np.asarray(audio.waveform(int(s)), dtype=np.float32)
            if w.ndim != 1:
                raise DataError(f"expected mono samples, got shape {w.shape}")
            if not np.all(np.isfinite(w)):  # before resampling spreads them
                raise NonFiniteAudio(f"{int((~np.isfinite(w)).sum())} NaN or infinite "
                                     f"samples of {w.size}")
            w = _resample(w, int(audio.sample_rate), sr)
            if max_samples is not None:
                w = w[:max_samples]
            if w.size == 0:
                raise EmptyAudio("empty audio")
            peak = float(np.max(np.abs(w)))
            if not peak >= SILENCE_PEAK:
                raise SilentAudio(f"silent audio (peak |sample| {peak:.3g} < {SILENCE_PEAK:g})")
            waves.append(w)
        except Exception as exc:  # noqa: BLE001 - any unreadable song is dropped and counted
            errors[int(s)] = f"{type(exc).__name__}: {exc}"
            waves.append(None)
    ok = {j: w for j, w in enumerate(waves) if w is not None}
    feats: dict[int, np.ndarray] = {}
    if kind == "waveform":
        with np.errstate(over="ignore"):  # an overflow becomes inf: dropped just below
            for j, w in ok.items():
                feats[j] = w.astype(np.float16)[:, None]
    elif ok:
        # one STFT per song: batching a chunk into one padded STFT measured twice the CPU
        # per song (large intermediates), for bit-identical output
        for j, w in ok.items():
            spec = logmel(w[None], params)[0]
            with np.errstate(over="ignore"):
                feats[j] = spec[:n_frames(len(w), params["hop_length"])].astype(np.float16)
    out: list[np.ndarray | None] = [None] * len(songs)
    for j, arr in feats.items():  # what is stored (float16) must be finite, or it is dropped
        bad = ~np.isfinite(arr)
        if bad.any():
            s = int(songs[j])
            errors[s] = (f"NonFiniteFeatures: {int(bad.sum())} of {bad.size} {kind} values "
                         f"are NaN or infinite in float16 (peak |sample| "
                         f"{float(np.max(np.abs(ok[j]))):.3g})")
        else:
            out[j] = arr
    return out, errors


def _extract(dataset: Dataset, kind: str, params: dict[str, Any], workers: int,
             npy_path: str, npz_path: str, map_chunks=None) -> None:
    """Extract every song's features into the cache files (atomically; an interrupted
    extraction leaves no temporary file behind). The array goes into place first, then its
    record: a reader never sees a record without its array."""
    with atomic_path(npy_path, suffix=".npy") as tmp:
        lengths, sums, sumsq, errors, record = _extract_to(dataset, kind, params, workers,
                                                           str(tmp), map_chunks)
    failed = np.array(sorted(errors), dtype=np.int64)
    with atomic_path(npz_path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, lengths=lengths, sums=sums, sumsq=sumsq, failed=failed,
                 messages=np.array([errors[i] for i in failed], dtype=str),
                 format=np.array(_FORMAT), key=np.array(_key_of(npy_path)),
                 npy_size=np.array(record["size"], dtype=np.int64),
                 npy_shape=np.array(record["shape"], dtype=np.int64),
                 npy_dtype=np.array(record["dtype"]),
                 npy_checksum=np.array(record["checksum"]))
    st = os.stat(npy_path)
    _VERIFIED[npy_path] = (st.st_size, st.st_mtime_ns, st.st_ino, record["checksum"])
    if errors:
        reasons: dict[str, int] = {}
        for m in errors.values():
            reasons[drop_reason(m)] = reasons.get(drop_reason(m), 0) + 1
        first = min(errors)
        log.warning("%s features: %d of %d songs dropped (%s); first: song %s: %s", kind,
                    len(errors), len(lengths),
                    ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())),
                    dataset.song_ids[first], errors[first][:200])


def _extract_to(dataset: Dataset, kind: str, params: dict[str, Any], workers: int,
                tmp_npy: str, map_chunks=None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, str], dict[str, Any]]:
    """Write every song's features into the array file `tmp_npy`; (lengths, per-song sums
    and sums of squares, errors by song, the array's integrity record)."""
    audio = _audio_of(dataset)
    n = len(audio)
    c = params["n_mels"] if kind == "logmel" else 1
    max_samples = None
    if params["clip_s"] is not None:
        max_samples = round(params["clip_s"] * params["sample_rate"])
    chunks = [np.arange(i, min(i + _CHUNK, n)) for i in range(0, n, _CHUNK)]
    lengths = np.zeros(n, dtype=np.int64)
    sums = np.zeros((n, c))
    sumsq = np.zeros((n, c))
    errors: dict[int, str] = {}
    held: dict[int, np.ndarray] = {}

    mm = None
    if max_samples is not None:  # known number of steps: stream straight into the memmap
        steps = max_samples if kind == "waveform" else n_frames(max_samples,
                                                                params["hop_length"])
        mm = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.float16,
                                       shape=(n, steps, c))

    def store(chunk: np.ndarray, feats: list) -> None:
        for s, f in zip(chunk, feats):
            if f is None:
                continue
            x = f.astype(np.float64)  # stats of the stored (float16-rounded) values
            sums[s] = x.sum(axis=0)
            sumsq[s] = np.square(x).sum(axis=0)
            lengths[s] = len(f)
            if mm is not None:
                mm[s, :len(f)] = f
            else:
                held[int(s)] = f

    def run(chunk: np.ndarray):
        feats, errs = _extract_chunk(audio, chunk, kind, params, max_samples)
        store(chunk, feats)
        return errs

    import torch

    threads = torch.get_num_threads()
    try:
        # parallel over songs, each STFT on one intra-op thread: torch's own threading
        # on small per-chunk STFTs costs more CPU than it saves (measured 2.6x more)
        torch.set_num_threads(1)
        if map_chunks is not None:  # e.g. the suite's executor: workers compute, we store
            for i, (feats, errs) in map_chunks(chunks, params, max_samples):
                store(chunks[i], feats)
                errors.update(errs)
        elif workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for errs in pool.map(run, chunks):
                    errors.update(errs)
        else:
            for chunk in chunks:
                errors.update(run(chunk))
    finally:
        torch.set_num_threads(threads)

    if mm is None:
        steps = max(int(lengths.max()), 1) if n else 1
        mm = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.float16,
                                       shape=(n, steps, c))
        for s, f in held.items():
            mm[s, :len(f)] = f
        held.clear()
    shape = mm.shape
    mm.flush()
    mm = None  # unmap before the rename
    return lengths, sums, sumsq, errors, _file_record(tmp_npy, shape)
