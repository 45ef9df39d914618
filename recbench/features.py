"""Per-song audio features shared by every audio model: log-mel spectrograms or waveforms.

``load_features(dataset, kind, train_songs, cache_dir)`` extracts (or reads from the disk
cache) one array of shape (n_songs, n_steps, n_channels) float16 and returns a
:class:`SongFeatures` standardised with the mean and std of the TRAINING songs only.

Feature parameters (defaults = recbench's reading of the DCUE paper): ``sample_rate`` 22,050 Hz, ``n_fft`` 1024
(Hann window), ``hop_length`` 512, ``n_mels`` 128, ``fmin`` 0 Hz, ``fmax`` None (Nyquist),
``power`` 2.0 and ``amin`` 1e-10 (log-mel = 10 log10(max(mel power, amin)), i.e.
``librosa.power_to_db(ref=1, top_db=None)``), ``window_s`` 3.0 s per model input window,
``clip_s`` None (the whole clip; a number truncates each song and lets extraction stream to
disk instead of holding every song in memory), ``compression`` "db" (or "log10-1p-10x":
log10(1 + 10 mel)), ``normalise`` "per-bin" (or "global": one scalar mean and std),
``window_frames`` None (a number of frames per window, winning over ``window_s``).
The authors' released front end (design/AUTHORS_CODE.md section 1.3) is ``power = 1.0``,
``compression = "log10-1p-10x"``, ``normalise = "global"``, ``window_frames = 130``.
They are resolved as
defaults < ``dataset.manifest["feature_params"]`` (what the dataset says fits it) < ``params``.

Validation (no silently wrong number). At extraction a song is dropped -- length 0, listed
in ``failed`` with its reason -- when its audio does not decode, is empty, holds NaN or
infinite samples, is silent (peak |sample| below ``SILENCE_PEAK``, -120 dBFS: its log-mel
would be the constant floor ``10 log10(amin)``), or when its features hold NaN or infinite
values (e.g. a waveform beyond float16's range). ``SongFeatures.manifest`` counts the
dropped songs by reason and names the first ``MAX_NAMED_DROPPED``, and records how the
cache entry was verified or rebuilt; the runner copies it into each row that used the
features. What a model sees of a dropped song is what it sees of any song without audio:
nothing in training (the built-in audio models train on songs with length > 0 only) and
nothing in the standardisation statistics; at scoring it stays a candidate -- every model
is evaluated on the same songs, so rows stay comparable -- and is represented by one
all-zero standardised window (the training mean): an uninformative, identical input for
every dropped song, never features computed from broken audio.

Cache layout under ``cache_dir``: ``<kind>-<key>.npy`` (the float16 array, opened as a
memory map) and ``<kind>-<key>.npz`` (lengths, per-song sums and sums of squares for
standardisation, failures and their reasons, and the integrity record of the array: file
size, shape, dtype and SHA-256, with the format and key); ``key`` hashes every song's audio
identity and the parameters. Both files are written to a temporary name and moved into
place, the array first, so a reader never sees a partial entry. Every read checks the
record against the files (size, shape, dtype, key, finite statistics, lengths within the
array) and, once per process and file version, the array's SHA-256; an entry that fails --
overwritten, truncated, of the wrong shape, unreadable -- is logged, rebuilt under the
entry's lock, and the rebuild is noted in the manifest. Measured cost on the `small`
preset (16 MB entry, page cache warm, a shared 2-core machine): the first read in a
process takes 37 ms instead of 2 ms (SHA-256 28 ms, about 1.7 s per GB; the `paper`
preset's 3.1 GB entry: ~5 s, once per process); extraction took 13.9 s, so writing the
record adds 0.2%.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import Dataset, hash_arrays
from .errors import ConfigError, DataError

KINDS = ("logmel", "waveform")

DEFAULT_PARAMS: dict[str, Any] = {
    "sample_rate": 22050,
    "n_fft": 1024,
    "hop_length": 512,
    "n_mels": 128,
    "fmin": 0.0,
    "fmax": None,
    "power": 2.0,
    "amin": 1e-10,
    "window_s": 3.0,
    "clip_s": None,
    "compression": "db",
    "normalise": "per-bin",
    "window_frames": None,
}

COMPRESSIONS = ("db", "log10-1p-10x")
"""``db``: 10 log10(max(mel, amin)) (librosa.power_to_db); ``log10-1p-10x``: log10(1 + 10 mel),
the authors' released front end (with ``power = 1.0``: magnitude mel)."""
NORMALISATIONS = ("per-bin", "global")
"""``per-bin``: each mel bin's mean and std over the training songs; ``global``: one scalar
mean and std over every value of the training songs (the authors')."""

