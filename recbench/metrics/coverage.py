"""Catalogue coverage: per-user top-K membership rows and the expected coverage over users
(with user multiplicities, for the bootstrap)."""

from __future__ import annotations

import numpy as np

from .blocks import DEFAULT_CHUNK
from .topk import _at_k

def coverage_rows(scores, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Per-user top-K membership, the input of :func:`expected_coverage`: (U, 3 + W) float32.

    Row u is ``[n_items, slots, ±n_tied, code_1, ..., code_W]`` (NaN padding): code
    ``0 <= i < n_items`` = song i is in the user's top K whatever the order of ties; code
    ``-(i + 1)`` = song i belongs to the tie group straddling the cutoff, of which `slots`
    of its `n_tied` songs fill the list, so it is in the top K with probability
    ``slots / n_tied``. When that group holds most songs, the row lists its complement
    instead: the third entry is ``-n_tied`` and code ``n_items + i`` = song i is neither
    certain nor tied (every unlisted song is tied). Rows of users without a candidate are
    all NaN. (Exact in float32 up to 2**23 songs.) W is about K plus the smaller of the
    tie group and its complement.
    """
    s = np.asarray(scores)
    return _at_k("coverage_rows", s, np.zeros(s.shape, dtype=bool), k, mask, chunk)


_COVERAGE_CACHE: tuple = (None, None)  # (rows object, its parts): the bootstrap reuses them


def _coverage_parts(v: np.ndarray):
    """(n_items, hit (U, I) CSR of certain songs, miss (U, I) CSR of log(1 - p) of tied
    songs, whether miss is dense enough for BLAS) of coverage rows; None if no user."""
    global _COVERAGE_CACHE
    cached_rows, cached_parts = _COVERAGE_CACHE
    if cached_rows is v:
        return cached_parts
    import scipy.sparse as sp

    n_users = len(v)
    if v.ndim != 2 or not v.size or np.isnan(v[:, 0]).all():
        return None
    head = v[:, :3].astype(np.float64)
    n_items = int(np.nanmax(head[:, 0]))
    codes = v[:, 3:]
    r, col = np.nonzero(np.isfinite(codes))
    code = codes[r, col].astype(np.int64)
    sure = (code >= 0) & (code < n_items)
    comp = head[:, 2] < 0  # rows listing the complement of their tie group
    with np.errstate(divide="ignore", invalid="ignore"):
        # log(1 - p) of each user's tied songs
        log_miss = np.where(np.isnan(head[:, 0]), 0.0,
                            np.log1p(-(head[:, 1] / np.abs(head[:, 2]))))
    hit = sp.csr_matrix((np.ones(int(sure.sum())), (r[sure], code[sure])),
                        shape=(n_users, n_items))
    # listed tie groups add log(1 - p) to their songs; complement rows add it to every song
    # (`base`) and take it back from their listed (certain or untied) songs
    listed = code < 0
    back = comp[r] & ~listed
    miss = sp.csr_matrix((np.concatenate([log_miss[r[listed]], -log_miss[r[back]]]),
                          (np.concatenate([r[listed], r[back]]),
                           np.concatenate([-code[listed] - 1, code[back] % n_items]))),
                         shape=(n_users, n_items))
    base = np.where(comp, log_miss, 0.0)
    parts = (n_items, hit, miss, base, miss.nnz > 0.05 * n_users * n_items)
    _COVERAGE_CACHE = (v, parts)
    return parts


def expected_coverage(rows, counts=None) -> np.ndarray | float:
    """Expected catalogue coverage: the expected share of the candidate songs that appear in
    at least one user's top K when every user's ties are ordered uniformly at random,
    independently across users::

        E[coverage] = 1/I * sum over songs i of (1 - prod over users u of (1 - p_ui))

    with p_ui the probability that song i is in user u's top K (1 above the cutoff,
    slots / tied at it, 0 below). `rows`: :func:`coverage_rows` of the users. `counts`
    (B, U): user multiplicities (bootstrap resamples, a user drawn c times contributes
    (1 - p_ui)^c); returns (B,). Without `counts`, each user once; returns a float. NaN
    when no user has a candidate.
    """
    v = np.asarray(rows)
    single = counts is None
    n_users = len(v)
    counts = np.ones((1, n_users)) if single else np.asarray(counts, dtype=np.float64)
    parts = _coverage_parts(v)
    if parts is None:
        out = np.full(len(counts), np.nan)
        return float(out[0]) if single else out
    n_items, hit, miss, base, dense = parts
    covered = np.asarray(hit.T.dot(counts.T).T) > 0  # (B, I): in someone's list for sure
    if dense:  # many tied songs listed: BLAS over slabs of users
        log_none = np.zeros((len(counts), n_items))
        step = max(1, 4_000_000 // max(n_items, 1))
        for a in range(0, n_users, step):
            log_none += counts[:, a:a + step] @ miss[a:a + step].toarray()
    else:
        log_none = np.asarray(miss.T.dot(counts.T).T)  # log P(no drawn user lists the song)
    if base.any():
        log_none += (counts @ base)[:, None]
    p_cov = np.where(covered, 1.0, -np.expm1(log_none))
    out = p_cov.sum(axis=1) / n_items
    return float(out[0]) if single else out


def catalogue_coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the `n_items` candidate songs that appear in at least one row of `top`.

    `top` (U, K) holds column positions (as :func:`top_k` returns; negatives or NaN = none).
    """
    t = np.asarray(top, dtype=np.float64).ravel()
    t = t[np.isfinite(t) & (t >= 0)].astype(np.int64)
    if n_items <= 0:
        return float("nan")
    return float(np.unique(t).size / n_items)
