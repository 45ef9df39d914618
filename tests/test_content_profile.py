"""`content-profile`: cosine between users' mean played-song audio vectors and songs'."""

from __future__ import annotations

import numpy as np

from recbench.registry import build_registry
from recbench.testing import fit_context, random_audio_world

REGISTRY = build_registry()


def setup(seed=0):
    """(FitContext, features): 30 users x 20 songs, random plays and audio, song 3 silent;
    songs 0-13 train, 14-19 test."""
    w = random_audio_world(seed)
    return fit_context(w.dataset, w.split, seed, features=w.features, registry=REGISTRY), \
        w.features


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
