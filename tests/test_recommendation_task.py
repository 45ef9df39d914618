"""The `recommendation` task's evaluation loop: oracle scores, exclusion of seen songs,
independence from the block size, and the popularity-bucket AUCs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import CellContext, FitContext
from recbench.data import Dataset, Split
from recbench.metrics import roc_auc_per_user
from recbench.registry import build_registry

METRICS = ["auc", "ndcg@10", "recall@5", "map@10", "coverage@3", "popularity@3"]


def _world(protocol="cold-item", n_users=40, n_songs=30, seed=0):
    rng = np.random.default_rng(seed)
    counts = sp.csr_matrix((rng.random((n_users, n_songs)) < 0.3).astype(np.float32))
    if protocol == "cold-item":
        train_songs, test_songs = np.arange(12), np.arange(12, n_songs)
        on_train = np.zeros(n_songs, np.float32)
        on_train[train_songs] = 1
        train = sp.csr_matrix(counts @ sp.diags(on_train))
        valid = sp.csr_matrix((n_users, n_songs), dtype=np.float32)
    else:  # warm: every song is a candidate; a user's train/valid songs must be excluded
        train_songs = test_songs = np.arange(n_songs)
        part = rng.random(counts.nnz)
        dense = counts.toarray()
        r, c = np.nonzero(dense)
        train = sp.csr_matrix((np.ones((part < 0.5).sum(), np.float32),
                               (r[part < 0.5], c[part < 0.5])), shape=counts.shape)
        valid = sp.csr_matrix((np.ones(((part >= 0.5) & (part < 0.6)).sum(), np.float32),
                               (r[(part >= 0.5) & (part < 0.6)],
                                c[(part >= 0.5) & (part < 0.6)])), shape=counts.shape)
    train.eliminate_zeros()
    test = sp.csr_matrix(counts - train - valid)
    test.eliminate_zeros()
    test_users = np.flatnonzero(np.asarray(test[:, test_songs].sum(axis=1)).ravel() > 0)
    ds = Dataset("task-test", counts, np.arange(n_users).astype(str),
                 np.arange(n_songs).astype(str), synthetic=True)
    split = Split("task-test", 0, protocol, train, valid, test, train_songs,
                  np.zeros(0, np.int64), test_songs, np.arange(n_users), test_users)
    return ds, split


class _Scorer:
    """A recommender stand-in: score(users, songs) from a function of the split."""

    name = "stand-in"

    def __init__(self, fn):
        self.fn = fn

    def score(self, users, songs):
        return self.fn(np.asarray(users), np.asarray(songs))


def _run(ds, split, model, metrics=METRICS, chunk_users=1024, bootstrap=0, **options):
    reg = build_registry()
    task = reg.create("task", "recommendation", **options)
    cols = []
    for col in metrics:
        name, _, k = col.partition("@")
        cols.append((col, reg.create("metric", name), int(k) if k else None))
    ctx = CellContext(dataset=ds, split=split, model=model, metrics=cols,
                      fit=FitContext(ds, split, seed=0), seed=0, bootstrap=bootstrap,
                      chunk_users=chunk_users)
    return task.run(ctx)


def _oracle(split):
    return lambda u, s: split.test[u][:, s].toarray().astype(np.float64)


@pytest.mark.parametrize("protocol", ["cold-item", "warm"])
def test_oracle_scorer_gets_auc_and_ndcg_of_one(protocol):
    ds, split = _world(protocol)
    out = _run(ds, split, _Scorer(_oracle(split)))
    assert out.metrics["auc"] == pytest.approx(1.0, abs=1e-12)
    assert out.metrics["ndcg@10"] == pytest.approx(1.0, abs=1e-12)
    assert out.metric_info["auc"]["n_users"] > 10


def test_seen_songs_are_excluded_per_user():
    """A scorer that puts the user's own train/valid songs first (above every held-out
    song) is not penalised: those songs are not candidates for that user."""
    ds, split = _world("warm")
    seen = (split.train + split.valid).tocsr()
    oracle = _oracle(split)

    def seen_first(u, s):
        return oracle(u, s) + 10.0 * (seen[u][:, s].toarray() > 0)

    plain = _run(ds, split, _Scorer(oracle))
    cheat = _run(ds, split, _Scorer(seen_first))
    assert seen.nnz > 50  # the case is not vacuous
    for col in ("auc", "ndcg@10", "recall@5", "map@10"):
        assert cheat.metrics[col] == pytest.approx(plain.metrics[col], abs=1e-12), col
    # and a scorer that puts them last is not rewarded either
    seen_last = _run(ds, split, _Scorer(lambda u, s: oracle(u, s) - 10.0 * (
        seen[u][:, s].toarray() > 0)))
    assert seen_last.metrics["auc"] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("protocol", ["cold-item", "warm"])
def test_block_size_does_not_change_any_number(protocol):
    ds, split = _world(protocol, n_users=60)
    rng = np.random.default_rng(5)
    fixed = rng.integers(0, 4, (ds.n_users, ds.n_songs)).astype(np.float64)  # heavy ties
    model = _Scorer(lambda u, s: fixed[u][:, s])
    outs = [_run(ds, split, model, chunk_users=c, bootstrap=50)
            for c in (1, 7, len(split.test_users))]
    for out in outs[1:]:
        assert out.metrics.keys() == outs[0].metrics.keys()
        for col in outs[0].metrics:
            assert out.metrics[col] == pytest.approx(outs[0].metrics[col], abs=1e-12), col
            np.testing.assert_allclose(out.metrics_ci[col], outs[0].metrics_ci[col],
                                       atol=1e-12)
        np.testing.assert_allclose(out.diagnostics["popularity_buckets"]["auc"],
                                   outs[0].diagnostics["popularity_buckets"]["auc"], atol=1e-12)
        for col, v in outs[0].per_user.items():
            np.testing.assert_allclose(out.per_user[col], v, atol=1e-12)


def _bucket_reference(ds, split, scores, n_buckets=3):
    """The bucket AUCs as defined: per bucket, roc_auc_per_user with the positives
    restricted to the bucket's songs and every negative candidate kept; mean over users."""
    users, songs = np.asarray(split.test_users), np.asarray(split.test_songs)
    listeners = np.asarray((ds.counts > 0).sum(axis=0)).ravel().astype(float)[songs]
    edges = np.quantile(listeners, np.linspace(0, 1, n_buckets + 1)[1:-1])
    bucket_of = np.searchsorted(edges, listeners, side="right")
    labels = split.test[users][:, songs].toarray() > 0
    mask = ~((split.train + split.valid)[users][:, songs].toarray() > 0)
    out = []
    for b in range(n_buckets):
        in_b = (bucket_of == b)[None, :]
        out.append(np.nanmean(roc_auc_per_user(scores, labels & in_b, mask & (~labels | in_b))))
    return out


