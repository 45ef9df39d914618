"""Splits: determinism, fingerprints, no leakage, protocol-specific guarantees."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from recbench_builtin.datasets.tiny import TinyDataset
from recbench_builtin.splits import ColdItemSplit

from recbench.components import LoadContext
from recbench.errors import DataError


@pytest.fixture(scope="module")
def tiny():
    return TinyDataset().load(LoadContext(cache_dir="unused"))


def test_tiny_is_deterministic_and_shaped(tiny):
    again = TinyDataset().load(LoadContext(cache_dir="unused"))
    assert tiny.counts.shape == (60, 40)
    assert tiny.synthetic and tiny.audio is None
    assert again.fingerprint == tiny.fingerprint
    assert TinyDataset(seed=1).load(LoadContext("x")).fingerprint != tiny.fingerprint
    listeners = np.asarray((tiny.counts > 0).sum(axis=0)).ravel()
    assert listeners.min() >= 1 and np.diff(tiny.counts.indptr).min() >= 1
    assert listeners.max() >= 3 * np.median(listeners) / 2  # some popularity skew


def test_cold_item_shares_and_disjoint_songs(tiny):
    s = ColdItemSplit().split(tiny, seed=3)
    assert (len(s.train_songs), len(s.valid_songs), len(s.test_songs)) == (28, 4, 8)
    allsongs = np.concatenate([s.train_songs, s.valid_songs, s.test_songs])
    assert np.array_equal(np.sort(allsongs), np.arange(40))
    # test songs have no training interactions at all
    assert s.train[:, s.test_songs].nnz == 0 and s.train[:, s.valid_songs].nnz == 0
    assert s.protocol == "cold-item"
    assert np.array_equal(s.test_users, np.flatnonzero(np.diff(s.test.indptr)))
    assert np.array_equal(s.train_users, np.flatnonzero(np.diff(s.train.indptr)))
    assert (s.train + s.valid + s.test != tiny.counts).nnz == 0


# --------------------------------------------------------------------------- all splits

from recbench_builtin.splits import ColdUserSplit, WarmSplit

ALL = [ColdItemSplit, WarmSplit, ColdUserSplit]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_fingerprint_follows_options(tiny, cls):
    """(Disjoint parts that cover the data and seed determinism: the SplitterContract in
    tests/contracts.)"""
    a = cls().split(tiny, seed=11)
    other = cls(test_share=0.3).split(tiny, seed=11)
    assert other.fingerprint != a.fingerprint
    assert a.summary()["fingerprint"] == a.fingerprint


def test_warm_holds_out_known_songs_per_user(tiny):
    s = WarmSplit().split(tiny, seed=5)
    assert s.protocol == "warm"
    train_songs = set(np.flatnonzero(np.asarray(s.train.sum(axis=0)).ravel() > 0).tolist())
    held = set(s.valid.tocoo().col.tolist()) | set(s.test.tocoo().col.tolist())
    assert held <= train_songs
    assert np.array_equal(s.test_songs, np.array(sorted(train_songs)))
    # every user keeps training interactions; held-out share is about 30 %
    assert np.diff(s.train.indptr).min() >= 1
    held_share = (s.valid.nnz + s.test.nnz) / tiny.counts.nnz
    assert 0.2 < held_share < 0.35


def test_warm_moves_orphan_songs_to_train():
    # song 2 is played only by user 0 and user 1: held-out plays must not leave it cold
    counts = sp.csr_matrix(np.array([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
                                     [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], dtype=np.float32))
    from recbench.data import Dataset
    d = Dataset("hand", counts, np.array(["a", "b"]), np.array([str(i) for i in range(10)]))
    for seed in range(20):
        s = WarmSplit(valid_share=0.2, test_share=0.4).split(d, seed)
        assert set(s.test.tocoo().col.tolist()) <= set(s.train.tocoo().col.tolist())
        assert np.array_equal(s.test_songs, np.arange(10))


def test_cold_user_reveals_k(tiny):
    s = ColdUserSplit(revealed=2).split(tiny, seed=4)
    assert s.protocol == "cold-user"
    n_all = np.diff(tiny.counts.indptr)
    n_train = np.diff(s.train.indptr)
    held_users = np.flatnonzero(np.diff(s.valid.indptr) + np.diff(s.test.indptr) > 0)
    assert len(held_users) > 0
    assert np.all(n_train[held_users] == 2)
    # valid and test users are disjoint, ~10 % and ~20 % of users
    vu = set(np.flatnonzero(np.diff(s.valid.indptr)).tolist())
    assert not vu & set(s.test_users.tolist())
    assert len(s.test_users) <= 12 and len(vu) <= 6
    # training users keep everything
    train_only = np.setdiff1d(np.arange(60), held_users)
    assert np.all(n_train[train_only] == n_all[train_only])


def test_cold_user_zero_revealed_is_fully_cold(tiny):
    s = ColdUserSplit(revealed=0).split(tiny, seed=4)
    assert s.train[s.test_users].nnz == 0


def test_bad_shares_raise():
    from recbench.errors import ConfigError
    with pytest.raises(ConfigError, match="valid_share"):
        ColdItemSplit(valid_share=0.5, test_share=0.5)
    from recbench.data import Dataset
    d = Dataset("hand", sp.csr_matrix(np.ones((2, 2), dtype=np.float32)),
                np.array(["a", "b"]), np.array(["x", "y"]))
    with pytest.raises(DataError, match="too few"):
        ColdItemSplit().split(d, 0)


def test_authors_split_is_popularity_rank_mod_10():
    """Rank by total plays (ties by index); train = rank % 10 in 0..6, valid 7, test 8-9."""
    import scipy.sparse as sp

    from recbench.data import Dataset
    from recbench.registry import build_registry

    rng = np.random.default_rng(0)
    n_songs = 40
    plays_per_song = rng.permutation(n_songs) * 3 + 1  # distinct totals
    plays_per_song[[5, 9]] = 1000  # a tie: song 5 ranks before song 9
    m = np.zeros((4, n_songs), dtype=np.float32)
    for s, p in enumerate(plays_per_song):
        m[s % 4, s] = p
    ds = Dataset("t", sp.csr_matrix(m), np.array(list("abcd")),
                 np.array([str(i) for i in range(n_songs)]))
    split = build_registry().create("split", "authors").split(ds, 0)
    ranked = sorted(range(n_songs), key=lambda s: (-plays_per_song[s], s))
    assert ranked[:2] == [5, 9]
    want = {k: sorted(s for r, s in enumerate(ranked) if r % 10 in digits)
            for k, digits in (("train", range(7)), ("valid", [7]), ("test", [8, 9]))}
    assert split.train_songs.tolist() == want["train"]
    assert split.valid_songs.tolist() == want["valid"]
    assert split.test_songs.tolist() == want["test"]
    assert len(want["train"]) == 28 and len(want["test"]) == 8
    assert split.protocol == "cold-item" and split.name == "authors"
    # the dataset's own order instead of plays
    by_index = build_registry().create("split", "authors", order="dataset").split(ds, 3)
    assert by_index.test_songs.tolist() == [s for s in range(n_songs) if s % 10 >= 8]
    assert by_index.valid_songs.tolist() == [7, 17, 27, 37]
