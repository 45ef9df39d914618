"""Speed of the `wmf` recommender's fit against calling `implicit` directly.

Run with `pytest tests/benchmarks --benchmark-only`. A 20,000 users x 7,000 songs play-count
matrix with about 1.5M interactions (power-law song popularity, log-normal user activity),
64 factors, 15 iterations, conjugate gradient:

- recbench: ``WMF.fit`` (confidence weighting 1 + 40 * count, then implicit's CPU ALS);
- direct: ``implicit.cpu.als.AlternatingLeastSquares(...).fit`` on the already weighted
  matrix (the weighting is not timed on this side: the comparison is strict).

Both run with the same thread settings: implicit's own threads on every core
(``num_threads=0``) and BLAS limited to one thread (as implicit asks, and as ``fit_wmf``
does). Rounds alternate (a direct fit in the untimed setup, then the timed recbench fit).
Both fits use the same seed and must give the same factors.

Speed is a measurement, not an assertion: the ratio (target recbench / direct <= 1.05)
goes into ``extra_info`` and is printed.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp

pytestmark = pytest.mark.benchmark

N_USERS, N_SONGS, TARGET_NNZ = 20_000, 7_000, 1_500_000
FACTORS, ITERATIONS, ALPHA, SEED = 64, 15, 40.0, 0
ROUNDS = 3
TARGET_RATIO = 1.05


def _report(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


@pytest.fixture(scope="module")
def counts() -> sp.csr_matrix:
    """Users x songs play counts (CSR float32), ~1.5M distinct (user, song) pairs."""
    rng = np.random.default_rng(0)
    song_p = 1.0 / np.arange(1, N_SONGS + 1) ** 0.8
    song_p = rng.permutation(song_p / song_p.sum())
    activity = rng.lognormal(0.0, 0.8, N_USERS)
    draws = int(TARGET_NNZ * 1.12)  # duplicates are merged below
    rows = rng.choice(N_USERS, draws, p=activity / activity.sum())
    cols = rng.choice(N_SONGS, draws, p=song_p)
    m = sp.csr_matrix((np.ones(draws, np.float32), (rows, cols)), shape=(N_USERS, N_SONGS))
    m.sum_duplicates()
    m.data = (m.data + rng.poisson(1.0, m.nnz)).astype(np.float32)  # play counts >= 1
    return m


def test_bench_wmf_fit_vs_implicit(benchmark, counts, capsys):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_info, threadpool_limits

    from recbench.components import FitContext
    from recbench.data import Dataset
    from recbench.registry import build_registry

    ds = Dataset("bench-wmf", counts, np.arange(N_USERS).astype(str),
                 np.arange(N_SONGS).astype(str), synthetic=True)
    # wmf reads only ctx.all_interactions (the oracle's view: dataset.counts), not the split
    ctx = FitContext(ds, split=None, seed=SEED, oracle=True)
    reg = build_registry()
    conf = counts.copy()
    conf.data = (1.0 + ALPHA * conf.data).astype(np.float32)
    direct_times: list[float] = []
    direct: list = []
    models: list = []

    def direct_fit():  # untimed setup: one direct fit right before each recbench round
        with threadpool_limits(1, "blas"):
            t0 = time.perf_counter()
            ref = AlternatingLeastSquares(factors=FACTORS, regularization=0.01, alpha=1.0,
                                          use_cg=True, iterations=ITERATIONS, num_threads=0,
                                          random_state=SEED)
            ref.fit(conf, show_progress=False)
            direct_times.append(time.perf_counter() - t0)
        direct[:] = [ref]

    def ours():
        model = reg.create("recommender", "wmf", factors=FACTORS, iterations=ITERATIONS,
                           alpha=ALPHA, threads=0)
        model.fit(ctx)
        models[:] = [model]

    benchmark.pedantic(ours, setup=direct_fit, rounds=ROUNDS, iterations=1)
    model, ref = models[0], direct[0]
    np.testing.assert_allclose(model.item_factors, ref.item_factors, atol=1e-4)
    np.testing.assert_allclose(model.user_factors, ref.user_factors, atol=1e-4)

    ours_s, direct_s = benchmark.stats.stats.min, min(direct_times)
    ratio = ours_s / direct_s
    paired = float(np.median([o / d for o, d in zip(benchmark.stats.stats.data, direct_times)]))
    blas = sorted({(i["internal_api"], i["num_threads"]) for i in threadpool_info()
                   if i["user_api"] == "blas"})
    benchmark.extra_info.update(
        users=N_USERS, songs=N_SONGS, nnz=int(counts.nnz), factors=FACTORS,
        iterations=ITERATIONS, recbench_s=round(ours_s, 3), implicit_s=round(direct_s, 3),
        ratio_vs_implicit=round(ratio, 3), paired_median_ratio=round(paired, 3),
        target_ratio=TARGET_RATIO, blas_outside_fit=str(blas))
    _report(capsys, f"wmf fit {N_USERS}x{N_SONGS}, {counts.nnz:,} interactions, {FACTORS} "
                    f"factors, {ITERATIONS} it: recbench {ours_s:.2f} s, implicit {direct_s:.2f} s"
                    f" -> ratio {ratio:.3f} (paired median {paired:.3f}; target <= "
                    f"{TARGET_RATIO})")
