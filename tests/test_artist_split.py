"""cold-artist split: artists (not songs) held out, every song with its artist."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.data import Dataset
from recbench.errors import ConfigError, DataError
from recbench_builtin.tasks.artist_split import ColdArtistSplit


def _dataset(artist):
    n = len(artist)
    rng = np.random.default_rng(0)
    counts = sp.csr_matrix((rng.random((30, n)) < 0.3).astype(np.float32))
    ds = Dataset("artists", counts, [f"u{i}" for i in range(30)], [f"s{i}" for i in range(n)],
                 synthetic=True, song_categories={"artist": np.asarray(artist)})
    return ds


def test_artists_are_disjoint_and_songs_follow_them():
    artist = np.r_[np.repeat(np.arange(20), 3), [-1, -1]]  # 20 artists of 3 songs, 2 without
    ds = _dataset(artist)
    s = ColdArtistSplit(valid_share=0.1, test_share=0.25).split(ds, seed=3)
    parts = [s.train_songs, s.valid_songs, s.test_songs]
    assert sorted(np.concatenate(parts).tolist()) == list(range(62))
    owners = [set(artist[p][artist[p] >= 0].tolist()) for p in parts]
    assert [len(o) for o in owners] == [13, 2, 5]  # round(20 * 0.1), round(20 * 0.25)
    assert not (owners[0] & owners[2]) and not (owners[0] & owners[1])
    assert [len(p) for p in parts] == [13 * 3 + 2, 2 * 3, 5 * 3]  # songs without artist: train
    assert s.test[:, s.train_songs].nnz == 0 and s.train[:, s.test_songs].nnz == 0
    assert s.train.nnz + s.valid.nnz + s.test.nnz == ds.counts.nnz
    again = ColdArtistSplit(valid_share=0.1, test_share=0.25).split(ds, seed=3)
    np.testing.assert_array_equal(again.test_songs, s.test_songs)
    other = ColdArtistSplit(valid_share=0.1, test_share=0.25).split(ds, seed=4)
    assert set(other.test_songs.tolist()) != set(s.test_songs.tolist())


def test_needs_the_artist_category_and_a_training_part():
    ds = _dataset(np.arange(10))
    ds.song_categories = {}
    with pytest.raises(DataError, match="no song category 'artist'"):
        ColdArtistSplit().split(ds, seed=0)
    with pytest.raises(ConfigError, match="valid_share \\+ test_share must be < 1"):
        ColdArtistSplit(valid_share=0.5, test_share=0.5)
