"""Speed of scoring every test user against every cold song.

Run with `pytest tests/benchmarks --benchmark-only`. 20,000 users x 2,000 cold songs (the
paper's users x a 20 % cold split of 10,000 songs), scored as the `recommendation` task
scores them: ``model.score(users, songs)`` in blocks of 1,024 users (CellContext's default
``chunk_users``).

- ``wmf-regression``: user factors . predicted song factors (40 factors, the default);
  the factors are set directly (a fit's output) since only scoring is timed.
- ``dcue``: cosine of 256-d user and song vectors; the model is set up by ``DCUE.fit``
  (one step, a narrow backbone on small random features: training quality is irrelevant
  here) which caches the cold songs' vectors, as a real fit does.

Each is timed with BLAS on one thread (a cell's budget when cells run in parallel) and on
every core. On a loaded 2-core machine the all-cores case can be 5-10x SLOWER: every GEMM
call waits for its second BLAS thread to get a core (measured 0.31 s vs 0.034 s for the
20 blocks of wmf-regression; 0.058 s when the machine was quiet).

A last benchmark times the whole evaluation of the task (scores, labels, per-user AUC —
alone, or with the quickstart suite's @K metrics and coverage —, popularity buckets, no
bootstrap) for ``wmf-regression``, BLAS on one thread.
Figures (pairs/s, users/s) go into ``extra_info`` and are printed; nothing is asserted
about speed.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytestmark = pytest.mark.benchmark

N_USERS, N_TRAIN_SONGS, N_TEST_SONGS = 20_000, 1_000, 2_000
CHUNK_USERS = 1024


def _report(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


@pytest.fixture(scope="module")
def world():
    """(dataset, split, features): 20,000 users, 1,000 training + 2,000 cold songs with
    ~20 plays per user on each side; small random features (32 mels x 64 frames)."""
    from recbench.data import Dataset, Split
    from recbench.features import SongFeatures

    rng = np.random.default_rng(0)
    n_songs = N_TRAIN_SONGS + N_TEST_SONGS
    plays = 40 * N_USERS
    counts = sp.csr_matrix((np.ones(plays, np.float32),
                            (rng.integers(0, N_USERS, plays), rng.integers(0, n_songs, plays))),
                           shape=(N_USERS, n_songs))
    counts.data[:] = 1.0
    train_songs, test_songs = np.arange(N_TRAIN_SONGS), np.arange(N_TRAIN_SONGS, n_songs)
    on_train = np.zeros(n_songs, np.float32)
    on_train[train_songs] = 1
    train = sp.csr_matrix(counts @ sp.diags(on_train))
    train.eliminate_zeros()
    test = sp.csr_matrix(counts - train)
    test.eliminate_zeros()
    empty = sp.csr_matrix((N_USERS, n_songs), dtype=np.float32)
    test_users = np.flatnonzero(np.diff(test.indptr) > 0)
    ds = Dataset("bench-scoring", counts, np.arange(N_USERS).astype(str),
                 np.arange(n_songs).astype(str), synthetic=True)
    split = Split("bench", 0, "cold-item", train, empty, test, train_songs,
                  np.zeros(0, np.int64), test_songs, np.arange(N_USERS), test_users)
    arr = rng.normal(size=(n_songs, 64, 32)).astype(np.float16)
    feats = SongFeatures("logmel", arr, np.full(n_songs, 64), np.zeros(32, np.float32),
                         np.ones(32, np.float32), window=64)
    return ds, split, feats


def _wmf_regression(world):
    from recbench.registry import build_registry

    ds, _, _ = world
    model = build_registry().create("recommender", "wmf-regression")
    rng = np.random.default_rng(1)
    f = model.options["factors"]
    model.user_factors = rng.normal(size=(ds.n_users, f)).astype(np.float32)
    model.item_factors = rng.normal(size=(ds.n_songs, f)).astype(np.float32)
    return model


def _dcue(world):
    import torch

    from recbench.components import FitContext
    from recbench.registry import build_registry

    ds, split, feats = world
    reg = build_registry()
    model = reg.create("recommender", "dcue", max_epochs=1, steps_per_epoch=1,
                       backbone_params={"width": 0.125})
    threads = torch.get_num_threads()
    try:
        model.fit(FitContext(ds, split, seed=0, create=reg.create, features=lambda kind: feats))
    finally:
        torch.set_num_threads(threads)
    return model


MODELS = {"wmf-regression": _wmf_regression, "dcue": _dcue}


@pytest.mark.parametrize("threads", [1, None], ids=["1-thread", "all-cores"])
@pytest.mark.parametrize("name", list(MODELS))
def test_bench_score_all_cold_songs(benchmark, world, name, threads, capsys):
    """model.score over all users in the task's blocks of 1,024 users."""
    from threadpoolctl import threadpool_info, threadpool_limits

    _, split, _ = world
    model = MODELS[name](world)
    users = np.arange(N_USERS)
    songs = np.asarray(split.test_songs)

    def score_all():
        for start in range(0, len(users), CHUNK_USERS):
            block = np.asarray(model.score(users[start:start + CHUNK_USERS], songs))
        return block

    with threadpool_limits(threads, "blas"):
        blas_threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
        last = benchmark.pedantic(score_all, rounds=5, warmup_rounds=1, iterations=1)
    assert last.shape == (N_USERS % CHUNK_USERS or CHUNK_USERS, len(songs))
    assert np.isfinite(last).all()
    pairs = len(users) * len(songs)
    s = benchmark.stats.stats.min
    benchmark.extra_info.update(model=name, users=len(users), songs=len(songs),
                                chunk_users=CHUNK_USERS, blas_threads=blas_threads,
                                pairs_per_s=round(pairs / s), users_per_s=round(len(users) / s),
                                dtype=str(last.dtype))
    _report(capsys, f"scoring {name} {len(users):,} users x {len(songs):,} cold songs in blocks "
                    f"of {CHUNK_USERS}, {blas_threads} BLAS thread(s): {s:.3f} s, "
                    f"{pairs / s / 1e6:,.0f} M pairs/s ({len(users) / s:,.0f} users/s)")


