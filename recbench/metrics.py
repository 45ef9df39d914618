"""Per-user ranking metrics over blocks of (users x candidate songs), exact and vectorised.

Every function takes ``scores`` (U, I) (any real dtype), ``labels`` (U, I) (truthy =
held-out positive) and ``mask`` (U, I) bool (True = the pair is a candidate; None = all
pairs are candidates), and returns one value per user (NaN where undefined). Positives
outside the mask are ignored. Work is done in chunks of users so memory stays bounded
whatever U is. NaN scores among candidates are a model bug and raise DataError.
"""

from __future__ import annotations

import numpy as np

from .errors import DataError

__all__ = ["roc_auc_per_user", "n_excluded"]

DEFAULT_CHUNK = 256  # users per chunk: keeps a chunk's sort and haystack in cache

_MASKED_KEY = np.uint32(0xFFFFFFFF)  # above the key of +inf (0xFF800000): masked sort last
_SIGN = np.uint32(0x80000000)
# dtypes whose every value is exactly a float32
_EXACT_IN_F32 = {np.dtype(t) for t in (np.bool_, np.int8, np.uint8, np.int16, np.uint16,
                                       np.float16, np.float32)}


def _as_block(scores, labels, mask):
    s = np.asarray(scores)
    y = np.asarray(labels)
    if s.ndim != 2 or y.shape != s.shape:
        raise DataError(f"scores and labels must be 2-D arrays of the same shape (users, songs); "
                        f"got {s.shape} and {y.shape}")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == np.bool_) or np.iscomplexobj(s):
        raise DataError(f"scores must be real numbers, got dtype {s.dtype}")
    m = None
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != s.shape:
            raise DataError(f"mask must have the shape of scores {s.shape}, got {m.shape}")
    return s, y, m


def _chunks(n_rows: int, chunk: int):
    chunk = max(1, int(chunk))
    for a in range(0, n_rows, chunk):
        yield a, min(n_rows, a + chunk)


def _check_nan(s: np.ndarray, m: np.ndarray | None) -> None:
    if np.issubdtype(s.dtype, np.floating):
        bad = np.isnan(s)
        if m is not None:
            bad &= m
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(f"scores contain NaN for {int(bad.sum())} candidate pair(s) "
                            f"(first at block row {r}, column {c}); the model must score every "
                            "candidate")


def _order_keys(s: np.ndarray) -> np.ndarray:
    """uint32 keys with the order and ties of the scores `s` (2-D, no NaN), exactly.

    float32-exact inputs map bit-wise (IEEE order trick); others (float64, int64…) map to
    their dense rank within the block, which preserves order and ties exactly.
    """
    if s.dtype in _EXACT_IN_F32:
        f = s.astype(np.float32)
    else:
        f = s.astype(np.float32)
        if not np.array_equal(f, s):
            _, inv = np.unique(s, return_inverse=True)
            return inv.reshape(s.shape).astype(np.uint32)
    f = f + np.float32(0.0)  # -0.0 -> +0.0 so that the two zeros tie
    b = f.view(np.uint32)
    # negative floats: flip all bits; positive: set the sign bit -> unsigned order = float order
    flip = (b.view(np.int32) >> 31).view(np.uint32) | _SIGN
    return b ^ flip


def roc_auc_per_user(scores, labels, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Exact ROC AUC of each user's candidates: (U,) float64.

    AUC = P(score of a positive > score of a negative) + 1/2 P(tie), i.e. the
    Mann-Whitney U statistic with average ranks over the user's candidate songs, divided
    by n_pos * n_neg (identical to ``sklearn.metrics.roc_auc_score`` on the row). NaN for
    users with no positive or no negative candidate.

    Method: per chunk of users, sort order-preserving uint32 keys of each row, lay the rows
    end to end as uint64 ``row << 32 | key`` (a globally sorted haystack), and find each
    positive's tie range with one ``searchsorted`` (left and right) over the sorted
    positives' keys. Masked pairs get the largest key so they sort after every candidate.
    """
    s, y, m = _as_block(scores, labels, mask)
    n_users, n_items = s.shape
    out = np.full(n_users, np.nan)
    for a, b in _chunks(n_users, chunk):
        out[a:b] = _auc_chunk(s[a:b], y[a:b], None if m is None else m[a:b])
    return out


def _auc_chunk(s: np.ndarray, y: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    c, n = s.shape
    _check_nan(s, m)
    pos = y.astype(bool, copy=True)
    keys = _order_keys(s)
    if m is not None:
        pos &= m
        keys = np.where(m, keys, _MASKED_KEY)
        n_cand = m.sum(axis=1)
    else:
        n_cand = np.full(c, n)
    r, j = np.nonzero(pos)
    shift = np.uint64(32)
    # positives' keys, globally sorted (row-major, then key): searchsorted then walks the
    # haystack forward and stays in cache
    needles = np.bitwise_or(keys[r, j], r.astype(np.uint64) << shift, dtype=np.uint64)
    needles.sort()
    keys.sort(axis=1)
    row_off = (np.arange(c, dtype=np.uint64) << shift)[:, None]
    hay = np.bitwise_or(keys, row_off, dtype=np.uint64).ravel()
    lo = np.searchsorted(hay, needles, side="left")
    hi = np.searchsorted(hay, needles, side="right")
    rows = (needles >> shift).astype(np.intp)
    base = rows * n
    # twice the average 1-based rank of each positive among its row's candidates
    two_rank = (lo - base) + (hi - base) + 1
    n_pos = np.bincount(rows, minlength=c)
    two_rank_sum = np.bincount(rows, weights=two_rank, minlength=c)  # exact: small integers
    n_neg = n_cand - n_pos
    two_u = two_rank_sum - n_pos * (n_pos + 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = two_u / (2.0 * n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def n_excluded(values: np.ndarray) -> int:
    """Number of users whose per-user value is undefined (NaN in the first column)."""
    v = np.asarray(values, dtype=float)
    if v.ndim > 1:
        v = v.reshape(len(v), -1)[:, 0]
    return int(np.isnan(v).sum())