# Parameters added after the cache format was fixed: left out of the cache key while they
# hold their default, so that default features keep their cache entries. `normalise` and
# `window_frames` never change what is extracted: never in the key.
_KEY_NEUTRAL = {"compression": "db"}
_NOT_EXTRACTED = ("normalise", "window_frames")

_FORMAT = "recbench-features-v3"  # bump when the stored layout or the maths change
# v3: the .npz carries the array's integrity record and the reasons of dropped songs
SILENCE_PEAK = 1e-6  # peak |sample| below this (-120 dBFS) is a silent song: dropped
MAX_NAMED_DROPPED = 20  # dropped songs named in SongFeatures.manifest (the rest counted)
_CHECKSUM = "sha256"

log = logging.getLogger("recbench")

# reasons a song is dropped at extraction (SongFeatures.manifest["dropped"] keys)
REASONS = ("unreadable", "empty_audio", "non_finite_audio", "silent", "non_finite_features",
           "no_precomputed_features")


class SongDropped(DataError):
    """A song's audio or features failed validation; `reason` is one of REASONS."""

    reason = "unreadable"


class EmptyAudio(SongDropped):
    reason = "empty_audio"


class NonFiniteAudio(SongDropped):
    reason = "non_finite_audio"


class SilentAudio(SongDropped):
    reason = "silent"


class NonFiniteFeatures(SongDropped):
    reason = "non_finite_features"


def drop_reason(message: str) -> str:
    """The REASONS entry of an error message as stored in SongFeatures.errors."""
    name = message.split(":", 1)[0]
    for cls in (EmptyAudio, NonFiniteAudio, SilentAudio, NonFiniteFeatures):
        if name == cls.__name__:
            return cls.reason
    if "NaN or infinite samples" in message:  # audio.decode's AudioDecodeError
        return "non_finite_audio"
    if message == "no precomputed features":
        return "no_precomputed_features"
    return "unreadable"
_CHUNK = 16  # songs per extraction task: bounds memory (16 x 30 s STFTs ~ 80 MB)
_STD_FLOOR = 1e-5  # channels that never vary (silent mel bins) standardise to 0, not inf


