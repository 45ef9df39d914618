"""Contract tests of the off-policy task and the exploration policies (issue 14 item 2),
and each policy's action distribution: rows sum to 1, the same for every new user."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from recbench.components import FitContext
from recbench.testing import RecommenderContract, TaskContract, worlds
from recbench_builtin.recommenders.exploration import (BoltzmannPopularity,
                                                       EpsilonGreedyPopularity,
                                                       ThompsonBandit)
from recbench_builtin.splits_users import ColdUserKSplit
from recbench_builtin.tasks.off_policy import OffPolicyTask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from users14_data import synth  # noqa: E402

KNOBS = {"skip_strength": 1.0, "log_propensities": True, "logging_uniform": 0.2}


class TestEpsilonGreedy(RecommenderContract):
    component = EpsilonGreedyPopularity


class TestBoltzmann(RecommenderContract):
    component = BoltzmannPopularity


class TestThompsonListeners(RecommenderContract):
    component = ThompsonBandit
    options = {"evidence": "listeners", "grid": 500}


class TestOffPolicyTask(TaskContract):
    component = OffPolicyTask
    metrics = ()

    def make_world(self):
        ds = synth(**KNOBS)
        return worlds.World(dataset=ds, split=ColdUserKSplit().split(ds, 0))

    def make_model(self, world):
        return BoltzmannPopularity()


@pytest.mark.parametrize("model", [EpsilonGreedyPopularity(epsilon=0.3), BoltzmannPopularity(),
                                   ThompsonBandit(grid=500),
                                   ThompsonBandit(evidence="listeners", grid=500)])
def test_policies_are_distributions_shared_by_new_users(model):
    ds = synth(**KNOBS)
    split = ColdUserKSplit().split(ds, 0)
    model.fit(FitContext(dataset=ds, split=split, seed=0))
    songs = np.arange(ds.n_songs)
    pi = model.policy(split.test_users[:5], songs)
    assert pi.shape == (5, ds.n_songs)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0)
    assert (pi >= 0).all() and np.ptp(pi, axis=0).max() == 0
    # popularity policies: the exploit ranking puts the policy's likeliest song first
    # (Thompson's likeliest song is not always the best posterior mean: a song with few
    # trials and a high mean can lose to a sure one)
    if not isinstance(model, ThompsonBandit):
        assert model.score(split.test_users[:1], songs)[0].argmax() in np.flatnonzero(
            pi[0] == pi[0].max())
    assert "interactions" in model.uses()


def test_thompson_on_exposures_reads_only_warm_users_events():
    ds = synth(**KNOBS)
    split = ColdUserKSplit().split(ds, 0)
    model = ThompsonBandit(grid=500)
    model.fit(FitContext(dataset=ds, split=split, seed=0))
    ev = ds.events
    warm = np.isin(ev.user, split.train_users)
    assert model.fit_info["evidence_trials_mean"] == pytest.approx(warm.sum() / ds.n_songs)
    assert model.uses() == ["interactions", "events"]
