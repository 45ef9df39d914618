"""Per-user ranking metrics over blocks of (users x candidate songs), exact and vectorised.

Every function takes ``scores`` (U, I) (any real dtype), ``labels`` (U, I) (truthy =
held-out positive) and ``mask`` (U, I) bool (True = the pair is a candidate; None = all
pairs are candidates), and returns one value per user (NaN where undefined). Positives
outside the mask are ignored. Work is done in chunks of users so memory stays bounded
whatever U is. NaN scores among candidates are a model bug and raise DataError.

Ties. Every ranking metric (AUC and the @K metrics) reports its exact expectation when
tied scores are ordered uniformly at random: AUC counts a tied (positive, negative) pair
as 1/2, and a tie group straddling the cutoff K contributes the expected share of its
positives (for NDCG this is exactly scikit-learn's tie averaging, ``ndcg_score(...,
ignore_ties=False)``). A constant-score model therefore gets the chance value whatever the
order of the songs. Only :func:`top_k` (concrete song lists, used by catalogue coverage)
breaks ties deterministically: among equal scores the lower song position comes first.

Excluded users. A user without positive candidates gets NaN from every positive-based
metric (and AUC also needs one negative); :func:`n_excluded` counts them.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DataError

__all__ = ["roc_auc_per_user", "ndcg_at_k", "recall_at_k", "precision_at_k",
           "average_precision_at_k", "hits_at_k", "mean_popularity_at_k", "top_k",
           "catalogue_coverage", "n_excluded"]

DEFAULT_CHUNK = 256  # users per chunk: keeps a chunk's sort and haystack in cache

_MASKED_KEY = np.uint32(0xFFFFFFFF)  # above the key of +inf (0xFF800000): masked sort last
_SIGN = np.uint32(0x80000000)
# dtypes whose every value is exactly a float32
_EXACT_IN_F32 = {np.dtype(t) for t in (np.bool_, np.int8, np.uint8, np.int16, np.uint16,
                                       np.float16, np.float32)}


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else a  # scipy.sparse labels or masks


def _as_block(scores, labels, mask):
    s = np.asarray(_dense(scores))
    y = np.asarray(_dense(labels))
    if s.ndim != 2 or y.shape != s.shape:
        raise DataError(f"scores and labels must be 2-D arrays of the same shape (users, songs); "
                        f"got {s.shape} and {y.shape}")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == np.bool_) or np.iscomplexobj(s):
        raise DataError(f"scores must be real numbers, got dtype {s.dtype}")
    m = None
    if mask is not None:
        m = np.asarray(_dense(mask), dtype=bool)
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
    f = s.astype(np.float32)
    if s.dtype in _EXACT_IN_F32:
        exact = True
    elif np.issubdtype(s.dtype, np.integer):  # integers up to 2**24 are exact floats
        exact = not s.size or (s.min() >= -2**24 and s.max() <= 2**24)
    else:
        exact = np.array_equal(f, s, equal_nan=True)  # NaN only where masked (checked)
    if not exact:
        _, inv = np.unique(s, return_inverse=True)
        # ranks start at 1 so that their complement never equals the masked key
        return (inv.reshape(s.shape) + 1).astype(np.uint32)
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
    flat = np.flatnonzero(pos)  # much faster than a 2-D np.nonzero
    shift = np.uint64(32)
    # positives' keys, globally sorted (row-major, then key): searchsorted then walks the
    # haystack forward and stays in cache
    needles = np.bitwise_or(keys.ravel()[flat], (flat // n).astype(np.uint64) << shift,
                            dtype=np.uint64)
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


# --------------------------------------------------------------------------- top-K metrics


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"the cutoff K must be a positive integer, got {k!r}")
    return int(k)


def _desc_keys(s: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    """uint32 keys, smaller = better score; masked pairs get the largest key (rank last)."""
    dk = ~_order_keys(s)  # candidate keys <= 0xFF800000 (or 0xFFFFFFFE on the rank path)
    if m is not None:
        dk[~m] = _MASKED_KEY
    return dk


def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _topk_chunk(s: np.ndarray, y: np.ndarray, m: np.ndarray | None, k: int,
                want: tuple[str, ...], popularity: np.ndarray | None = None) -> dict:
    """The @K quantities of a chunk of users, as expectations over random tie orders.

    Positions 1..L (L = min(K, candidates)) are filled by whole tie groups (in score order)
    and, at the cutoff, by part of the threshold group G (size m, p positives). A position
    inside a group of size m with p positives holds a positive with probability q = p/m; for
    average precision E[rel_i * hits_upto_i] = q * (H + 1 + (j-1)(p-1)/(m-1)) where H counts
    the positives of earlier groups and j is the slot within the group (hypergeometric).
    """
    c, n = s.shape
    _check_nan(s, m)
    dk = _desc_keys(s, m)
    pos = y.astype(bool, copy=True)
    if m is not None:
        pos &= m
        n_cand = m.sum(axis=1)
    else:
        n_cand = np.full(c, n)
    n_pos = pos.sum(axis=1)
    kk = min(k, n)
    rows = np.arange(c)
    idx = np.argpartition(dk, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (c, 1))
    top = np.take_along_axis(dk, idx, axis=1)
    order = np.argsort(top, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    top = np.take_along_axis(top, order, axis=1)
    n_list = np.minimum(n_cand, kk)  # L: list positions that hold candidates
    t = top[rows, np.maximum(n_list - 1, 0)]  # key of the L-th best candidate (the cutoff group)
    tied = dk == t[:, None]
    n_tied = tied.sum(axis=1)
    p_tied = (tied & pos).sum(axis=1)
    n_above = (top < t[:, None]).sum(axis=1)  # every key below t lies in the list
    slots = n_list - n_above  # positions of the cutoff group inside the list

    out: dict = {"n_pos": n_pos, "n_cand": n_cand, "n_list": n_list}
    empty = n_list == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(empty, 0.0, slots / np.maximum(n_tied, 1))  # expected share of G taken
    if "hits" in want:
        p_above = (np.take_along_axis(pos, idx, axis=1) & (top < t[:, None])).sum(axis=1)
        out["hits"] = np.where(empty, 0.0, p_above + p_tied * share)
    if "popularity" in want:
        pop = np.asarray(popularity, dtype=np.float64)
        above_sum = np.where(top < t[:, None], pop[idx], 0.0).sum(axis=1)
        tied_sum = np.where(tied, pop[None, :], 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["popularity"] = (above_sum + tied_sum * share) / n_list
    if "dcg" in want or "ap" in want:
        pos_i = np.arange(kk)
        lab = np.take_along_axis(pos, idx, axis=1).astype(np.int64)
        new = np.ones((c, kk), dtype=bool)
        np.not_equal(top[:, 1:], top[:, :-1], out=new[:, 1:])
        last = np.ones((c, kk), dtype=bool)
        last[:, :-1] = new[:, 1:]
        start = np.maximum.accumulate(np.where(new, pos_i, 0), axis=1)
        end = np.minimum.accumulate(np.where(last, pos_i, kk)[:, ::-1], axis=1)[:, ::-1]
        cum = np.cumsum(lab, axis=1)
        before = np.take_along_axis(cum - lab, start, axis=1)  # positives of earlier groups
        size = (end - start + 1).astype(np.float64)
        npg = (np.take_along_axis(cum, end, axis=1) - before).astype(np.float64)
        in_cut = top == t[:, None]  # the cutoff group: use its full-row size and positives
        size = np.where(in_cut, n_tied[:, None], size)
        npg = np.where(in_cut, p_tied[:, None], npg)
        valid = pos_i[None, :] < n_list[:, None]
        q = np.where(valid, npg / size, 0.0)
        if "dcg" in want:
            out["dcg"] = q @ _discounts(kk)
        if "ap" in want:
            j = (pos_i[None, :] - start).astype(np.float64)  # slot within group, 0-based
            with np.errstate(divide="ignore", invalid="ignore"):
                extra = np.where(size > 1, j * (npg - 1) / (size - 1), 0.0)
            out["ap_sum"] = (q * (before + 1 + extra)) @ (1.0 / (pos_i + 1.0))
    return out


def _topk_metric(scores, labels, mask, k, chunk, want, popularity=None) -> dict:
    s, y, m = _as_block(scores, labels, mask)
    k = _check_k(k)
    if popularity is not None:
        popularity = np.asarray(popularity, dtype=np.float64).ravel()
        if popularity.shape != (s.shape[1],):
            raise DataError(f"popularity must have one value per candidate song "
                            f"({s.shape[1]}), got shape {popularity.shape}")
    if 0 in s.shape:  # no users or no candidate songs: every user is excluded
        zeros = np.zeros(s.shape[0], dtype=np.int64)
        out = {key: zeros.astype(np.float64) for key in ("hits", "popularity", "dcg", "ap_sum")}
        return {"n_pos": zeros, "n_cand": zeros, "n_list": zeros, **out}
    parts = [_topk_chunk(s[a:b], y[a:b], None if m is None else m[a:b], k, want, popularity)
             for a, b in _chunks(s.shape[0], chunk)]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _undefined_to_nan(value: np.ndarray, bad: np.ndarray) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    value[bad] = np.nan
    return value


def hits_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Expected number of positives among each user's top-K candidates: (U,) float64.

    NaN for users without a positive candidate.
    """
    r = _topk_metric(scores, labels, mask, k, chunk, ("hits",))
    return _undefined_to_nan(r["hits"], r["n_pos"] == 0)