def resolve_params(params: dict[str, Any] | None, dataset: Dataset | None = None
                   ) -> dict[str, Any]:
    """Feature parameters: defaults < dataset.manifest['feature_params'] < `params`.

    Raises ConfigError naming an unknown key or a non-positive size.
    """
    out = dict(DEFAULT_PARAMS)
    layers = []
    if dataset is not None:
        layers.append(("dataset.manifest.feature_params",
                       dict(dataset.manifest.get("feature_params") or {})))
    layers.append(("features", dict(params or {})))
    for where, layer in layers:
        for k, v in layer.items():
            if k not in DEFAULT_PARAMS:
                raise ConfigError(f"unknown feature parameter; known: "
                                  f"{', '.join(sorted(DEFAULT_PARAMS))}", key=f"{where}.{k}")
            out[k] = v
    for k in ("sample_rate", "n_fft", "hop_length", "n_mels"):
        if not isinstance(out[k], (int, np.integer)) or isinstance(out[k], bool) or out[k] < 1:
            raise ConfigError(f"must be a positive integer, got {out[k]!r}", key=f"features.{k}")
        out[k] = int(out[k])
    for k in ("window_s", "clip_s", "fmin", "fmax", "power", "amin"):
        if out[k] is not None:
            out[k] = float(out[k])
    for k, known in (("compression", COMPRESSIONS), ("normalise", NORMALISATIONS)):
        if out[k] not in known:
            raise ConfigError(f"expected one of {', '.join(known)}, got {out[k]!r}",
                              key=f"features.{k}")
    wf = out["window_frames"]
    if wf is not None:
        if not isinstance(wf, (int, np.integer)) or isinstance(wf, bool) or wf < 1:
            raise ConfigError(f"must be a positive integer, got {wf!r}",
                              key="features.window_frames")
        out["window_frames"] = int(wf)
    if out["window_s"] <= 0 or (out["clip_s"] is not None and out["clip_s"] <= 0):
        raise ConfigError("window_s and clip_s must be > 0", key="features.window_s")
    return out