QUICKSTART_METRICS = ("auc", "ndcg@10", "recall@50", "map@100", "coverage@10", "popularity@10")


@pytest.mark.parametrize("metrics", [("auc",), QUICKSTART_METRICS],
                         ids=["auc", "quickstart-metrics"])
def test_bench_task_evaluation(benchmark, world, metrics, capsys):
    """The recommendation task's whole evaluation of a fitted wmf-regression model: AUC
    alone, and the quickstart suite's six metrics (the block is ranked once for all)."""
    from threadpoolctl import threadpool_limits

    from recbench.components import CellContext, FitContext
    from recbench.registry import build_registry

    ds, split, _ = world
    reg = build_registry()
    model = _wmf_regression(world)
    task = reg.create("task", "recommendation")
    cols = []
    for col in metrics:
        name, _, k = col.partition("@")
        cols.append((col, reg.create("metric", name), int(k) if k else None))
    ctx = CellContext(dataset=ds, split=split, model=model, metrics=cols,
                      fit=FitContext(ds, split, seed=0), seed=0, bootstrap=0,
                      chunk_users=CHUNK_USERS)
    with threadpool_limits(1, "blas"):  # a cell's one-thread budget (see the module note)
        out = benchmark.pedantic(task.run, args=(ctx,), rounds=2, iterations=1)
    assert 0.45 < out.metrics["auc"] < 0.55  # random factors: chance level
    n_users = out.extra["n_users"]
    pairs = n_users * out.extra["n_candidates"]
    s = benchmark.stats.stats.min
    benchmark.extra_info.update(metrics=list(metrics), users=n_users,
                                songs=out.extra["n_candidates"], eval_pairs_per_s=round(pairs / s),
                                eval_users_per_s=round(n_users / s),
                                scoring_pairs_per_s=round(out.throughput["scoring_pairs_per_s"]))
    _report(capsys, f"recommendation task evaluation (wmf-regression, {'+'.join(metrics)} "
                    f"+ 3 popularity buckets, no bootstrap), {n_users:,} users x "
                    f"{out.extra['n_candidates']:,} songs: {s:.2f} s, {pairs / s / 1e6:.1f} M "
                    f"pairs/s ({n_users / s:,.0f} users/s); of which scoring "
                    f"{out.throughput['scoring_pairs_per_s'] / 1e6:,.0f} M pairs/s")