def precision_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK
                   ) -> np.ndarray:
    """Precision@K = hits in the top K / K (K even when a user has fewer candidates): (U,).

    NaN for users without a positive candidate.
    """
    k = _check_k(k)
    r = _topk_metric(scores, labels, mask, k, chunk, ("hits",))
    return _undefined_to_nan(r["hits"] / k, r["n_pos"] == 0)


def recall_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Recall@K = hits in the top K / the user's number of positive candidates: (U,).

    (Not truncated: a user with more than K positives cannot reach 1.) NaN for users without
    a positive candidate.
    """
    r = _topk_metric(scores, labels, mask, k, chunk, ("hits",))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_to_nan(r["hits"] / r["n_pos"], r["n_pos"] == 0)


def ndcg_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """NDCG@K with binary gains and 1/log2(rank+1) discounts: (U,) float64.

    DCG@K over the ranked candidates divided by the ideal DCG@K (all positives first);
    ties averaged as ``sklearn.metrics.ndcg_score(k=K, ignore_ties=False)``. NaN for users
    without a positive candidate (scikit-learn returns 0 there).
    """
    k = _check_k(k)
    r = _topk_metric(scores, labels, mask, k, chunk, ("dcg",))
    n_ideal = np.minimum(r["n_pos"], k)
    ideal = np.concatenate([[0.0], np.cumsum(_discounts(int(n_ideal.max(initial=0))))])
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_to_nan(r["dcg"] / ideal[n_ideal], r["n_pos"] == 0)


def average_precision_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK
                           ) -> np.ndarray:
    """AP@K = sum over ranks i <= K of precision@i * rel_i, / min(K, n_pos): (U,) float64.

    The truncated average precision of the Million Song Dataset Challenge (McFee et al.
    2012); its mean over users is mAP@K. NaN for users without a positive candidate.
    """
    k = _check_k(k)
    r = _topk_metric(scores, labels, mask, k, chunk, ("ap",))
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_to_nan(r["ap_sum"] / np.minimum(r["n_pos"], k), r["n_pos"] == 0)


def mean_popularity_at_k(scores, popularity, k: int, mask=None, *,
                         chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Mean popularity of each user's top-K candidates (L = min(K, candidates) songs): (U,).

    `popularity` (I,) is any per-song figure (e.g. listener counts). NaN for users without
    a candidate.
    """
    s = np.asarray(scores)
    r = _topk_metric(s, np.zeros(s.shape, dtype=bool), mask, k, chunk, ("popularity",),
                     popularity=popularity)
    return _undefined_to_nan(r["popularity"], r["n_list"] == 0)


