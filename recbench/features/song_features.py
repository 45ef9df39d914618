"""SongFeatures: per-song feature windows with training-set standardisation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import DataError
from .frontend import _STD_FLOOR


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
