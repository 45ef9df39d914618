"""Bootstrap intervals, paired comparisons and seed summaries against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from recbench.uncertainty import (bootstrap_ci, bootstrap_stats, paired_bootstrap,
                                  seed_summary)


def test_ci_covers_the_mean_of_a_known_distribution():
    rng = np.random.default_rng(0)
    values = rng.exponential(scale=2.0, size=3000)  # true mean 2
    low, high = bootstrap_ci(values, n_resamples=1000, seed=1)
    assert low < 2.0 < high
    assert low < values.mean() < high


def test_ci_width_matches_the_normal_approximation():
    rng = np.random.default_rng(1)
    values = rng.normal(0.8, 0.1, size=5000)
    low, high = bootstrap_ci(values, n_resamples=2000, seed=2, level=0.95)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert (high - low) == pytest.approx(2 * 1.959964 * se, rel=0.08)
    assert (low + high) / 2 == pytest.approx(values.mean(), abs=0.2 * se)
    low90, high90 = bootstrap_ci(values, n_resamples=2000, seed=2, level=0.90)
    assert (high90 - low90) == pytest.approx(2 * 1.644854 * se, rel=0.08)


def test_nan_users_are_ignored_and_rows_are_resampled_whole():
    rng = np.random.default_rng(2)
    values = rng.normal(size=400)
    with_nan = np.concatenate([values, np.full(100, np.nan)])
    stats = bootstrap_stats(with_nan, n_resamples=300, seed=3)
    assert np.isfinite(stats).all()
    assert abs(stats.mean() - values.mean()) < 3 * values.std() / np.sqrt(400)
    # 2-D values (as per_user may return) with the default mean: the mean over all entries
    two_d = np.stack([values, values + 1.0], axis=1)
    s2 = bootstrap_stats(two_d, n_resamples=300, seed=3)
    s1 = bootstrap_stats(values, n_resamples=300, seed=3)
    np.testing.assert_allclose(s2, s1 + 0.5, atol=1e-12)


def test_vectorised_mean_equals_a_loop_over_resamples():
    rng = np.random.default_rng(3)
    values = rng.random(257)
    values[::10] = np.nan
    fast = bootstrap_stats(values, np.nanmean, n_resamples=200, seed=4)
    slow = bootstrap_stats(values, lambda v: float(np.nanmean(v)), n_resamples=200, seed=4)
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    from recbench_builtin.metrics import AUC

    np.testing.assert_allclose(bootstrap_stats(values, AUC().reduce, 200, seed=4), fast,
                               atol=1e-12)


def test_deterministic_under_seed():
    values = np.random.default_rng(4).random(500)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)


def test_custom_reduce_median():
    rng = np.random.default_rng(5)
    values = rng.normal(3.0, 1.0, 2000)
    low, high = bootstrap_ci(values, reduce=np.median, n_resamples=300, seed=0)
    assert low < 3.0 < high and low < np.median(values) < high


def test_paired_bootstrap_detects_a_consistent_difference():
    rng = np.random.default_rng(6)
    base = rng.random(1000)
    better = base + 0.01 + rng.normal(0, 0.02, 1000)
    out = paired_bootstrap(better, base, np.nanmean, n_resamples=1000, seed=0)
    assert out["diff"] == pytest.approx(np.mean(better - base))
    assert 0 < out["low"] < out["diff"] < out["high"]
    assert out["p_value"] < 0.01


def test_paired_bootstrap_does_not_detect_a_zero_difference():
    rng = np.random.default_rng(7)
    a = rng.random(1000)
    noise = rng.normal(0, 0.05, 500)
    b = a + np.concatenate([noise, -noise])  # the mean difference is exactly zero
    out = paired_bootstrap(a, b, np.nanmean, n_resamples=1000, seed=0)
    assert out["diff"] == pytest.approx(0.0, abs=1e-12)
    assert out["low"] < 0 < out["high"]
    assert out["p_value"] > 0.5
    same = paired_bootstrap(a, a, np.nanmean, n_resamples=200, seed=0)
    assert same["diff"] == 0 and same["p_value"] == 1.0


def test_paired_bootstrap_uses_the_same_users_for_both():
    # a huge between-user spread but a constant per-user gap: only a paired resample sees
    # the gap without noise
    rng = np.random.default_rng(8)
    a = rng.normal(0, 10, 300)
    out = paired_bootstrap(a + 0.5, a, np.nanmean, n_resamples=300, seed=1)
    assert out["low"] == pytest.approx(0.5) and out["high"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same users"):
        paired_bootstrap(a, a[:10])


def test_seed_summary():
    assert seed_summary([0.7]) == (0.7, 0.0)
    mean, std = seed_summary([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.1)
    assert seed_summary([0.6, np.nan, 0.8])[1] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert all(np.isnan(seed_summary([])))


def test_edge_cases():
    assert all(np.isnan(bootstrap_ci(np.array([]))))
    assert all(np.isnan(bootstrap_ci(np.full(10, np.nan))))
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(np.ones(5), level=95)


def _coverage_values(rng, n_users, n_songs=300, k=10):
    """Coverage@K per-user rows of users whose top K is a draw without replacement in
    proportion to a power-law song popularity (Gumbel-top-k: no ties)."""
    from recbench.components import MetricInput
    from recbench_builtin.metrics import Coverage

    w = 1.0 / np.arange(1, n_songs + 1)
    scores = np.log(w)[None, :] + rng.gumbel(size=(n_users, n_songs))
    block = MetricInput(scores, np.zeros(scores.shape, dtype=bool), None, k)
    return Coverage().per_user(block)


def test_coverage_interval_contains_its_point_estimate_and_covers_the_truth():
    """Review defect 4: a percentile bootstrap over users is biased downwards for a
    'distinct songs covered' statistic (a resample holds ~63% distinct users), so its
    interval excluded its own point estimate. The bias-corrected interval must contain the
    point estimate, and cover the expected coverage of U users about 95% of the time."""
    from recbench_builtin.metrics import Coverage

    cov = Coverage()
    rng = np.random.default_rng(30)
    n_users = 200
    truth = np.mean([cov.reduce(_coverage_values(rng, n_users)) for _ in range(200)])
    hits, runs = 0, 60
    for r in range(runs):
        values = _coverage_values(rng, n_users)
        point = cov.reduce(values)
        low, high = bootstrap_ci(values, reduce=cov.reduce, n_resamples=200, seed=r)
        assert low <= point <= high
        hits += low <= truth <= high
    assert hits / runs >= 0.85  # percentile interval: 0 of 60


def test_bias_corrected_interval_of_a_mean_is_the_percentile_interval_shifted():
    rng = np.random.default_rng(31)
    values = rng.exponential(size=500)

    def mean(v):
        return float(np.nanmean(v))

    plain = bootstrap_ci(values, reduce=mean, n_resamples=300, seed=2)
    mean.bootstrap_interval = "bias-corrected"
    shifted = bootstrap_ci(values, reduce=mean, n_resamples=300, seed=2)
    stats = bootstrap_stats(values, mean, 300, seed=2)
    bias = stats.mean() - values.mean()
    np.testing.assert_allclose(shifted, np.array(plain) - bias, atol=1e-12)
    mean.bootstrap_bounds = (0.0, 0.9 * shifted[1])  # clipped to declared bounds
    clipped = bootstrap_ci(values, reduce=mean, n_resamples=300, seed=2)
    assert clipped[0] == pytest.approx(shifted[0]) and clipped[1] <= 0.9 * shifted[1]
    mean.bootstrap_interval = "bca"
    with pytest.raises(ValueError, match="bootstrap_interval"):
        bootstrap_ci(values, reduce=mean)