def top_k(scores, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Column positions of each user's K best candidates, best first: (U, min(K, I)) int64.

    Deterministic: among equal scores the lower column comes first. Rows with fewer than K
    candidates are padded with -1.
    """
    s = np.asarray(scores)
    s, _, m = _as_block(s, np.zeros(s.shape, dtype=bool), mask)
    k = _check_k(k)
    n_users, n = s.shape
    kk = min(k, n)
    out = np.full((n_users, kk), -1, dtype=np.int64)
    if kk == 0:
        return out
    col = np.arange(n, dtype=np.uint64)
    shift = np.uint64(32)
    for a, b in _chunks(n_users, chunk):
        mm = None if m is None else m[a:b]
        _check_nan(s[a:b], mm)
        # the column in the low bits makes every key unique: a total, deterministic order
        packed = np.bitwise_or(_desc_keys(s[a:b], mm).astype(np.uint64) << shift, col)
        if kk < n:
            packed = np.partition(packed, kk - 1, axis=1)[:, :kk]
        packed.sort(axis=1)
        ids = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
        ids[(packed >> shift) == np.uint64(_MASKED_KEY)] = -1
        out[a:b] = ids
    return out


def catalogue_coverage(top: np.ndarray, n_items: int) -> float:
    """Share of the `n_items` candidate songs that appear in at least one row of `top`.

    `top` (U, K) holds column positions (as :func:`top_k` returns; negatives or NaN = none).
    """
    t = np.asarray(top, dtype=np.float64).ravel()
    t = t[np.isfinite(t) & (t >= 0)].astype(np.int64)
    if n_items <= 0:
        return float("nan")
    return float(np.unique(t).size / n_items)
