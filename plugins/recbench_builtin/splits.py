"""Built-in splits: `cold-item` (the paper's protocol), `warm` and `cold-user`.

Every split is deterministic under `split(dataset, seed)`; train, valid and test are
disjoint parts of the dataset's interactions whose union is all of them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import Splitter
from recbench.data import Dataset, Split
from recbench.errors import DataError
from recbench.params import Param


def _csr(m: sp.spmatrix) -> sp.csr_matrix:
    out = sp.csr_matrix(m, dtype=np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out


def restrict_columns(counts: sp.csr_matrix, songs: np.ndarray) -> sp.csr_matrix:
    """`counts` (users x songs CSR) with every column outside `songs` zeroed (same shape)."""
    keep = np.zeros(counts.shape[1], dtype=bool)
    keep[np.asarray(songs, dtype=np.int64)] = True
    m = counts.tocsr().copy()
    m.data = m.data * keep[m.indices]
    return _csr(m)


def restrict_rows(counts: sp.csr_matrix, users: np.ndarray) -> sp.csr_matrix:
    """`counts` (users x songs CSR) with every row outside `users` zeroed (same shape)."""
    keep = np.zeros(counts.shape[0], dtype=bool)
    keep[np.asarray(users, dtype=np.int64)] = True
    m = counts.tocsr().copy()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    m.data = m.data * keep[rows]
    return _csr(m)


def users_with_interactions(m: sp.csr_matrix) -> np.ndarray:
    """Sorted indices of the rows of `m` with at least one stored non-zero."""
    m = m.tocsr()
    return np.flatnonzero(np.diff(m.indptr) > 0).astype(np.int64)


def songs_with_interactions(m: sp.csr_matrix) -> np.ndarray:
    """Sorted indices of the columns of `m` with at least one stored non-zero."""
    m = m.tocsr()
    return np.unique(m.indices).astype(np.int64)


def _shares(n: int, valid_share: float, test_share: float, what: str) -> tuple[int, int]:
    if valid_share + test_share >= 1.0:
        raise DataError(f"split: valid_share + test_share must be < 1, got "
                        f"{valid_share} + {test_share}")
    n_test = int(round(n * test_share))
    n_valid = int(round(n * valid_share))
    if test_share > 0:
        n_test = max(n_test, 1)
    if valid_share > 0:
        n_valid = max(n_valid, 1)
    if n - n_test - n_valid < 1:
        raise DataError(f"split: {n} {what} are too few for valid_share={valid_share} "
                        f"and test_share={test_share}")
    return n_valid, n_test


_SHARES = (
    Param("valid_share", float, 0.1, "share held out for validation", min=0.0, max=0.9),
    Param("test_share", float, 0.2, "share held out for the reported numbers", min=0.0,
          max=0.9),
)


class ColdItemSplit(Splitter):
    """The paper's protocol: songs split at random into train / valid / test (70/10/20);
    valid and test songs have no training interactions at all."""

    name = "cold-item"
    description = "Songs split 70/10/20 by seed: test songs are cold (the paper's protocol)"
    protocol = "cold-item"
    params = _SHARES

    def split(self, dataset: Dataset, seed: int) -> Split:
        o = self.options
        n = dataset.n_songs
        n_valid, n_test = _shares(n, o["valid_share"], o["test_share"], "songs")
        order = np.random.default_rng(seed).permutation(n)
        test_songs = np.sort(order[:n_test])
        valid_songs = np.sort(order[n_test:n_test + n_valid])
        train_songs = np.sort(order[n_test + n_valid:])
        counts = dataset.counts.tocsr()
        train = restrict_columns(counts, train_songs)
        valid = restrict_columns(counts, valid_songs)
        test = restrict_columns(counts, test_songs)
        return Split(name=self.name, seed=int(seed), protocol=self.protocol,
                     train=train, valid=valid, test=test,
                     train_songs=train_songs.astype(np.int64),
                     valid_songs=valid_songs.astype(np.int64),
                     test_songs=test_songs.astype(np.int64),
                     train_users=users_with_interactions(train),
                     test_users=users_with_interactions(test),
                     params=dict(o))


@hookimpl
def recbench_register_splits(register):
    register(ColdItemSplit)
