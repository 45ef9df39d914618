"""The front end: feature parameters, their defaults and checks, the log-mel maths."""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from ..io.dataset import Dataset
from ..errors import ConfigError


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


SILENCE_PEAK = 1e-6  # peak |sample| below this (-120 dBFS) is a silent song: dropped
MAX_NAMED_DROPPED = 20  # dropped songs named in SongFeatures.manifest (the rest counted)

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
