"""`wmf` (warm oracle) against implicit called directly; `wmf-regression` (honest cold start)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from recbench_builtin.recommenders.wmf import confidence_matrix

from recbench.registry import build_registry
from recbench.testing import fit_context, low_rank_world

REGISTRY = build_registry()


def synthetic(seed=0):
    """(dataset, split, features): low-rank listening whose song factors are audible."""
    w = low_rank_world(seed)
    return w.dataset, w.split, w.features


def ctx_for(ds, split, feats, oracle, seed=0):
    return fit_context(ds, split, seed, features=feats, registry=REGISTRY, oracle=oracle)


def mean_auc(scores, labels):
    from sklearn.metrics import roc_auc_score
    vals = [roc_auc_score(l, s) for s, l in zip(scores, labels) if 0 < l.sum() < len(l)]
    return float(np.mean(vals))


def test_confidence_matrix():
    m = sp.csr_matrix(np.array([[0, 2, 3], [1, 0, 0]], np.float32))
    np.testing.assert_allclose(confidence_matrix(m, 40, "raw").toarray(),
                               [[0, 81, 121], [41, 0, 0]])
    np.testing.assert_allclose(confidence_matrix(m, 2, "binary").toarray(),
                               [[0, 3, 3], [3, 0, 0]])
    np.testing.assert_allclose(confidence_matrix(m, 1, "log").data,
                               1 + np.log1p([2, 3, 1]), rtol=1e-6)


def test_wmf_equals_implicit_directly():
    from implicit.cpu.als import AlternatingLeastSquares

    ds, split, feats = synthetic()
    model = REGISTRY.create("recommender", "wmf", factors=8, iterations=5, alpha=10.0,
                            regularization=0.05)
    assert model.uses_test_interactions and "test_interactions" in model.consumes
    model.fit(ctx_for(ds, split, feats, oracle=True, seed=3))

    conf = ds.counts.copy().astype(np.float32)
    conf.data = 1 + 10.0 * conf.data
    ref = AlternatingLeastSquares(factors=8, regularization=0.05, iterations=5,
                                  random_state=3, num_threads=1)
    ref.fit(conf, show_progress=False)
    assert np.allclose(model.item_factors, ref.item_factors, atol=1e-5)
    assert np.allclose(model.user_factors, ref.user_factors, atol=1e-5)
    users, songs = np.array([0, 5]), split.test_songs
    np.testing.assert_allclose(model.score(users, songs),
                               ref.user_factors[users] @ ref.item_factors[songs].T, rtol=1e-5)
    np.testing.assert_array_equal(model.item_vectors(songs), ref.item_factors[songs])
    # the warm oracle sees the test songs' interactions and ranks them well
    auc = mean_auc(model.score(np.arange(ds.n_users), songs), split.test[:, songs].toarray() > 0)
    assert auc > 0.9


def test_wmf_refuses_without_oracle_context():
    ds, split, feats = synthetic()
    with pytest.raises(PermissionError):
        REGISTRY.create("recommender", "wmf").fit(ctx_for(ds, split, feats, oracle=False))


def test_wmf_regression_learns_audible_factors():
    ds, split, feats = synthetic()
    model = REGISTRY.create("recommender", "wmf-regression", factors=6, iterations=10,
                            backbone="mel-stats", optimizer="adam", lr=0.05, epochs=60,
                            batch_size=16)
    assert not model.uses_test_interactions
    ctx = ctx_for(ds, split, feats, oracle=False)  # all_interactions would raise
    model.fit(ctx)
    # user factors come from WMF on the TRAINING interactions only
    from recbench_builtin.recommenders.wmf import fit_wmf
    uf, _ = fit_wmf(split.train, model.options, 0)
    np.testing.assert_allclose(model.user_factors, uf, atol=1e-6)
    assert model.losses[-1] < model.losses[0]
    songs = split.test_songs
    assert model.item_vectors(songs).shape == (len(songs), 6)
    auc = mean_auc(model.score(np.arange(ds.n_users), songs), split.test[:, songs].toarray() > 0)
    assert auc > 0.7  # cold songs ranked from audio alone
    tp = model.throughput()
    assert tp["train_examples_per_s"] > 0 and tp["songs_embedded_per_s"] > 0


def test_wmf_regression_conv1d_deterministic():
    ds, split, feats = synthetic()
    kw = {"factors": 4, "iterations": 3, "epochs": 2, "batch_size": 8,
              "backbone_params": {"width": 0.05, "channels": [64, 64]}}
    scores = []
    for _ in range(2):
        m = REGISTRY.create("recommender", "wmf-regression", **kw)
        m.fit(ctx_for(ds, split, feats, oracle=False, seed=5))
        scores.append(m.score(np.arange(4), split.test_songs))
    assert scores[0].shape == (4, len(split.test_songs))
    np.testing.assert_array_equal(scores[0], scores[1])


def test_wmf_regression_song_vector_is_mean_over_windows():
    import torch
    from recbench_builtin._training import embed_songs

    _, _, feats = synthetic()
    torch.manual_seed(0)
    net = torch.nn.Sequential(REGISTRY.create("backbone", "mel-stats").build(8, 8, 0),
                              torch.nn.Linear(16, 3))
    net.out_features = 3
    feats.lengths[5] = 0  # missing audio -> zero vector
    songs = np.array([2, 5, 7])
    out = embed_songs(net, feats, songs, "cpu", batch=2)
    with torch.no_grad():
        for r, s in enumerate(songs):
            if s == 5:
                assert not out[r].any()
                continue
            wins = torch.from_numpy(feats.array[s].reshape(3, 8, 8))
            np.testing.assert_allclose(out[r], net(wins).mean(0).numpy(), rtol=1e-5, atol=1e-6)


def test_wmf_regression_early_stopping_keeps_the_best_validation_epoch():
    from recbench_builtin._training import validation_auc, validation_data

    ds, split, feats = synthetic()
    kw = dict(factors=6, iterations=10, backbone="mel-stats", optimizer="adam", lr=0.05,
              batch_size=16)
    model = REGISTRY.create("recommender", "wmf-regression", epochs=40, patience=2, **kw)
    model.fit(ctx_for(ds, split, feats, oracle=False))
    rep = model.fit_report()
    aucs = rep["valid_auc"]
    assert len(aucs) == len(rep["losses"]) <= 40
    assert rep["best_valid_auc"] == max(aucs) and rep["best_epoch"] == int(np.argmax(aucs)) + 1
    if rep["stopped_by"] == "patience":
        assert len(aucs) == rep["best_epoch"] + 2
    else:
        assert rep["stopped_by"] == "epochs" and len(aucs) == 40
    # the kept weights are the best epoch's: the validation AUC recomputed from the final
    # song vectors equals the best one
    data = validation_data(split)
    users, songs = data[0], data[1]
    again = validation_auc(model.user_factors[users] @ model.item_vectors(songs).T, data)
    assert again == pytest.approx(rep["best_valid_auc"], abs=1e-6)
    # without patience: every epoch, no validation
    plain = REGISTRY.create("recommender", "wmf-regression", epochs=3, **kw)
    plain.fit(ctx_for(ds, split, feats, oracle=False))
    assert len(plain.losses) == 3 and "valid_auc" not in plain.fit_report()
