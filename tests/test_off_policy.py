"""Off-policy evaluation (issue 14 item 2): the estimators on a hand-computed log, their
unbiasedness on a simulated bandit, the target policies, Thompson sampling's action
probabilities, the `propensity` field of the event log, and the task's one-line error."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import CellContext, FitContext
from recbench.data import Dataset, Events, Split
from recbench.errors import DataError
from recbench_builtin.recommenders.exploration import (BoltzmannPopularity,
                                                       EpsilonGreedyPopularity,
                                                       prob_of_max_beta)
from recbench_builtin.tasks.off_policy import OffPolicyTask, ips_estimates, target_policy


def test_ips_snips_ess_on_a_hand_computed_log():
    # 4 slots: target probabilities, logging propensities, rewards
    pi = np.array([0.5, 0.0, 1.0, 0.25])
    p = np.array([0.25, 0.5, 0.5, 0.125])
    r = np.array([1.0, 1.0, 0.0, 1.0])
    w = pi / p  # 2, 0, 2, 2
    est = ips_estimates(w, r)
    assert est["ips"] == pytest.approx((2 + 0 + 0 + 2) / 4)  # 1.0
    assert est["snips"] == pytest.approx(4 / 6)
    assert est["ess"] == pytest.approx(36 / 12)  # (sum w)^2 / sum w^2 = 3


def test_ips_is_unbiased_on_a_simulated_bandit():
    """Closed form: V(pi) = sum_a pi(a) mu(a); the mean of many IPS estimates matches it
    within 4 standard errors, and so does SNIPS (consistent) on large logs."""
    rng = np.random.default_rng(0)
    k, n, reps = 6, 200, 2000
    mu = np.array([0.9, 0.2, 0.5, 0.1, 0.7, 0.3])  # reward rates
    logger = np.array([0.05, 0.4, 0.2, 0.2, 0.1, 0.05])
    pi = np.array([0.6, 0.0, 0.1, 0.0, 0.3, 0.0])
    truth = float(pi @ mu)  # 0.80
    ips = np.empty(reps)
    for i in range(reps):
        a = rng.choice(k, n, p=logger)
        r = (rng.random(n) < mu[a]).astype(float)
        ips[i] = ips_estimates(pi[a] / logger[a], r)["ips"]
    se = ips.std() / np.sqrt(reps)
    assert abs(ips.mean() - truth) < 4 * se
    assert abs(ips.mean() - float(logger @ mu)) > 20 * se  # not the logger's own value
    a = rng.choice(k, 200_000, p=logger)
    r = (rng.random(len(a)) < mu[a]).astype(float)
    assert ips_estimates(pi[a] / logger[a], r)["snips"] == pytest.approx(truth, abs=0.01)


def test_target_policies():
    s = np.array([[3.0, 1.0, 3.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    np.testing.assert_allclose(target_policy(s, "greedy"),
                               [[0.5, 0, 0.5, 0], [0, 0, 0, 1]])  # ties share the mass
    np.testing.assert_allclose(target_policy(s, "epsilon-greedy", epsilon=0.2)[1],
                               [0.05, 0.05, 0.05, 0.85])
    soft = target_policy(s, "softmax", temperature=0.5)
    z = (s[1] - s[1].mean()) / s[1].std()
    want = np.exp(z / 0.5) / np.exp(z / 0.5).sum()
    np.testing.assert_allclose(soft[1], want)
    # standardised: the same policy whatever the scale of the scores
    np.testing.assert_allclose(target_policy(10 * s + 4, "softmax", temperature=0.5), soft)


def test_thompson_probabilities_match_sampling():
    a = np.array([30.0, 28.0, 5.0, 60.0, 2.0])
    b = np.array([10.0, 8.0, 3.0, 40.0, 9.0])
    p = prob_of_max_beta(a, b)
    draws = np.random.default_rng(1).beta(a, b, size=(400_000, len(a)))
    freq = np.bincount(draws.argmax(axis=1), minlength=len(a)) / len(draws)
    np.testing.assert_allclose(p, freq, atol=0.004)
    assert p.sum() == pytest.approx(1.0)


def _world(propensity=True):
    """3 users x 4 songs; users 1 and 2 are test users with one session each."""
    ev = Events(user=np.array([0, 0, 1, 1, 2]), song=np.array([0, 1, 0, 2, 3]),
                timestamp=np.arange(5.0), session=np.array([0, 0, 1, 1, 2]),
                skipped=np.array([False, True, False, True, False]),
                propensity=np.array([0.5, 0.25, 0.5, 0.25, 0.125]) if propensity else None)
    counts = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], np.float32))
    ds = Dataset(name="toy", counts=counts, user_ids=np.array(["a", "b", "c"]),
                 song_ids=np.array(["s0", "s1", "s2", "s3"]), events=ev)
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0] * 4, [0] * 4], np.float32))
    empty = sp.csr_matrix((3, 4), dtype=np.float32)
    split = Split(name="toy", seed=0, protocol="cold-user", train=train, valid=empty,
                  test=counts - train, train_songs=np.arange(4), valid_songs=np.arange(4),
                  test_songs=np.arange(4), train_users=np.array([0]),
                  test_users=np.array([1, 2]))
    return ds, split


def _run(model, propensity=True, bootstrap=0, **task_opts):
    ds, split = _world(propensity)
    fit = FitContext(dataset=ds, split=split, seed=0)
    model.fit(fit)
    ctx = CellContext(dataset=ds, split=split, model=model, metrics=[], fit=fit, seed=0,
                      bootstrap=bootstrap)
    return OffPolicyTask(**task_opts).run(ctx)


def test_task_on_a_hand_computed_log():
    # epsilon-greedy popularity, epsilon 0.4: song 0 (the one training listener) gets
    # 0.6 + 0.1, the others 0.1. Test slots: (user 1: song 0 played p .5, song 2 skipped
    # p .25), (user 2: song 3 played p .125): w = 1.4, 0.4, 0.8; r = 1, 0, 1
    out = _run(EpsilonGreedyPopularity(epsilon=0.4))
    assert out.metrics["ips"] == pytest.approx((1.4 + 0.8) / 3)
    assert out.metrics["snips"] == pytest.approx(2.2 / 2.6)
    assert out.metrics["ess"] == pytest.approx(2.6 ** 2 / (1.4 ** 2 + 0.4 ** 2 + 0.8 ** 2))
    assert "true_value" not in out.metrics  # no simulator behind this log
    assert out.diagnostics["n_slots"] == 3 and out.diagnostics["logged_value"] == \
        pytest.approx(2 / 3)
    # the task's own policy from the model's scores: greedy on popularity = song 0 only
    greedy = _run(EpsilonGreedyPopularity(epsilon=0.4), policy="greedy")
    assert greedy.metrics["ips"] == pytest.approx(2 / 3)  # w = 2 on the played song 0
    chart = OffPolicyTask.diagnostics_chart([{"label": "eps", "extra": out.diagnostics}])
    assert chart.groups == ["IPS", "SNIPS"]
    assert chart.series["eps"] == pytest.approx([2.2 / 3, 2.2 / 2.6])
    table = OffPolicyTask.diagnostics_table([{"label": "eps", "extra": out.diagnostics}])
    assert table.rows[0][:5] == ["eps", 2, 3, pytest.approx(2 / 3), pytest.approx(1.4)]
    boot = _run(BoltzmannPopularity(), bootstrap=200)
    low, high = boot.metrics_ci["snips"]
    assert low <= boot.metrics["snips"] <= high


def test_task_without_propensities_is_one_line():
    with pytest.raises(DataError) as err:
        _run(EpsilonGreedyPopularity(), propensity=False)
    msg = str(err.value)
    assert "\n" not in msg and "events.propensity" in msg and "log_propensities" in msg


def test_events_propensity_is_validated_in_one_line():
    ev = Events(user=np.array([0, 0]), song=np.array([0, 1]), timestamp=np.array([0.0, 1.0]),
                session=np.array([0, 0]), skipped=np.array([False, True]),
                propensity=np.array([0.5, 1.0]))
    ev.validate(1, 2)  # 1.0 is a probability
    for bad, where in (([0.5, 0.0], 1), ([1.5, 0.5], 0), ([0.5, np.nan], 1)):
        ev.propensity = np.array(bad)
        with pytest.raises(ValueError, match=rf"^events\.propensity\[{where}\] = .*\(0, 1\]$"):
            ev.validate(1, 2)
    ev.propensity = np.array([0.5, 0.5], dtype=np.float32)
    with pytest.raises(ValueError, match="float64"):
        ev.validate(1, 2)
    ev.propensity = np.array([0.5])
    with pytest.raises(ValueError, match="length 2"):
        ev.validate(1, 2)


def test_propensity_enters_the_fingerprint_only_when_set():
    with_p, _ = _world(True)
    without, _ = _world(False)
    assert with_p.fingerprint != without.fingerprint
    # unset: the hash of the log as it was before the field existed
    from recbench.data import hash_arrays

    ev = without.events
    old_parts = [without.user_ids, without.song_ids, without.counts, None, [], None,
                 without._side_hash_parts()]
    assert list(ev.parts()) == [ev.user, ev.song, ev.timestamp, ev.session, ev.skipped]
    assert hash_arrays(*old_parts) == without.fingerprint


def test_events_select_keeps_the_propensities_aligned():
    ds, _ = _world(True)
    sub = ds.events.select(ds.events.skipped == 0)
    np.testing.assert_array_equal(sub.song, [0, 0, 3])
    np.testing.assert_array_equal(sub.propensity, [0.5, 0.5, 0.125])
    assert _world(False)[0].events.select(np.array([0, 4])).propensity is None
