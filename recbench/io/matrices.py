"""Sparse matrices built one way by every loader (the dataset fingerprint hashes them)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

def coo_to_csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
               shape: tuple[int, int]) -> tuple[sp.csr_matrix, int]:
    """CSR float32 matrix summing duplicate (row, col) entries; also returns the number
    of input entries merged into an earlier one."""
    m = sp.coo_matrix((np.asarray(values, dtype=np.float64),
                       (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                      shape=shape).tocsr()  # tocsr sums duplicates
    m.sum_duplicates()
    merged = len(values) - m.nnz
    m.eliminate_zeros()
    out = sp.csr_matrix((m.data.astype(np.float32), m.indices, m.indptr), shape=shape)
    out.sort_indices()
    return canonical_csr(out), merged


def canonical_csr(m: sp.csr_matrix) -> sp.csr_matrix:
    """A CSR matrix with int32 indices (when they fit) and float32 data, sorted indices.

    The dataset fingerprint hashes the raw index arrays, so every loader builds its
    matrices this same way.
    """
    m = sp.csr_matrix(m)
    idx_dtype = np.int32 if max(m.shape + (m.nnz,)) < 2**31 else np.int64
    out = sp.csr_matrix((m.data.astype(np.float32, copy=False),
                         m.indices.astype(idx_dtype, copy=False),
                         m.indptr.astype(idx_dtype, copy=False)), shape=m.shape)
    out.sort_indices()
    return out
