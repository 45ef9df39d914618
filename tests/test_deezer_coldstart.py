"""Deezer's semi-personalised cold start and the cold-start baselines: cluster assignment
against scikit-learn, MMR on a hand-computed case, the side-information claim on synth-msd."""

from __future__ import annotations

import numpy as np
import pytest
from recbench_builtin.recommenders.coldstart_baselines import mmr_order
from recbench_builtin.recommenders.deezer_coldstart import assign_clusters
from users14_data import synth

from recbench.components import FitContext
from recbench.registry import default_registry


def test_cluster_assignment_matches_sklearn_kmeans():
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(0)
    warm = np.vstack([rng.normal(c, 0.5, size=(50, 6)) for c in (-2, 0, 3)])
    km = KMeans(n_clusters=5, n_init=3, random_state=0).fit(warm)
    new = rng.normal(0, 2, size=(400, 6))
    np.testing.assert_array_equal(assign_clusters(new, km.cluster_centers_), km.predict(new))
    np.testing.assert_array_equal(assign_clusters(warm, km.cluster_centers_), km.labels_)


def test_mmr_by_hand():
    # songs 0 and 1 are near duplicates; with lam = 0.5 the second pick is song 2
    # (0.5 * 0.8 - 0.5 * 0.1 = 0.35 > 0.5 * 0.9 - 0.5 * 0.95 = -0.025)
    pop = np.array([1.0, 0.9, 0.8, 0.1])
    sim = np.array([[1, .95, .1, 0], [.95, 1, .1, 0], [.1, .1, 1, 0], [0, 0, 0, 1.]])
    assert mmr_order(pop, sim, 4, 0.5).tolist() == [0, 2, 3, 1]
    assert mmr_order(pop, sim, 4, 1.0).tolist() == [0, 1, 2, 3]  # lam 1: popularity


def _test_auc(model, split) -> float:
    from scipy.stats import rankdata

    users, songs = split.test_users, split.test_songs
    s = model.score(users, songs)
    lab = (split.test[users][:, songs] > 0).toarray()
    out = []
    for i in range(len(users)):
        y, r = lab[i], rankdata(s[i])
        if 0 < y.sum() < len(y):
            out.append((r[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum()))
    return float(np.mean(out))


@pytest.mark.parametrize("strength", [1.0, 0.0])
def test_registration_features_help_only_when_they_carry_taste(strength):
    """k = 0: the Deezer mapping beats global popularity by > 0.03 AUC when the features
    carry taste and does not beat it at strength 0 (tolerance 0.01)."""
    from recbench_builtin.splits_users import ColdUserKSplit

    reg = default_registry()
    ds = synth(preset="small", seed=1, user_feature_strength=strength)
    split = ColdUserKSplit(revealed=0).split(ds, 1)
    aucs = {}
    for name in ("popularity", "deezer-personal", "deezer-semi"):
        model = reg.create("recommender", name, **({} if name == "popularity" else
                                                   {"factors": 16, "max_epochs": 40}))
        model.fit(FitContext(dataset=ds, split=split, seed=1))
        aucs[name] = _test_auc(model, split)
    gain = max(aucs["deezer-personal"], aucs["deezer-semi"]) - aucs["popularity"]
    if strength > 0:
        assert aucs["deezer-semi"] - aucs["popularity"] > 0.03, aucs
        assert aucs["deezer-personal"] - aucs["popularity"] > 0.03, aucs
    else:
        assert gain < 0.01, aucs


def test_fit_report_says_what_was_used():
    from recbench_builtin.splits_users import ColdUserKSplit

    ds = synth(user_feature_strength=1.0, skip_strength=1.0)
    split = ColdUserKSplit(revealed=2).split(ds, 0)
    model = default_registry().create("recommender", "deezer-semi", factors=8, clusters=3,
                                      max_epochs=3)
    model.fit(FitContext(dataset=ds, split=split, seed=0))
    report = model.fit_report()
    assert report["uses"] == ["interactions", "user_features", "user_categories", "events"]
    assert default_registry().create("recommender", "deezer-semi").uses()[0] == "interactions"
    assert report["revealed_k"] == 2 and report["input_dims"] == 6 + 5 + 2 + 8 + 1
    # k = 0 reads no event log, and without side parts nothing but interactions
    model = default_registry().create("recommender", "deezer-semi", factors=8, clusters=3,
                                      max_epochs=2, revealed=0)
    model.fit(FitContext(dataset=synth(), split=ColdUserKSplit().split(synth(), 0), seed=0))
    assert model.fit_report()["uses"] == ["interactions"]
