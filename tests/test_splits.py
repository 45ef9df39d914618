"""Splits: determinism, fingerprints, no leakage, protocol-specific guarantees."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import LoadContext
from recbench.errors import DataError
from recbench_builtin.datasets.tiny import TinyDataset
from recbench_builtin.splits import ColdItemSplit


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
