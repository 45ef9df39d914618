"""Small known-answer worlds: a dataset, a split and (for audio models) song features,
built deterministically from a seed in well under a second.

- :func:`audible_classes_world`: songs of a few classes, each class audible as a raised band
  of feature channels; each user mostly plays one class (in the spirit of implicit's
  checkerboard). A content model ranks a user's cold songs of their class first: test AUC
  well above chance (the ceiling is about 0.8, users also play other classes a little).
- :func:`low_rank_world`: low-rank listening whose song factors are audible as per-band
  levels (WMF + regression recovers them).
- :func:`random_audio_world`: random plays and random audio; one song has no audio.
- :func:`random_counts`: a small users x songs play-count matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from recbench import defaults
from recbench.components import SongFeaturesLike
from recbench.data import Dataset, Split
from recbench.testing.fakes import FakeSongFeatures, fit_context


@dataclass
class World:
    """A dataset, its split and its song features (None for interactions-only worlds);
    `classes` holds each song's class where the world has them."""

    dataset: Dataset
    split: Split
    features: SongFeaturesLike | None = None
    classes: np.ndarray | None = None

    def context(self, seed: int = 0, *, registry: Any = None, oracle: bool = False):
        """The FitContext a run would give a model on this world."""
        return fit_context(self.dataset, self.split, seed, features=self.features,
                           registry=registry, oracle=oracle)

    def test_labels(self, users: np.ndarray | None = None) -> np.ndarray:
        """(len(users), n_test_songs) bool held-out positives (default: the test users)."""
        users = self.split.test_users if users is None else users
        return self.split.test[users][:, self.split.test_songs].toarray() > 0

    def test_auc(self, model: Any) -> float:
        """Mean per-user ROC AUC of `model` over the test songs (test users)."""
        from recbench.metrics import roc_auc_per_user

        users = self.split.test_users
        aucs = roc_auc_per_user(np.asarray(model.score(users, self.split.test_songs)),
                                self.test_labels(users))
        return float(np.nanmean(aucs))

    def with_poisoned_test(self, seed: int = 123) -> World:
        """The same world whose held-out test interactions (in `split.test` and in
        `dataset.counts`) are replaced by random ones: an honest model fits identically."""
        split, rng = self.split, np.random.default_rng(seed)
        shape = split.test.shape
        cols = np.zeros(shape[1], bool)
        cols[split.test_songs] = True
        dense = (rng.random(shape) < 0.3) * rng.integers(1, 6, size=shape)
        if split.protocol == defaults.COLD_ITEM:
            dense = dense * cols[None, :]
        seen = (split.train + split.valid).toarray() > 0
        dense[seen] = 0
        test = sp.csr_matrix(dense.astype(np.float32))
        counts = sp.csr_matrix(split.train + split.valid + test, dtype=np.float32)
        ds = replace(self.dataset, counts=counts, _fingerprint=None)
        return replace(self, dataset=ds, split=replace(split, test=test))


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.array([f"{prefix}{i}" for i in range(n)])


def split_songs(dataset: Dataset, train: np.ndarray, valid: np.ndarray, test: np.ndarray,
                seed: int = 0) -> Split:
    """A cold-item split with the given song index sets (each part's interactions are the
    dataset's counts in its columns)."""
    counts = dataset.counts.tocsr()

    def cols(idx: np.ndarray) -> sp.csr_matrix:
        keep = np.zeros(dataset.n_songs, np.float32)
        keep[idx] = 1
        m = sp.csr_matrix(counts.multiply(keep[None, :]), dtype=np.float32)
        m.eliminate_zeros()
        return m

    parts = [np.sort(np.asarray(p, dtype=np.int64)) for p in (train, valid, test)]
    mats = [cols(p) for p in parts]
    users = np.arange(dataset.n_users)
    test_users = users[np.asarray((mats[2] > 0).sum(axis=1)).ravel() > 0]
    return Split(defaults.SPLIT, seed, defaults.COLD_ITEM, mats[0], mats[1], mats[2], parts[0],
                 parts[1], parts[2], users, test_users)