def window_steps(kind: str, params: dict[str, Any]) -> int:
    """Steps per model input window: frames for log-mel, samples for waveforms.

    ``window_frames`` (when set) wins over ``window_s``: that many STFT frames (the
    authors' 130), or as many samples as that many hops for waveforms."""
    if params.get("window_frames"):
        wf = int(params["window_frames"])
        return wf * params["hop_length"] if kind == "waveform" else wf
    if kind == "waveform":
        return max(1, round(params["window_s"] * params["sample_rate"]))
    return max(1, round(params["window_s"] * params["sample_rate"] / params["hop_length"]))


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT of `n_samples` samples (librosa's `center=True`)."""
    return 1 + n_samples // hop_length if n_samples > 0 else 0


# --------------------------------------------------------------------------- maths


_MEL_CACHE: dict[tuple, Any] = {}
_MEL_LOCK = threading.Lock()


def _mel_basis(params: dict[str, Any]):
    """The (n_mels, n_fft // 2 + 1) Slaney mel filter bank as a float32 torch tensor."""
    import torch

    key = (params["sample_rate"], params["n_fft"], params["n_mels"], params["fmin"],
           params["fmax"])
    with _MEL_LOCK:
        if key not in _MEL_CACHE:
            import librosa

            fb = librosa.filters.mel(sr=params["sample_rate"], n_fft=params["n_fft"],
                                     n_mels=params["n_mels"], fmin=params["fmin"],
                                     fmax=params["fmax"])
            _MEL_CACHE[key] = (torch.from_numpy(fb.astype(np.float32)),
                               torch.hann_window(params["n_fft"], periodic=True))
        return _MEL_CACHE[key]


def logmel(waves: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Log-mel spectrograms of equal-length waveforms.

    waves: (B, n_samples) float32 at params['sample_rate'].
    Returns (B, n_frames, n_mels) float32. With ``compression = "db"`` (default):
    10 log10(max(mel(|STFT|^power), amin)), the same as ``librosa.power_to_db(
    librosa.feature.melspectrogram(...), ref=1.0, amin=amin, top_db=None)`` (centred
    frames, zero padding, periodic Hann window). With ``"log10-1p-10x"``:
    log10(1 + 10 mel), the authors' compression (their mel uses ``power = 1``).
    """
    import torch

    fb, win = _mel_basis(params)
    x = torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32))
    n_fft = params["n_fft"]
    if x.shape[-1] < n_fft // 2 + 1:  # torch's centred STFT needs pad < input length
        x = torch.nn.functional.pad(x, (0, n_fft // 2 + 1 - x.shape[-1]))
    spec = torch.stft(x, n_fft=n_fft, hop_length=params["hop_length"], window=win,
                      center=True, pad_mode="constant", return_complex=True)
    if params["power"] == 2.0:  # |z|^2 straight from the real and imaginary parts
        ri = torch.view_as_real(spec)
        mag = ri[..., 0].square()
        mag.add_(ri[..., 1].square())
    else:
        mag = spec.abs()
        if params["power"] != 1.0:
            mag.pow_(params["power"])
    mel = torch.matmul(mag.transpose(1, 2), fb.T)  # (B, frames, n_mels), contiguous
    if params.get("compression", "db") == "log10-1p-10x":
        return mel.mul_(10.0).log1p_().div_(math.log(10.0)).numpy()
    return mel.clamp_(min=params["amin"]).log10_().mul_(10.0).numpy()


def _resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return wave
    import soxr

    return soxr.resample(wave, sr_in, sr_out).astype(np.float32, copy=False)


# --------------------------------------------------------------------------- the result


@dataclass
class SongFeatures:
    """Per-song features with training-set standardisation.

    kind:    "logmel" or "waveform".
    array:   (n_songs, n_steps, n_channels) raw features (float16 memmap when extracted);
             steps past a song's length are zero padding.
    lengths: (n_songs,) int valid steps per song; 0 = audio missing or unreadable.
    mean, std: (n_channels,) float32 over the valid steps of the training songs only.
    window:  steps per model input window (3 s by default).
    failed:  sorted song indices dropped (lengths 0): audio that raised or failed
             validation (see the module docstring); errors: index -> message.
    params:  the resolved feature parameters; key: the cache key ("" when precomputed).
    manifest: what a result row records of these features: kind, key, n_songs,
             n_dropped, dropped {reason: count}, dropped_songs [{song, reason}] (the first
             MAX_NAMED_DROPPED), and cache {entry: extracted/read/precomputed, verified,
             rebuilt (the damage found, when the entry was rebuilt)}.
    """

    kind: str
    array: np.ndarray
    lengths: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    window: int
    failed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    errors: dict[int, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def n_songs(self) -> int:
        return int(self.array.shape[0])

    @property
    def n_channels(self) -> int:
        return int(self.array.shape[2])

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std as a new float32 array; x: (..., n_channels)."""
        x = np.asarray(x)
        out = np.empty(x.shape, dtype=np.float32)
        np.subtract(x, self.mean, out=out)  # converts float16 inside the ufunc: one pass
        out *= (1.0 / self.std).astype(np.float32)
        return out

    def _gather(self, songs: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """Standardised windows (len(songs), window, C) starting at `starts`; steps past a
        song's length are 0 (the training mean). Requires start + window <= n_steps
        whenever n_steps >= window (true for starts from `crops` / `song_windows`)."""
        songs = np.asarray(songs, dtype=np.int64)
        n, steps, c = self.array.shape
        w = self.window
        if steps >= w:
            # a zero-copy (song, start, window, C) view: one block copy per window
            s0, s1, s2 = self.array.strides
            view = np.lib.stride_tricks.as_strided(
                self.array, shape=(n, steps - w + 1, w, c), strides=(s0, s1, s1, s2),
                writeable=False)
            raw = view[songs, starts]
        else:  # every song is shorter than a window
            raw = np.zeros((len(songs), w, c), dtype=self.array.dtype)
            raw[:, :steps] = self.array[np.sort(songs)][np.argsort(np.argsort(songs))]
        out = self.standardise(raw)
        valid = (starts[:, None] + np.arange(w)[None, :]) < self.lengths[songs][:, None]
        if not valid.all():
            out[~valid] = 0.0
        return out

    def crops(self, songs: Sequence[int] | np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random window per song, standardised: float32 (len(songs), window, C).

        The start is uniform over the positions where the window fits in the song; songs
        shorter than a window are zero-padded after their end.
        """
        songs = np.asarray(songs, dtype=np.int64)
        room = np.maximum(self.lengths[songs] - self.window, 0)
        starts = (rng.random(len(songs)) * (room + 1)).astype(np.int64)
        return self._gather(songs, starts)

    def song_windows(self, songs: Sequence[int] | np.ndarray, max_windows: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive non-overlapping standardised windows of each song.

        Returns (windows float32 (N, window, C), owner int64 (N,)): owner[j] is the position
        in `songs` that window j belongs to; every song has at least one window (a short or
        missing song gets one zero-padded window). With `max_windows`, that many windows
        evenly spaced over the song are kept. A song's vector = mean of its windows' outputs.
        """
        songs = np.asarray(songs, dtype=np.int64)
        counts = np.maximum(self.lengths[songs] // self.window, 1)
        owner, starts = [], []
        for pos, c in enumerate(counts):
            idx = np.arange(c)
            if max_windows is not None and c > max_windows:
                idx = np.unique(np.round(np.linspace(0, c - 1, max_windows)).astype(np.int64))
            owner.append(np.full(len(idx), pos, dtype=np.int64))
            starts.append(idx * self.window)
        owner_a = np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64)
        starts_a = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
        return self._gather(songs[owner_a], starts_a), owner_a


def _stats(sums: np.ndarray, sumsq: np.ndarray, lengths: np.ndarray, train_songs: np.ndarray,
           normalise: str = "per-bin") -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) per channel over the training songs' valid steps; ``normalise =
    "global"``: one scalar over every value, repeated for each channel."""
    train_songs = np.asarray(train_songs, dtype=np.int64)
    n = float(lengths[train_songs].sum())
    if n <= 0:
        raise DataError("features: none of the training songs has readable audio; cannot "
                        "standardise")
    if normalise == "global":
        c = sums.shape[1]
        m = sums[train_songs].sum() / (n * c)
        v = max(sumsq[train_songs].sum() / (n * c) - m ** 2, 0.0)
        mean, var = np.full(c, m), np.full(c, v)
    else:
        mean = sums[train_songs].sum(axis=0) / n
        var = np.maximum(sumsq[train_songs].sum(axis=0) / n - mean ** 2, 0.0)
    std = np.maximum(np.sqrt(var), _STD_FLOOR)
    return mean.astype(np.float32), std.astype(np.float32)


def _song_sums(array: np.ndarray, lengths: np.ndarray, songs: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-song sums and sums of squares (len(songs), C) float64 over valid steps."""
    c = array.shape[2]
    sums = np.zeros((len(songs), c))
    sumsq = np.zeros((len(songs), c))
    for j, s in enumerate(songs):
        x = np.asarray(array[s, :lengths[s]], dtype=np.float64)
        sums[j] = x.sum(axis=0)
        sumsq[j] = np.square(x).sum(axis=0)
    return sums, sumsq


# --------------------------------------------------------------------------- extraction


def cache_key(dataset: Dataset, kind: str, params: dict[str, Any]) -> str:
    """Hash of every song's audio identity and the feature parameters that change what is
    extracted (newer parameters at their default are left out: old keys stay valid)."""
    ids = np.array([dataset.audio.identity(i) for i in range(len(dataset.audio))])
    keyed = {k: v for k, v in params.items() if k not in _NOT_EXTRACTED
             and not (k in _KEY_NEUTRAL and v == _KEY_NEUTRAL[k])}
    return hash_arrays(_FORMAT, kind, sorted(keyed.items()), int(dataset.audio.sample_rate),
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
    waves, errors = [], {}
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
    out: list[np.ndarray | None] = [None] * len(songs)
    ok = [j for j, w in enumerate(waves) if w is not None]
    if kind == "waveform":
        with np.errstate(over="ignore"):  # an overflow becomes inf: dropped just below
            for j in ok:
                out[j] = waves[j].astype(np.float16)[:, None]
    elif ok:
        # one STFT per song: batching a chunk into one padded STFT measured twice the CPU
        # per song (large intermediates), for bit-identical output
        for j in ok:
            spec = logmel(waves[j][None], params)[0]
            with np.errstate(over="ignore"):
                out[j] = spec[:n_frames(len(waves[j]),
                                        params["hop_length"])].astype(np.float16)
    for j in ok:  # what is stored (float16) must be finite, or the song is dropped
        bad = ~np.isfinite(out[j])
        if bad.any():
            s = int(songs[j])
            errors[s] = (f"NonFiniteFeatures: {int(bad.sum())} of {bad.size} {kind} values "
                         f"are NaN or infinite in float16 (peak |sample| "
                         f"{float(np.max(np.abs(waves[j]))):.3g})")
            out[j] = None
    return out, errors


def _atomic_target(path: str) -> str:
    return f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"


def _extract(dataset: Dataset, kind: str, params: dict[str, Any], workers: int,
             npy_path: str, npz_path: str, map_chunks=None) -> None:
    """Extract every song's features into the cache files (atomically; an interrupted
    extraction leaves no temporary file behind)."""
    tmp_npy = _atomic_target(npy_path)
    try:
        _extract_to(dataset, kind, params, workers, tmp_npy, npy_path, npz_path, map_chunks)
    finally:
        if os.path.exists(tmp_npy):
            os.unlink(tmp_npy)


def _extract_to(dataset: Dataset, kind: str, params: dict[str, Any], workers: int,
                tmp_npy: str, npy_path: str, npz_path: str, map_chunks=None) -> None:
    audio = dataset.audio
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
    record = _file_record(tmp_npy, shape)
    os.replace(tmp_npy, npy_path)
    failed = np.array(sorted(errors), dtype=np.int64)
    tmp_npz = _atomic_target(npz_path)
    with open(tmp_npz, "wb") as fh:
        np.savez(fh, lengths=lengths, sums=sums, sumsq=sumsq, failed=failed,
                 messages=np.array([errors[i] for i in failed], dtype=str),
                 format=np.array(_FORMAT), key=np.array(_key_of(npy_path)),
                 npy_size=np.array(record["size"], dtype=np.int64),
                 npy_shape=np.array(record["shape"], dtype=np.int64),
                 npy_dtype=np.array(record["dtype"]),
                 npy_checksum=np.array(record["checksum"]))
    os.replace(tmp_npz, npz_path)
    st = os.stat(npy_path)
    _VERIFIED[npy_path] = (st.st_size, st.st_mtime_ns, st.st_ino, record["checksum"])
    if errors:
        reasons: dict[str, int] = {}
        for m in errors.values():
            reasons[drop_reason(m)] = reasons.get(drop_reason(m), 0) + 1
        first = min(errors)
        log.warning("%s features: %d of %d songs dropped (%s); first: song %s: %s", kind,
                    len(errors), n, ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())),
                    dataset.song_ids[first], errors[first][:200])


# --------------------------------------------------------------------------- integrity


class CacheEntryDamaged(Exception):
    """A cache entry that does not match its integrity record (the message says how)."""


# npy path -> (size, mtime_ns, inode, checksum) of the file version whose checksum this
# process verified (or wrote): later reads in the process check size and shape only
_VERIFIED: dict[str, tuple[int, int, int, str]] = {}


def _key_of(npy_path: str) -> str:
    return os.path.basename(npy_path)[:-len(".npy")]


def _checksum(path: str) -> str:
    h = hashlib.new(_CHECKSUM)
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 22)
            if not block:
                break
            h.update(block)
    return f"{_CHECKSUM}:{h.hexdigest()}"


def _file_record(path: str, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"size": os.path.getsize(path), "shape": list(shape), "dtype": "float16",
            "checksum": _checksum(path)}


def _read_entry(npy_path: str, npz_path: str, n_songs: int, n_channels: int
                ) -> tuple[np.ndarray, dict[str, Any], str]:
    """(memory-mapped array, npz contents, how verified) of a cache entry, or
    CacheEntryDamaged naming what does not match."""
    try:
        with np.load(npz_path) as z:
            meta = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip/CRC/pickle errors of a damaged file
        raise CacheEntryDamaged(f"{os.path.basename(npz_path)} is unreadable "
                                f"({type(exc).__name__}: {exc})") from None
    need = ("lengths", "sums", "sumsq", "failed", "messages", "format", "key", "npy_size",
            "npy_shape", "npy_dtype", "npy_checksum")
    missing = [k for k in need if k not in meta]
    if missing:
        raise CacheEntryDamaged(f"{os.path.basename(npz_path)} lacks {', '.join(missing)}")
    if str(meta["format"]) != _FORMAT or str(meta["key"]) != _key_of(npy_path):
        raise CacheEntryDamaged(f"{os.path.basename(npz_path)} belongs to "
                                f"{meta['format']}/{meta['key']}, not this entry")
    size, shape = int(meta["npy_size"]), tuple(int(x) for x in meta["npy_shape"])
    try:
        st = os.stat(npy_path)
    except OSError as exc:
        raise CacheEntryDamaged(f"array file unreadable ({exc.strerror})") from None
    if st.st_size != size:
        raise CacheEntryDamaged(f"array file has {st.st_size} bytes, the record says {size} "
                                "(truncated or overwritten)")
    try:
        arr = np.load(npy_path, mmap_mode="r")
    except Exception as exc:  # noqa: BLE001
        raise CacheEntryDamaged(f"array file unreadable ({type(exc).__name__}: {exc})"
                                ) from None
    if arr.shape != shape or str(arr.dtype) != str(meta["npy_dtype"]) or \
            arr.dtype != np.float16:
        raise CacheEntryDamaged(f"array has shape {arr.shape} {arr.dtype}, the record says "
                                f"{shape} {meta['npy_dtype']}")
    if shape[0] != n_songs or shape[2] != n_channels:
        raise CacheEntryDamaged(f"array has shape {shape}; expected ({n_songs}, steps, "
                                f"{n_channels})")
    lengths, sums, sumsq = meta["lengths"], meta["sums"], meta["sumsq"]
    if lengths.shape != (n_songs,) or sums.shape != (n_songs, n_channels) or \
            sumsq.shape != sums.shape:
        raise CacheEntryDamaged("statistics do not match the array's shape")
    if lengths.min(initial=0) < 0 or lengths.max(initial=0) > shape[1]:
        raise CacheEntryDamaged("song lengths exceed the array")
    if not (np.isfinite(sums).all() and np.isfinite(sumsq).all()):
        raise CacheEntryDamaged("statistics hold NaN or infinite values")
    checksum = str(meta["npy_checksum"])
    seen = _VERIFIED.get(npy_path)
    if seen == (st.st_size, st.st_mtime_ns, st.st_ino, checksum):
        how = "size, shape and record (checksum verified earlier in this process)"
    else:
        got = _checksum(npy_path)
        if got != checksum:
            raise CacheEntryDamaged(f"array checksum {got[:20]}... differs from the record "
                                    f"{checksum[:20]}... (overwritten or corrupted)")
        _VERIFIED[npy_path] = (st.st_size, st.st_mtime_ns, st.st_ino, checksum)
        how = f"size, shape, record and {_CHECKSUM} checksum"
    return arr, meta, how


@contextlib.contextmanager
def _file_lock(path: str):
    """An exclusive lock on `path` across processes, released by the kernel if the holder
    dies (`filelock`: flock on POSIX, msvcrt on Windows, where the hand-written flock
    version was a no-op). The same lock library guards the run folder."""
    import filelock

    with filelock.FileLock(path):
        yield


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
    if kind not in KINDS:
        raise ConfigError(f"unknown feature kind {kind!r}; expected one of {', '.join(KINDS)}",
                          key="features.kind")
    p = resolve_params(params, dataset)
    win = window_steps(kind, p)
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
                            params=p, manifest=_manifest(dataset, kind, "", errors, {
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
    named = []
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
