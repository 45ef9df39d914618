"""The new-release task: per-song metrics against hand computations, the leak guard."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import CellContext, Recommender
from recbench.data import Dataset
from recbench.errors import ConfigError, DataError
from recbench.registry import build_registry
from recbench.testing import worlds
from recbench_builtin.splits import WarmSplit
from recbench_builtin.tasks.new_release import NewReleaseTask, check_no_leak


class _Table(Recommender):
    """Scores from a fixed users x songs table."""

    name = "table"

    def __init__(self, table):
        super().__init__()
        self.table = np.asarray(table, dtype=float)

    def fit(self, ctx):
        pass

    def score(self, users, songs):
        return self.table[np.asarray(users)][:, np.asarray(songs)]


def _world():
    """4 users, 3 songs: song 0 trains (users 0-3), songs 1 and 2 are new releases; song 1
    was played by users 0 and 2 in the test part, song 2 by user 3."""
    counts = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0], [1, 0, 1]], np.float32)
    ds = Dataset("hand", sp.csr_matrix(counts), np.array(list("abcd")), np.array(list("xyz")))
    split = worlds.split_songs(ds, np.array([0]), np.zeros(0, np.int64), np.array([1, 2]), 0)
    return ds, split


def _run(ds, split, model, **options):
    reg = build_registry()
    metrics = [("auc", reg.create("metric", "auc"), None),
               ("recall@1", reg.create("metric", "recall"), 1)]
    ctx = CellContext(dataset=ds, split=split, model=model, metrics=metrics, fit=None, seed=0,
                      bootstrap=50)
    return NewReleaseTask(**options).run(ctx)


def test_per_song_auc_and_recall_by_hand():
    ds, split = _world()
    # song 1: listeners 0, 2 score 0.9, 0.2; non-listeners 1, 3 score 0.5, 0.1
    #   -> pairs above: (0>1, 0>3, 2>1? no, 2>3) = 3 of 4 -> AUC 0.75; top-1 = user 0: recall 1/1
    # song 2: listener 3 scores 0.3; others 0.4, 0.1, 0.2 -> above 2 of 3 -> AUC 2/3;
    #   top-1 = user 0 (0.4): recall 0
    table = np.array([[0, 0.9, 0.4], [0, 0.5, 0.1], [0, 0.2, 0.2], [0, 0.1, 0.3]])
    out = _run(ds, split, _Table(table))
    assert out.metrics["auc"] == pytest.approx((0.75 + 2 / 3) / 2)
    # recall = hits / positives: song 1 has 1 of its 2 listeners on top, song 2 none
    assert out.metrics["recall@1"] == pytest.approx((1 / 2 + 0.0) / 2)
    assert out.diagnostics["n_songs"] == 2 and out.diagnostics["n_candidate_users"] == 4
    # per-song values for paired claims, keyed by song
    assert out.per_user["users"].tolist() == [1, 2]
    assert out.per_user["auc"] == pytest.approx([0.75, 2 / 3])
    assert out.per_user["recall@1"] == pytest.approx([0.5, 0.0])


def test_leak_guard_refuses_a_split_with_test_song_interactions():
    w = worlds.audible_classes_world(users=30, songs=40)
    warm = WarmSplit().split(w.dataset, 0)
    with pytest.raises(DataError, match="interactions with test songs"):
        check_no_leak(warm)
    check_no_leak(w.split)  # the cold-item split passes
    with pytest.raises(ConfigError, match="cold-item"):
        _run(w.dataset, warm, _Table(np.zeros((30, 40))))


def test_scores_only_depend_on_the_model_not_on_test_interactions():
    """The task reads held-out interactions only as labels: a model that ignores them gives
    the same scores on a world whose test part is poisoned; its metrics change."""
    w = worlds.audible_classes_world(users=30, songs=40)
    table = np.random.default_rng(0).random((30, 40))
    a = _run(w.dataset, w.split, _Table(table))
    p = w.with_poisoned_test()
    b = _run(p.dataset, p.split, _Table(table))
    assert a.metrics["auc"] != b.metrics["auc"]
    assert 0.3 < b.metrics["auc"] < 0.7  # random scores vs random listeners: chance


def _group_world():
    """6 users, songs x (training, everyone), y and z new: y played by users 0, 1, 3 and z
    by user 5 in the test part; segments g0 = {0, 1, 2}, g1 = {3, 4}, g2 = {5}."""
    from dataclasses import replace

    counts = np.zeros((6, 3), np.float32)
    counts[:, 0] = 1
    counts[[0, 1, 3], 1] = 1
    counts[5, 2] = 1
    ds = Dataset("hand", sp.csr_matrix(counts), np.array(list("abcdef")), np.array(list("xyz")))
    ds = replace(ds, user_categories={"seg": np.array([0, 0, 0, 1, 1, 2])})
    split = worlds.split_songs(ds, np.array([0]), np.zeros(0, np.int64), np.array([1, 2]), 0)
    return ds, split


def test_group_ranking_by_hand():
    ds, split = _group_world()
    table = np.zeros((6, 3))
    table[:, 1] = [0.9, 0.3, 0.0, 0.8, 0.2, 0.5]  # group means 0.4, 0.5, 0.5 (a tie)
    table[:, 2] = [0.1, 0.1, 0.1, 0.2, 0.2, 0.9]  # group means 0.1, 0.2, 0.9
    out = _run(ds, split, _Table(table), user_groups="seg", min_group_size=1, group_k=2)
    # song y: relevance (shares of listeners) g0 2/3, g1 1/2, g2 0; g1 and g2 tie on top,
    # sharing the gain (1/2 + 0) / 2 -> DCG@2 = 1/4 + 1/4 / log2 3; ideal 2/3 + 1/2 / log2 3
    l3 = np.log2(3)
    ndcg_y = (0.25 + 0.25 / l3) / (2 / 3 + 0.5 / l3)
    # song z: relevance (0, 0, 1), g2 ranked first -> 1
    assert out.metrics["group_ndcg@2"] == pytest.approx((ndcg_y + 1.0) / 2)
    # Spearman: y ranks (1, 2.5, 2.5) vs (3, 2, 1) -> -1.5 / sqrt(1.5 * 2);
    #           z ranks (1, 2, 3) vs (1.5, 1.5, 3) -> 1.5 / sqrt(2 * 1.5): mean 0
    assert out.metrics["group_spearman"] == pytest.approx(0.0, abs=1e-12)
    assert out.diagnostics["n_groups"] == 3
    # groups smaller than min_group_size are left out: only g0 and g1 remain
    out2 = _run(ds, split, _Table(table), user_groups="seg", min_group_size=2, group_k=2)
    assert out2.diagnostics["n_groups"] == 2
    with pytest.raises(DataError, match="no such user category"):
        _run(ds, split, _Table(table), user_groups="age_band")
    with pytest.raises(DataError, match="needs user_features"):
        _run(ds, split, _Table(table), user_groups="kmeans")


def test_group_ndcg_and_spearman_match_references():
    from scipy.stats import spearmanr
    from sklearn.metrics import ndcg_score

    from recbench_builtin.tasks.new_release import compact_groups, spearman_rows, tie_ndcg

    rng = np.random.default_rng(0)
    scores = np.round(rng.random((20, 7)), 1)  # rounded: many ties
    gains = rng.random((20, 7))
    for k in (1, 3, 7):
        ref = [ndcg_score(gains[i:i + 1], scores[i:i + 1], k=k) for i in range(20)]
        np.testing.assert_allclose(tie_ndcg(scores, gains, k), ref)
    ref = [spearmanr(scores[i], gains[i])[0] for i in range(20)]
    np.testing.assert_allclose(spearman_rows(scores, gains), ref)
    assert spearman_rows(np.ones((1, 4)), gains[:1, :4])[0] == 0.0
    np.testing.assert_array_equal(compact_groups(np.array([4, 4, -1, 9, 7, 7]), 2),
                                  [0, 0, -1, -1, 1, 1])
