"""The data objects that flow between plugins: a loaded dataset and a split of it.

Shapes: `counts` is users x songs (scipy CSR, float32 play counts); matrices of a split
have the same shape as the dataset's. Song and user indices are row/column positions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp


@runtime_checkable
class AudioSource(Protocol):
    """Per-song audio, indexed by song position.

    `identity(i)` is a short string that changes whenever song i's audio changes (a
    content hash, or path + size + mtime): the feature cache is keyed by it.
    `waveform(i)` returns mono float32 samples at `sample_rate`, or raises an exception
    for unreadable audio (the song is then dropped and counted).
    """

    sample_rate: int

    def __len__(self) -> int: ...

    def identity(self, i: int) -> str: ...

    def waveform(self, i: int) -> np.ndarray: ...


def hash_arrays(*parts: Any) -> str:
    """A stable 16-hex-digit fingerprint of arrays, sparse matrices, strings and numbers."""
    h = hashlib.sha256()
    for part in parts:
        if part is None:
            h.update(b"<none>")
        elif sp.issparse(part):
            m = part.tocsr(copy=True)
            m.sum_duplicates()
            h.update(repr(m.shape).encode())
            # Canonical dtypes: the same matrix hashes alike whatever its index width.
            h.update(np.ascontiguousarray(m.indptr, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(m.indices, dtype=np.int64).tobytes())
            h.update(np.ascontiguousarray(m.data, dtype=np.float64).tobytes())
        elif isinstance(part, np.ndarray):
            if part.dtype.kind in "OUS":
                h.update("\x1f".join(map(str, part.tolist())).encode())
            else:
                h.update(repr((part.shape, str(part.dtype))).encode())
                h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, (list, tuple)):
            h.update(b"[")
            h.update(hash_arrays(*part).encode())
            h.update(b"]")
        else:
            h.update(repr(part).encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


@dataclass
class Dataset:
    """A loaded dataset: interactions, optional audio and tags, and provenance.

    counts:    users x songs play counts (CSR float32; zero = not played).
    user_ids:  one string id per row; song_ids: one per column.
    audio:     per-song audio (an AudioSource), or None for interactions-only data.
    tags:      songs x tags binary CSR matrix, or None; tag_names: one per column.
    synthetic: True for generated data: every row and leaderboard says so.
    manifest:  counts of what loading dropped or repaired (malformed lines, duplicates…).
    features:  precomputed per-song feature arrays by name (e.g. "logmel": an array of
               songs x frames x mels), used instead of extracting from `audio`.
    """

    name: str
    counts: sp.csr_matrix
    user_ids: np.ndarray
    song_ids: np.ndarray
    audio: AudioSource | None = None
    tags: sp.csr_matrix | None = None
    tag_names: list[str] = field(default_factory=list)
    synthetic: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)
    features: dict[str, np.ndarray] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def n_users(self) -> int:
        return self.counts.shape[0]

    @property
    def n_songs(self) -> int:
        return self.counts.shape[1]

    @property
    def fingerprint(self) -> str:
        """Content hash of ids, counts, tags and audio identities (not of the loader)."""
        if self._fingerprint is None:
            audio_ids = None
            if self.audio is not None:
                audio_ids = np.array([self.audio.identity(i) for i in range(len(self.audio))])
            self._fingerprint = hash_arrays(
                self.user_ids, self.song_ids, self.counts, self.tags,
                list(self.tag_names), audio_ids)
        return self._fingerprint

    def summary(self) -> dict[str, Any]:
        """The `dataset` block of a result row."""
        return {"name": self.name, "fingerprint": self.fingerprint,
                "synthetic": self.synthetic, "n_users": int(self.n_users),
                "n_songs": int(self.n_songs), "n_interactions": int(self.counts.nnz)}


@dataclass
class Split:
    """A split of a dataset into what models may train on and what they are judged on.

    train:   users x songs counts visible for training (same shape as the dataset).
    valid:   held-out interactions for model selection / early stopping.
    test:    held-out interactions for the reported numbers.
    train_songs / valid_songs / test_songs: song indices of each part (cold-item: disjoint;
             warm: all songs in each). Evaluation ranks `test_songs` for each user in
             `test_users`, excluding that user's `train` (and valid) interactions.
    protocol: one of `recbench.defaults.PROTOCOLS`: what the numbers measure.
    """

    name: str
    seed: int
    protocol: str
    train: sp.csr_matrix
    valid: sp.csr_matrix
    test: sp.csr_matrix
    train_songs: np.ndarray
    valid_songs: np.ndarray
    test_songs: np.ndarray
    train_users: np.ndarray
    test_users: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Changes when and only when the split's content changes."""
        return hash_arrays(self.protocol, self.train, self.valid, self.test, self.train_songs,
                           self.valid_songs, self.test_songs, self.train_users,
                           self.test_users)

    def summary(self) -> dict[str, Any]:
        """The `split` block of a result row."""
        return {"name": self.name, "seed": self.seed, "fingerprint": self.fingerprint,
                "protocol": self.protocol, "params": dict(self.params),
                "n_train_songs": int(len(self.train_songs)),
                "n_valid_songs": int(len(self.valid_songs)),
                "n_test_songs": int(len(self.test_songs)),
                "n_test_users": int(len(self.test_users))}
