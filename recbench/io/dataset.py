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


#: The optional side parts of a Dataset, also the names a loader's `provides()` uses.
SIDE_PARTS = ("user_features", "user_categories", "song_categories", "modalities", "events")


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
class Events:
    """A time-ordered listening log: one entry per (user, song) play, sorted by (user, timestamp).

    user, song: int64 positions (rows / columns of `Dataset.counts`).
    timestamp:  float64, seconds since the epoch or any monotone unit.
    session:    int64 session id, unique per user session.
    skipped:    bool; True = the user skipped the track (an explicit negative).
    propensity: float64 in (0, 1], the probability with which the logging policy showed
                that track (for off-policy evaluation), or None when unknown. It enters the
                fingerprint only when set, so logs without it hash as they always did.
    """

    user: np.ndarray
    song: np.ndarray
    timestamp: np.ndarray
    session: np.ndarray
    skipped: np.ndarray
    propensity: np.ndarray | None = None

    def __len__(self) -> int:
        return int(len(self.user))

    def validate(self, n_users: int, n_songs: int) -> None:
        """Raise a one-line ValueError naming the array and what was expected, if any is wrong."""
        n = len(self.user)
        kinds = {"user": "iu", "song": "iu", "timestamp": "fiu", "session": "iu", "skipped": "b"}
        for name, kind in kinds.items():
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.ndim != 1:
                raise ValueError(f"events.{name}: expected a 1-D numpy array, got "
                                 f"{type(a).__name__} of shape {getattr(a, 'shape', None)}")
            if len(a) != n:
                raise ValueError(f"events.{name}: expected length {n} (as events.user), "
                                 f"got {len(a)}")
            if a.dtype.kind not in kind:
                raise ValueError(f"events.{name}: expected dtype kind in {kind!r}, got {a.dtype}")
        if self.propensity is not None:
            self._validate_propensity(n)
        for name, bound in (("user", n_users), ("song", n_songs)):
            a = getattr(self, name)
            if n and (a.min() < 0 or a.max() >= bound):
                bad = int(np.flatnonzero((a < 0) | (a >= bound))[0])
                raise ValueError(f"events.{name}[{bad}] = {int(a[bad])}: expected a position "
                                 f"in [0, {bound})")
        if n and not np.all(np.isfinite(self.timestamp)):
            bad = int(np.flatnonzero(~np.isfinite(self.timestamp))[0])
            raise ValueError(f"events.timestamp[{bad}]: expected a finite number")
        if n > 1:
            u, t = self.user, self.timestamp
            order_bad = (u[1:] < u[:-1]) | ((u[1:] == u[:-1]) & (t[1:] < t[:-1]))
            if order_bad.any():
                bad = int(np.flatnonzero(order_bad)[0]) + 1
                raise ValueError(f"events[{bad}]: expected events sorted by (user, timestamp)")
            # A session id belongs to one user.
            pairs = np.unique(np.stack([self.session, u]), axis=1)
            ids, first = np.unique(pairs[0], return_index=True)
            if len(ids) != pairs.shape[1]:
                dup = pairs[0][np.setdiff1d(np.arange(pairs.shape[1]), first)[0]]
                raise ValueError(f"events.session: expected ids unique per user session, "
                                 f"id {int(dup)} is used by several users")

    def _validate_propensity(self, n: int) -> None:
        p = self.propensity
        if not isinstance(p, np.ndarray) or p.ndim != 1 or len(p) != n:
            raise ValueError(f"events.propensity: expected a 1-D numpy array of length {n} "
                             f"(as events.user), got {type(p).__name__} of shape "
                             f"{getattr(p, 'shape', None)}")
        if p.dtype != np.float64:
            raise ValueError(f"events.propensity: expected dtype float64, got {p.dtype}")
        bad = ~((p > 0.0) & (p <= 1.0))  # NaN fails both
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"events.propensity[{i}] = {float(p[i])!r}: expected a "
                             f"probability in (0, 1]")

    def sessions_of(self, user: int) -> list[np.ndarray]:
        """The event indices of `user`'s sessions, each in time order, sessions by start time."""
        lo, hi = np.searchsorted(self.user, [user, user + 1])
        idx = np.arange(lo, hi)
        if not len(idx):
            return []
        sess = self.session[idx]
        _, first = np.unique(sess, return_index=True)
        return [idx[sess == sess[f]] for f in sorted(first)]

    def select(self, keep: np.ndarray) -> Events:
        """The events where the bool mask (or index array) `keep` selects, every array
        (the propensities too, when set) indexed alike."""
        return Events(user=self.user[keep], song=self.song[keep],
                      timestamp=self.timestamp[keep], session=self.session[keep],
                      skipped=self.skipped[keep],
                      propensity=None if self.propensity is None else self.propensity[keep])

    def parts(self) -> tuple[Any, ...]:
        """The arrays, in a fixed order (for hashing); the propensities, named, only when
        set."""
        base = (self.user, self.song, self.timestamp, self.session, self.skipped)
        return base if self.propensity is None else (*base, "propensity", self.propensity)


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

    Optional side information (empty / None when absent; see `SIDE_PARTS`):
    user_features:   users x F float32 dense (demographics, registration features);
                     user_feature_names: one per column.
    user_categories: name -> int64 code per user (-1 = unknown), e.g. "country".
    song_categories: name -> int64 code per song (-1 = unknown), e.g. "artist", "genre".
    category_names:  names of the codes, keyed "user:<name>" / "song:<name>" (optional).
    modalities:      name -> songs x D second item modality (dense array or CSR), e.g.
                     "tokens": songs x vocab counts.
    events:          a time-ordered listening log (:class:`Events`), or None.
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
    user_features: np.ndarray | None = None
    user_feature_names: list[str] = field(default_factory=list)
    user_categories: dict[str, np.ndarray] = field(default_factory=dict)
    song_categories: dict[str, np.ndarray] = field(default_factory=dict)
    category_names: dict[str, list[str]] = field(default_factory=dict)
    modalities: dict[str, Any] = field(default_factory=dict)
    events: Events | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def n_users(self) -> int:
        return self.counts.shape[0]

    @property
    def n_songs(self) -> int:
        return self.counts.shape[1]

    @property
    def fingerprint(self) -> str:
        """Content hash of ids, counts, tags and audio identities (not of the loader), and of
        the side parts when any is present (so data without them hashes as it always did)."""
        if self._fingerprint is None:
            audio_ids = None
            if self.audio is not None:
                audio_ids = np.array([self.audio.identity(i) for i in range(len(self.audio))])
            parts: list[Any] = [self.user_ids, self.song_ids, self.counts, self.tags,
                                list(self.tag_names), audio_ids]
            if self.side_parts():
                parts.append(self._side_hash_parts())
            self._fingerprint = hash_arrays(*parts)
        return self._fingerprint

    def side_parts(self) -> list[str]:
        """The names of the optional side parts present (a subset of `SIDE_PARTS`, in order)."""
        present = {"user_features": self.user_features is not None,
                   "user_categories": bool(self.user_categories),
                   "song_categories": bool(self.song_categories),
                   "modalities": bool(self.modalities),
                   "events": self.events is not None}
        return [name for name in SIDE_PARTS if present[name]]

    def validate_side(self) -> None:
        """Raise a one-line ValueError naming the side part whose shape does not match the
        dataset (users for user parts, songs for song parts), or an invalid event log."""
        checks: list[tuple[str, Any, int, str]] = []
        if self.user_features is not None:
            uf = self.user_features
            if uf.ndim != 2 or (self.user_feature_names and
                                len(self.user_feature_names) != uf.shape[1]):
                raise ValueError(f"user_features: expected users x F with one name per column, "
                                 f"got shape {uf.shape} and {len(self.user_feature_names)} names")
            checks.append(("user_features", uf, self.n_users, "user"))
        checks += [(f"user_categories[{k!r}]", v, self.n_users, "user")
                   for k, v in self.user_categories.items()]
        checks += [(f"song_categories[{k!r}]", v, self.n_songs, "song")
                   for k, v in self.song_categories.items()]
        checks += [(f"modalities[{k!r}]", v, self.n_songs, "song")
                   for k, v in self.modalities.items()]
        for name, arr, n, unit in checks:
            if arr.shape[0] != n:
                raise ValueError(f"{name}: expected {n} rows (one per {unit}), "
                                 f"got {arr.shape[0]}")
        for name, d in (("user_categories", self.user_categories),
                        ("song_categories", self.song_categories)):
            for k, v in d.items():
                if v.ndim != 1 or v.dtype.kind not in "iu" or (len(v) and v.min() < -1):
                    raise ValueError(f"{name}[{k!r}]: expected 1-D integer codes >= -1 "
                                     f"(-1 = unknown)")
        if self.events is not None:
            self.events.validate(self.n_users, self.n_songs)

    def _side_hash_parts(self) -> list[Any]:
        """The side parts as a flat list for `hash_arrays`, names included, keys sorted."""
        out: list[Any] = ["user_features", self.user_features, list(self.user_feature_names)]
        for label, d in (("user_categories", self.user_categories),
                         ("song_categories", self.song_categories),
                         ("modalities", self.modalities)):
            out.append(label)
            for key in sorted(d):
                out += [key, d[key]]
        out.append("category_names")
        for key in sorted(self.category_names):
            out += [key, list(self.category_names[key])]
        out.append("events")
        out.append(None if self.events is None else list(self.events.parts()))
        return out

    def summary(self) -> dict[str, Any]:
        """The `dataset` block of a result row (`side` lists the side parts, when any)."""
        out = {"name": self.name, "fingerprint": self.fingerprint,
               "synthetic": self.synthetic, "n_users": int(self.n_users),
               "n_songs": int(self.n_songs), "n_interactions": int(self.counts.nnz)}
        side = self.side_parts()
        if side:
            out["side"] = side
        return out


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
