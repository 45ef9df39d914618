"""Speed of the `wmf` recommender's fit against calling `implicit` directly.

Run with `pytest tests/benchmarks --benchmark-only`. A 20,000 users x 7,000 songs play-count
matrix with about 1.5M interactions (power-law song popularity, log-normal user activity),
64 factors, 15 iterations, conjugate gradient:

- recbench: ``WMF.fit`` (confidence weighting 1 + 40 * count, then implicit's CPU ALS);
- direct: ``implicit.cpu.als.AlternatingLeastSquares(...).fit`` on the already weighted
  matrix (the weighting is not timed on this side: the comparison is strict).

Both run with the same thread settings, in two cases: implicit on one thread and on
every core (``num_threads`` 1 and 0; recbench's ``threads`` param passes it on), BLAS
limited to one thread (as implicit asks, and as ``fit_wmf`` does). Rounds alternate (a
direct fit in the untimed setup, then the timed recbench fit). Both fits use the same seed
and must give the same factors.

Speed is a measurement, not an assertion: the wall-time ratio (target recbench / direct
<= 1.05), the paired (per-round) median ratio and the CPU-time ratio go into
``extra_info`` and are printed. On a shared machine trust the CPU-time ratio of the
one-thread case most: other jobs barely move it.
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


@pytest.mark.parametrize("threads", [1, 0], ids=["1-thread", "all-cores"])
def test_bench_wmf_fit_vs_implicit(benchmark, counts, threads, capsys):
    """recbench's `wmf` fit vs implicit called directly: same matrix, params, threads."""
    from implicit.cpu.als import AlternatingLeastSquares
    from recbench_builtin.recommenders.wmf import confidence_matrix
    from threadpoolctl import threadpool_limits

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
    direct_wall: list[float] = []
    direct_cpu: list[float] = []
    ours_cpu: list[float] = []
    last: dict = {}

    def direct_fit():  # untimed setup: one direct fit right before each recbench round
        with threadpool_limits(1, "blas"):
            c0, t0 = time.process_time(), time.perf_counter()
            ref = AlternatingLeastSquares(factors=FACTORS, regularization=0.01, alpha=1.0,
                                          use_cg=True, iterations=ITERATIONS,
                                          num_threads=threads, random_state=SEED)
            ref.fit(conf, show_progress=False)
            direct_wall.append(time.perf_counter() - t0)
            direct_cpu.append(time.process_time() - c0)
        last["direct"] = ref

    def ours():
        c0 = time.process_time()
        model = reg.create("recommender", "wmf", factors=FACTORS, iterations=ITERATIONS,
                           alpha=ALPHA, threads=threads)
        model.fit(ctx)
        ours_cpu.append(time.process_time() - c0)
        last["ours"] = model

    benchmark.pedantic(ours, setup=direct_fit, rounds=ROUNDS, iterations=1)
    model, ref = last["ours"], last["direct"]
    np.testing.assert_allclose(model.item_factors, ref.item_factors, atol=1e-4)
    np.testing.assert_allclose(model.user_factors, ref.user_factors, atol=1e-4)

    # recbench's only extra work: the confidence weighting, timed alone
    weigh_s = []
    for _ in range(5):
        t0 = time.perf_counter()
        confidence_matrix(counts, ALPHA, "raw")
        weigh_s.append(time.perf_counter() - t0)

    ours_s, direct_s = benchmark.stats.stats.min, min(direct_wall)
    ratio = ours_s / direct_s
    paired = float(np.median([o / d for o, d in zip(benchmark.stats.stats.data, direct_wall)]))
    # CPU time of the process: far less sensitive than wall time to other jobs on a
    # shared machine (with one thread it is the clean figure; with several it includes
    # OpenMP's waiting)
    cpu_ratio = min(ours_cpu) / min(direct_cpu)
    n_threads = threads or default_threads()
    benchmark.extra_info.update(
        users=N_USERS, songs=N_SONGS, nnz=int(counts.nnz), factors=FACTORS,
        iterations=ITERATIONS, threads=n_threads, recbench_s=round(ours_s, 3),
        implicit_s=round(direct_s, 3), ratio_vs_implicit=round(ratio, 3),
        paired_median_ratio=round(paired, 3), cpu_time_ratio=round(cpu_ratio, 3),
        target_ratio=TARGET_RATIO, confidence_weighting_s=round(min(weigh_s), 4))
    _report(capsys, f"wmf fit {N_USERS}x{N_SONGS}, {counts.nnz:,} interactions, {FACTORS} "
                    f"factors, {ITERATIONS} it, {n_threads} thread(s): recbench {ours_s:.2f} s, "
                    f"implicit {direct_s:.2f} s -> ratio {ratio:.3f} (paired median "
                    f"{paired:.3f}, CPU time {cpu_ratio:.3f}; target <= {TARGET_RATIO}); "
                    f"recbench's confidence weighting alone {min(weigh_s) * 1e3:.0f} ms")


def default_threads() -> int:
    """The threads implicit's num_threads=0 uses: the usable cores."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
