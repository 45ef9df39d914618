"""`content-profile`: cosine between users' mean played-song audio vectors and songs'."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recbench.components import FitContext
from recbench.data import Dataset, Split
from recbench.registry import build_registry

REGISTRY = build_registry()


@dataclass
class FakeFeatures:
    """The SongFeatures API over an in-memory array (already standardised)."""

    array: np.ndarray  # (n_songs, steps, C)
    lengths: np.ndarray
    window: int
    kind: str = "logmel"

    @property
    def n_songs(self):
        return self.array.shape[0]

    @property
    def n_channels(self):
        return self.array.shape[2]

    def crops(self, songs, rng):
        return np.stack([self.array[s, :self.window] for s in songs]).astype(np.float32)

    def song_windows(self, songs, max_windows=None):
        wins, owner = [], []
        for pos, s in enumerate(np.asarray(songs)):
            for k in range(max(self.lengths[s] // self.window, 1)):
                wins.append(self.array[s, k * self.window:(k + 1) * self.window])
                owner.append(pos)
        return np.stack(wins).astype(np.float32), np.array(owner)


def setup(seed=0, users=30, songs=20, steps=12, channels=4, window=4):
    rng = np.random.default_rng(seed)
    dense = (rng.random((users, songs)) < 0.3) * rng.integers(1, 5, size=(users, songs))
    counts = sp.csr_matrix(dense.astype(np.float32))
    audio = rng.normal(size=(songs, steps, channels)).astype(np.float32)
    lengths = np.full(songs, steps)
    lengths[3] = 0  # a song without audio
    feats = FakeFeatures(audio, lengths, window)
    tr, te = np.arange(14), np.arange(14, 20)
    keep = np.zeros(songs, np.float32)
    keep[tr] = 1
    train = sp.csr_matrix(counts.multiply(keep[None, :]))
    test = sp.csr_matrix(counts.multiply(1 - keep[None, :]))
    ds = Dataset("cp-test", counts, np.arange(users).astype(str), np.arange(songs).astype(str))
    split = Split("cold-item", seed, "cold-item", train, sp.csr_matrix(counts.shape, dtype=np.float32),
                  test, tr, np.zeros(0, int), te, np.arange(users), np.arange(users))
    ctx = FitContext(dataset=ds, split=split, seed=seed,
                     create=lambda kind, name, **kw: REGISTRY.create(kind, name, **kw),
                     features=lambda kind: feats)
    return ctx, feats


def reference_vectors(feats, train_songs):
    """numpy: per-window [mean, std] over time, averaged per song, z-scored on train songs."""
    v = np.zeros((feats.n_songs, 2 * feats.n_channels))
    for s in range(feats.n_songs):
        if feats.lengths[s] == 0:
            continue
        w = feats.array[s].reshape(-1, feats.window, feats.n_channels).astype(np.float64)
        v[s] = np.concatenate([w.mean(axis=1), w.std(axis=1)], axis=1).mean(axis=0)
    ref = [s for s in train_songs if feats.lengths[s] > 0]
    z = (v - v[ref].mean(axis=0)) / v[ref].std(axis=0)
    z[feats.lengths == 0] = 0
    return z


def test_cosine_scores_match_numpy():
    ctx, feats = setup()
    model = REGISTRY.create("recommender", "content-profile")
    assert set(model.consumes) == {"interactions", "audio"} and not model.uses_test_interactions
    model.fit(ctx)
    z = reference_vectors(feats, ctx.split.train_songs)
    np.testing.assert_allclose(model.item_vectors(np.arange(20)), z, rtol=1e-4, atol=1e-5)

    played = ctx.train.toarray() > 0
    played[:, feats.lengths == 0] = False
    profiles = (played.astype(float) @ z) / np.maximum(played.sum(axis=1, keepdims=True), 1)
    users, songs = np.arange(30), np.arange(20)
    num = profiles[users] @ z[songs].T
    den = (np.linalg.norm(profiles[users], axis=1)[:, None]
           * np.linalg.norm(z[songs], axis=1)[None, :])
    expected = np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)
    got = model.score(users, songs)
    assert got.shape == (30, 20)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert np.all(got[:, 3] == 0)  # no audio -> score 0


def test_fit_leaves_split_untouched():
    ctx, _ = setup()
    before = ctx.train.copy()
    REGISTRY.create("recommender", "content-profile").fit(ctx)
    assert ctx.train.nnz == before.nnz and (ctx.train != before).nnz == 0


def test_count_weighting():
    ctx, feats = setup(seed=1)
    model = REGISTRY.create("recommender", "content-profile", weighting="counts")
    model.fit(ctx)
    z = reference_vectors(feats, ctx.split.train_songs)
    w = ctx.train.toarray().astype(float)
    w[:, feats.lengths == 0] = 0
    prof = (w @ z) / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    cos = (prof / np.linalg.norm(prof, axis=1, keepdims=True)) @ (
        z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).T
    np.testing.assert_allclose(model.score(np.arange(30), np.arange(20)), cos, atol=1e-5)


def test_learnable_backbone_is_random_features_deterministic():
    ctx, _ = setup()
    outs = []
    for _ in range(2):
        m = REGISTRY.create("recommender", "content-profile", backbone="conv1d", out_dim=8,
                            backbone_params={"width": 0.05, "channels": [32, 32]})
        m.fit(ctx)
        outs.append(m.score(np.arange(5), np.arange(14, 20)))
    assert outs[0].shape == (5, 6)
    np.testing.assert_array_equal(outs[0], outs[1])
    assert np.all(np.abs(outs[0]) <= 1 + 1e-6)
