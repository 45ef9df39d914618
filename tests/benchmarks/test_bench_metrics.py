"""Speed of the metric code: run with `pytest tests/benchmarks --benchmark-only`.

Speed is a measurement, not a unit-test assertion: figures go into the benchmark's
`extra_info` (and are printed); only correctness is asserted.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from recbench.metrics import average_precision_at_k, ndcg_at_k, roc_auc_per_user

pytestmark = pytest.mark.benchmark

N_USERS, N_SONGS = 20_000, 2_000  # the paper's users x a cold split's share of 10,000 songs
SKLEARN_USERS = 400  # users timed with the sklearn loop; scaled to N_USERS


@pytest.fixture(scope="module")
def block():
    """Model-like float32 scores, ~1.5% positives per user (at least one), no mask."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(N_USERS, N_SONGS)).astype(np.float32)
    labels = rng.random((N_USERS, N_SONGS)) < 0.015
    labels[np.arange(N_USERS), rng.integers(0, N_SONGS, N_USERS)] = True
    scores += labels  # some signal, as a model has
    return scores, labels


def _report(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_bench_roc_auc_per_user(benchmark, block, dtype, capsys):
    scores, labels = block
    scores = scores.astype(dtype)  # float64: what the recommendation task passes
    out = benchmark.pedantic(roc_auc_per_user, args=(scores, labels), rounds=3, iterations=1)
    assert out.shape == (N_USERS,) and np.isfinite(out).all()
    users_per_s = N_USERS / benchmark.stats.stats.min
    benchmark.extra_info.update(users=N_USERS, songs=N_SONGS, users_per_s=round(users_per_s))
    _report(capsys, f"roc_auc_per_user {N_USERS}x{N_SONGS} {dtype}: {users_per_s:,.0f} users/s")


def test_bench_speedup_vs_sklearn_loop(benchmark, block, capsys):
    """Ours on all users vs a loop of sklearn.metrics.roc_auc_score, timed in one run."""
    from sklearn.metrics import roc_auc_score

    scores, labels = block
    t0 = time.perf_counter()
    ref = [roc_auc_score(labels[i], scores[i]) for i in range(SKLEARN_USERS)]
    sklearn_s = (time.perf_counter() - t0) * N_USERS / SKLEARN_USERS
    out = benchmark.pedantic(roc_auc_per_user, args=(scores, labels), rounds=3, iterations=1)
    ours_s = benchmark.stats.stats.min
    np.testing.assert_allclose(out[:SKLEARN_USERS], ref, atol=1e-9)
    ratio = sklearn_s / ours_s
    benchmark.extra_info.update(sklearn_s_scaled=round(sklearn_s, 3), ours_s=round(ours_s, 4),
                                speedup=round(ratio, 1), target_speedup=100,
                                users_per_s=round(N_USERS / ours_s))
    _report(capsys, f"roc_auc_per_user vs sklearn loop: sklearn {sklearn_s:.2f} s "
                    f"(scaled from {SKLEARN_USERS} users), ours {ours_s:.3f} s -> "
                    f"{ratio:.1f}x (target >= 100x)")


@pytest.mark.parametrize("name,fn,k", [("ndcg@10", ndcg_at_k, 10),
                                       ("map@500", average_precision_at_k, 500)])
def test_bench_at_k(benchmark, block, name, fn, k, capsys):
    scores, labels = block
    out = benchmark.pedantic(fn, args=(scores, labels, k), rounds=1, iterations=1)
    assert np.isfinite(out).all()
    users_per_s = N_USERS / benchmark.stats.stats.min
    benchmark.extra_info.update(users_per_s=round(users_per_s))
    _report(capsys, f"{name} {N_USERS}x{N_SONGS}: {users_per_s:,.0f} users/s")