def audible_classes_world(seed: int = 0, users: int = 120, songs: int = 240, classes: int = 4,
                          channels: int = 16, steps: int = 64, window: int = 16,
                          split_seed: int = 1, splitter: Any = None) -> World:
    """Songs of `classes` classes, each audible as +1.5 on its own band of channels; a user
    plays songs of their class with probability 0.35, others with 0.03.

    The split is `splitter.split(dataset, split_seed)` (default: the registered
    ``cold-item`` split, 70/10/20); features are float16 like a real cache, standardised on
    the training songs.
    """
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, classes, songs)
    arr = rng.normal(size=(songs, steps, channels)).astype(np.float32)
    band = channels // classes
    for s in range(songs):
        arr[s, :, cls[s] * band:(cls[s] + 1) * band] += 1.5
    taste = rng.integers(0, classes, users)
    p = np.where(taste[:, None] == cls[None, :], 0.35, 0.03)
    counts = sp.csr_matrix((rng.random((users, songs)) < p).astype(np.float32))
    ds = Dataset("audible-classes", counts, _ids("u", users), _ids("s", songs),
                 synthetic=True)
    if splitter is None:
        from recbench.registry import default_registry

        splitter = default_registry().create("split", defaults.SPLIT)
    split = splitter.split(ds, seed=split_seed)
    from recbench.features import SongFeatures

    tr = arr[split.train_songs].reshape(-1, channels)
    feats = SongFeatures("logmel", arr.astype(np.float16), np.full(songs, steps),
                         tr.mean(axis=0), tr.std(axis=0), window=window)
    return World(ds, split, feats, cls)


def low_rank_world(seed: int = 0, users: int = 120, songs: int = 80, factors: int = 3,
                   steps: int = 24, channels: int = 8, window: int = 8) -> World:
    """Each user plays (1-3 times) the 12 songs of highest taste x song-factor logit; a
    song's features are its factors mixed into channels plus noise (0.3). Songs split at
    random 56 / 8 / 16 (train / valid / test) for 80 songs (70/10/20)."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(users, factors))
    s = rng.normal(size=(songs, factors))
    logits = u @ s.T
    dense = np.zeros((users, songs), np.float32)
    for r in range(users):
        top = np.argsort(-logits[r])[:12]
        dense[r, top] = rng.integers(1, 4, size=len(top))
    counts = sp.csr_matrix(dense)
    mix = rng.normal(size=(factors, channels))
    audio = (s @ mix)[:, None, :] + 0.3 * rng.normal(size=(songs, steps, channels))
    feats = FakeSongFeatures(audio, np.full(songs, steps), window=window)
    perm = rng.permutation(songs)
    n_tr, n_va = round(0.7 * songs), round(0.1 * songs)
    ds = Dataset("low-rank", counts, _ids("u", users), _ids("s", songs), synthetic=True)
    split = split_songs(ds, perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:], seed)
    return World(ds, split, feats)


def random_audio_world(seed: int = 0, users: int = 30, songs: int = 20, steps: int = 12,
                       channels: int = 4, window: int = 4, n_train: int = 14,
                       silent: tuple[int, ...] = (3,)) -> World:
    """Random plays (30 % of pairs, 1-4 times) and random audio; the songs in `silent` have
    no audio. Songs 0..n_train-1 are training songs, the rest test songs (no valid)."""
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, songs)) < 0.3) * rng.integers(1, 5, size=(users, songs))
    counts = sp.csr_matrix(dense.astype(np.float32))
    audio = rng.normal(size=(songs, steps, channels)).astype(np.float32)
    lengths = np.full(songs, steps)
    lengths[list(silent)] = 0
    ds = Dataset("random-audio", counts, _ids("u", users), _ids("s", songs))
    split = split_songs(ds, np.arange(n_train), np.zeros(0, np.int64),
                        np.arange(n_train, songs), seed)
    return World(ds, split, FakeSongFeatures(audio, lengths, window))


def random_counts(seed: int = 0, users: int = 40, songs: int = 30, density: float = 0.25
                  ) -> Dataset:
    """An interactions-only dataset: each pair played with probability `density`, 1-5
    times; every user and every song has at least one play."""
    rng = np.random.default_rng(seed)
    dense = ((rng.random((users, songs)) < density)
             * rng.integers(1, 6, size=(users, songs))).astype(np.float32)
    dense[np.arange(users), rng.integers(0, songs, users)] += 1
    dense[rng.integers(0, users, songs), np.arange(songs)] += 1
    return Dataset("random-counts", sp.csr_matrix(dense), _ids("u", users),
                   _ids("s", songs), synthetic=True)
