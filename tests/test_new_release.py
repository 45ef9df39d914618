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