@pytest.mark.parametrize("protocol", ["cold-item", "warm"])
def test_popularity_bucket_aucs_match_their_definition(protocol):
    ds, split = _world(protocol, n_users=50, seed=3)
    rng = np.random.default_rng(7)
    fixed = rng.integers(0, 5, (ds.n_users, ds.n_songs)).astype(np.float32)
    out = _run(ds, split, _Scorer(lambda u, s: fixed[u][:, s]), chunk_users=9)
    users, songs = np.asarray(split.test_users), np.asarray(split.test_songs)
    np.testing.assert_allclose(out.diagnostics["popularity_buckets"]["auc"],
                               _bucket_reference(ds, split, fixed[users][:, songs]),
                               atol=1e-12)


def test_popularity_bucket_aucs_hand_built():
    """Four cold songs with 1, 2, 3, 3 listeners -> buckets (terciles of listeners) 0, 1,
    2, 2. The one test user holds songs 0, 2, 3 out (song 1 is its negative); the model
    ranks song 2 first, then 3, 1, 0."""
    counts = sp.csr_matrix(np.array([
        # train song 4 (warm) keeps every user in training
        [1, 0, 1, 1, 1],
        [0, 1, 1, 1, 1],
        [0, 1, 1, 1, 1],
    ], dtype=np.float32))
    train = sp.csr_matrix(counts.multiply(np.array([[0, 0, 0, 0, 1]], dtype=np.float32)))
    test = sp.csr_matrix(counts - train)
    test.eliminate_zeros()
    ds = Dataset("hand", counts, np.array(["a", "b", "c"]), np.arange(5).astype(str),
                 synthetic=True)
    empty = sp.csr_matrix(counts.shape, dtype=np.float32)
    split = Split("hand", 0, "cold-item", train, empty, test, np.array([4]),
                  np.zeros(0, np.int64), np.arange(4), np.arange(3), np.array([0]))
    model = _Scorer(lambda u, s: np.array([[1.0, 2.0, 4.0, 3.0]])[:, s])
    out = _run(ds, split, model, metrics=["auc"])
    pb = out.diagnostics["popularity_buckets"]
    assert pb["n_songs"] == [1, 1, 2]
    # bucket 0: song 0 (scored 1) below the negative (2) -> 0; bucket 2: songs 2 and 3
    # (4, 3) above it -> 1; bucket 1 has no positive -> NaN; overall 2 of 3 pairs
    assert pb["auc"][0] == 0.0 and pb["auc"][2] == 1.0
    assert np.isnan(pb["auc"][1])
    assert out.metrics["auc"] == pytest.approx(2 / 3)
