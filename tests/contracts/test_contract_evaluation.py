"""Built-in metrics, tasks and executors against their `recbench.testing` contracts, and
known-answer tests of the recommendation task (where every reported number is produced)."""

from __future__ import annotations

import numpy as np
import pytest
from recbench_builtin.executors import DaskExecutor, LocalExecutor, ProcessExecutor
from recbench_builtin.metrics import AUC, MAP, NDCG, Coverage, Popularity, Precision, Recall
from recbench_builtin.tasks.recommendation import RecommendationTask
from recbench_builtin.tasks.tagging import TaggingTask

from recbench.components import Recommender
from recbench.testing import (ExecutorContract, MetricContract, TaskContract, World,
                              random_counts, split_songs)

# -------------------------------------------------- references: one ranking, best first


def _auc(labels, popularity, k):
    pos, neg = labels.sum(), (~labels).sum()
    negatives_below = np.cumsum((~labels)[::-1])[::-1]  # negatives at or after each rank
    return float(negatives_below[labels].sum() / (pos * neg))


def _hits(labels, k):
    return float(labels[:k].sum())


def _ndcg(labels, popularity, k):
    disc = 1 / np.log2(np.arange(2, len(labels) + 2))
    return float((labels[:k] * disc[:k]).sum() / disc[:min(k, labels.sum())].sum())


def _ap(labels, popularity, k):
    prec = np.cumsum(labels) / np.arange(1, len(labels) + 1)
    return float((prec * labels)[:k].sum() / min(k, labels.sum()))


class TestAUC(MetricContract):
    component = AUC
    reference = staticmethod(_auc)


class TestNDCG(MetricContract):
    component = NDCG
    reference = staticmethod(_ndcg)


class TestRecall(MetricContract):
    component = Recall
    reference = staticmethod(lambda labels, popularity, k: _hits(labels, k) / labels.sum())


class TestPrecision(MetricContract):
    component = Precision
    reference = staticmethod(lambda labels, popularity, k: _hits(labels, k) / k)


class TestMAP(MetricContract):
    component = MAP
    reference = staticmethod(_ap)


class TestCoverage(MetricContract):
    component = Coverage
    uses_labels = False


class TestPopularity(MetricContract):
    component = Popularity
    uses_labels = False
    bounds = (0.0, np.inf)
    reference = staticmethod(lambda labels, popularity, k: float(popularity[:k].mean()))


# -------------------------------------------------- tasks


class TestRecommendation(TaskContract):
    component = RecommendationTask
    metrics = (("auc", "auc", None), ("ndcg@5", "ndcg", 5), ("coverage@5", "coverage", 5))
    known_metrics = {"auc": 1.0, "ndcg@5": 1.0}


class TestTagging(TaskContract):
    component = TaggingTask
    options = {"hidden": 16, "lr": 0.05, "batch_size": 16, "max_epochs": 30, "patience": 5}
    known_metrics = {"tag_auc_macro": 1.0}  # the song vectors are the tags (plus noise)


class _Fixed(Recommender):
    """Scores from a fixed users x songs array."""

    name = "fixed"
    description = "test double"

    def __init__(self, scores):
        super().__init__()
        self.scores = np.asarray(scores, dtype=float)

    def fit(self, ctx):
        pass

    def score(self, users, songs):
        return self.scores[np.asarray(users)][:, np.asarray(songs)]


def _warm_world() -> World:
    """A warm world: 6 users x 8 songs, every song a candidate; test = each user's last 2."""
    ds = random_counts(seed=5, users=6, songs=8, density=0.5)
    w = split_songs(ds, np.arange(8), np.zeros(0, np.int64), np.arange(8))
    dense = ds.counts.toarray()
    test = np.zeros_like(dense)
    for u in range(6):
        played = np.flatnonzero(dense[u])
        test[u, played[-2:]] = dense[u, played[-2:]]
    import scipy.sparse as sp

    from dataclasses import replace
    split = replace(w, protocol="warm", train=sp.csr_matrix(dense - test),
                    valid=sp.csr_matrix(dense.shape, dtype=np.float32),
                    test=sp.csr_matrix(test), test_users=np.arange(6))
    return World(ds, split)


def _run(world, scores, chunk_users=1024, metrics=(("auc", "auc", None),
                                                  ("ndcg@3", "ndcg", 3))):
    contract = TestRecommendation()
    contract.metrics = metrics
    task = RecommendationTask(buckets=0)
    return task.run(contract.cell(world, task, _Fixed(scores), chunk_users=chunk_users))


def test_recommendation_oracle_scorer_is_perfect():
    world = _warm_world()
    labels = world.split.test.toarray() > 0
    out = _run(world, labels.astype(float))
    assert out.metrics == {"auc": 1.0, "ndcg@3": 1.0}


def test_recommendation_excludes_training_songs():
    """Songs a user has in training are not candidates: ranking them first costs nothing."""
    world = _warm_world()
    labels = world.split.test.toarray() > 0
    seen = world.split.train.toarray() > 0
    out = _run(world, labels + 10.0 * seen)
    assert out.metrics == {"auc": 1.0, "ndcg@3": 1.0}


def test_recommendation_hand_computed_auc_and_chunk_invariance():
    """Reversed scores give AUC 0; constant scores 0.5 (ties count 1/2); chunking never
    changes a number."""
    world = _warm_world()
    labels = world.split.test.toarray() > 0
    assert _run(world, -labels.astype(float)).metrics["auc"] == 0.0
    assert _run(world, np.zeros(labels.shape)).metrics["auc"] == 0.5
    rng = np.random.default_rng(0)
    scores = rng.random(labels.shape)
    outs = [_run(world, scores, chunk_users=c) for c in (1, 4, 1024)]
    assert outs[0].metrics == outs[1].metrics == outs[2].metrics
    assert outs[0].diagnostics["n_users"] == 6 and outs[0].diagnostics["n_candidates"] == 8


# -------------------------------------------------- executors


class TestLocal(ExecutorContract):
    component = LocalExecutor


class TestProcess(ExecutorContract):
    component = ProcessExecutor
    options = {"workers": 2}


@pytest.mark.slow
class TestDask(ExecutorContract):
    component = DaskExecutor
    options = {"workers": 1}
