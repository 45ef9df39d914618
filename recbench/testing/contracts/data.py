"""The contracts of splitters and dataset loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import DatasetLoader, LoadContext
from recbench import defaults
from recbench.testing import worlds

from .base import ComponentContract, PROTOCOLS


# --------------------------------------------------------------------------- split


class SplitterContract(ComponentContract):
    """A split of a small dataset is disjoint and covers every interaction, names a known
    protocol, keeps song index sets consistent with its matrices (cold-item: test songs
    have no training interaction), and is deterministic: the same seed gives the same
    fingerprint, another seed another one."""

    kind = "split"

    def make_dataset(self):
        return worlds.random_counts(seed=2, users=60, songs=50)

    @pytest.fixture(scope="class")
    @classmethod
    def dataset(cls):
        return cls().make_dataset()

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls, dataset):
        return cls().make_component().split(dataset, 7)

    def test_protocol(self, split):
        cls = self.component_class()
        assert cls.protocol in PROTOCOLS and split.protocol == cls.protocol

    def test_disjoint_and_covering(self, split, dataset):
        parts = [sp.csr_matrix(m) for m in (split.train, split.valid, split.test)]
        for m in parts:
            assert m.shape == dataset.counts.shape and m.dtype.kind == "f"
        assert parts[2].nnz > 0, "no test interactions"
        played = [(m > 0).astype(np.int64) for m in parts]
        assert (played[0] + played[1] + played[2]).max() <= 1, "parts overlap"
        total = (parts[0] + parts[1] + parts[2]) - dataset.counts
        assert abs(total).sum() == 0, "parts do not add up to the dataset"

    def test_song_and_user_sets(self, split):
        for name in ("train_songs", "valid_songs", "test_songs", "train_users", "test_users"):
            v = np.asarray(getattr(split, name))
            assert v.dtype.kind in "iu" and len(np.unique(v)) == len(v), name
        test_cols = np.unique(sp.csr_matrix(split.test).indices)
        assert np.isin(test_cols, split.test_songs).all()
        test_rows = np.flatnonzero(np.asarray((split.test > 0).sum(axis=1)).ravel())
        assert np.isin(test_rows, split.test_users).all()
        if split.protocol == defaults.COLD_ITEM:
            assert not np.intersect1d(split.train_songs, split.test_songs).size
            assert not (split.train[:, split.test_songs] > 0).nnz

    def test_deterministic_fingerprint(self, split, dataset):
        again = self.make_component().split(dataset, 7)
        assert again.fingerprint == split.fingerprint == split.fingerprint
        assert self.make_component().split(dataset, 8).fingerprint != split.fingerprint


# --------------------------------------------------------------------------- dataset


class DatasetLoaderContract(ComponentContract):
    """Loading validates, gives the same fingerprint twice, canonical CSR counts (sorted
    indices, no stored zeros, positive values), unique ids of the right lengths, audio and
    tags sized to the songs, the declared `synthetic` flag, and a JSON manifest whose
    counts of dropped or repaired input are non-negative integers.

    Override ``make_loader(tmp_path)`` for loaders that need files on disk.
    """

    kind = "dataset"

    def make_loader(self, tmp_path) -> DatasetLoader:
        return self.make_component()

    @pytest.fixture(scope="class")
    @classmethod
    def loaded(cls, tmp_path_factory):
        tmp = tmp_path_factory.mktemp("dataset-contract")
        loader = cls().make_loader(tmp)
        loader.validate(str(tmp))
        ctx = LoadContext(cache_dir=str(tmp / "cache"), suite_dir=str(tmp))
        return loader, loader.load(ctx), loader.load(ctx)

    def test_stable_fingerprint(self, loaded):
        _, a, b = loaded
        assert a.fingerprint == b.fingerprint

    def test_canonical_counts_and_ids(self, loaded):
        loader, ds, _ = loaded
        c = ds.counts
        assert sp.isspmatrix_csr(c) and c.has_sorted_indices
        assert (c.data > 0).all(), "store no zeros or negative counts"
        assert len(ds.user_ids) == ds.n_users and len(ds.song_ids) == ds.n_songs
        assert len(set(map(str, ds.user_ids))) == ds.n_users
        assert len(set(map(str, ds.song_ids))) == ds.n_songs
        assert ds.synthetic == type(loader).synthetic or ds.synthetic
        if ds.audio is not None:
            assert len(ds.audio) == ds.n_songs
        if ds.tags is not None:
            assert ds.tags.shape == (ds.n_songs, len(ds.tag_names))

    def test_manifest(self, loaded):
        _, ds, _ = loaded
        json.dumps(ds.manifest, default=str)

        def leaves(d: dict, path: str = ""):
            for key, value in d.items():
                if isinstance(value, dict):
                    yield from leaves(value, f"{path}{key}.")
                else:
                    yield f"{path}{key}", value

        words = ("malformed", "skipped", "dropped", "duplicate", "repaired", "bad")
        for key, value in leaves(ds.manifest):
            if any(w in key for w in words) and isinstance(value, (int, np.integer)) \
                    and not isinstance(value, bool):
                assert value >= 0, key
