"""The @K metrics (hits, precision, recall, NDCG, AP, mean popularity) as expectations over
random tie orders, the per-chunk part of coverage rows, and concrete top-K lists."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .blocks import (_MASKED_KEY, DEFAULT_CHUNK, _as_block, _check_k, _check_nan, _chunks,
                     _desc_keys, stack_rows)
from .chunk import _Chunk

def _discounts(n: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _topk_chunk(ch: "_Chunk", k: int, want: tuple[str, ...],
                popularity: np.ndarray | None = None) -> dict:
    """The @K quantities of a chunk of users, as expectations over random tie orders.

    Positions 1..L (L = min(K, candidates)) are filled by whole tie groups (in score order)
    and, at the cutoff, by part of the threshold group G (size m, p positives). A position
    inside a group of size m with p positives holds a positive with probability q = p/m; for
    average precision E[rel_i * hits_upto_i] = q * (H + 1 + (j-1)(p-1)/(m-1)) where H counts
    the positives of earlier groups and j is the slot within the group (hypergeometric).
    """
    c, n = ch.shape
    n_cand, n_pos = ch.n_cand, ch.n_pos
    kk = min(k, n)
    top, idx, lab, n_list, t, tied, n_tied, p_tied, above, slots = ch.cutoff(kk)

    out: dict = {"n_pos": n_pos, "n_cand": n_cand, "n_list": n_list}
    if "coverage" in want:
        out["coverage"] = _coverage_rows(n, top, idx, t, tied, n_tied, slots, n_list)
    empty = n_list == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(empty, 0.0, slots / np.maximum(n_tied, 1))  # expected share of G taken
    if "hits" in want:
        p_above = np.count_nonzero(lab & above, axis=1)
        out["hits"] = np.where(empty, 0.0, p_above + p_tied * share)
    if "popularity" in want:
        pop = np.asarray(popularity, dtype=np.float64)
        pop_top = pop[idx]
        above_sum = np.where(above, pop_top, 0.0).sum(axis=1)
        in_top = top == t[:, None]
        tied_sum = np.where(in_top, pop_top, 0.0).sum(axis=1)
        # rows whose cutoff group reaches beyond the selected pairs: sum it over the row
        wide = np.flatnonzero(np.count_nonzero(in_top, axis=1) < n_tied)
        if wide.size:
            tied_sum[wide] = np.where(tied[wide], pop[None, :], 0.0).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["popularity"] = (above_sum + tied_sum * share) / n_list
    if "dcg" in want or "ap" in want:
        pos_i = np.arange(kk)
        lab = lab.astype(np.int64)
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
        out["coverage"] = np.full((s.shape[0], 3), np.nan, dtype=np.float32)
        return {"n_pos": zeros, "n_cand": zeros, "n_list": zeros, **out}
    parts = [_topk_chunk(_Chunk(s[a:b], y[a:b], None if m is None else m[a:b]), k, want,
                         popularity) for a, b in _chunks(s.shape[0], chunk)]
    return _join(parts)


def _join(parts: list[dict]) -> dict:
    return {key: (stack_rows if key == "coverage" else np.concatenate)([p[key] for p in parts])
            for key in parts[0]}


def _undefined_to_nan(value: np.ndarray, bad: np.ndarray) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    value[bad] = np.nan
    return value


# How each @K metric finishes from the quantities of :func:`_topk_chunk`: (what it needs,
# finish(r, k) -> per-user values). Shared by the functions below and :class:`Ranking`.


def _fin_hits(r, k):
    return _undefined_to_nan(r["hits"], r["n_pos"] == 0)


def _fin_precision(r, k):
    return _undefined_to_nan(r["hits"] / k, r["n_pos"] == 0)


def _fin_recall(r, k):
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_to_nan(r["hits"] / r["n_pos"], r["n_pos"] == 0)


def _fin_ndcg(r, k):
    n_ideal = np.minimum(r["n_pos"], k)
    ideal = np.concatenate([[0.0], np.cumsum(_discounts(int(n_ideal.max(initial=0))))])
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_to_nan(r["dcg"] / ideal[n_ideal], r["n_pos"] == 0)


def _fin_ap(r, k):
    with np.errstate(divide="ignore", invalid="ignore"):
        return _undefined_to_nan(r["ap_sum"] / np.minimum(r["n_pos"], k), r["n_pos"] == 0)


def _fin_popularity(r, k):
    return _undefined_to_nan(r["popularity"], r["n_list"] == 0)


def _fin_coverage(r, k):
    return r["coverage"]


_AT_K = {"hits_at_k": (("hits",), _fin_hits),
         "precision_at_k": (("hits",), _fin_precision),
         "recall_at_k": (("hits",), _fin_recall),
         "ndcg_at_k": (("dcg",), _fin_ndcg),
         "average_precision_at_k": (("ap",), _fin_ap),
         "mean_popularity_at_k": (("popularity",), _fin_popularity),
         "coverage_rows": (("coverage",), _fin_coverage)}


def _at_k(name, scores, labels, k, mask, chunk, popularity=None):
    k = _check_k(k)
    want, finish = _AT_K[name]
    return finish(_topk_metric(scores, labels, mask, k, chunk, want, popularity), k)


def hits_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Expected number of positives among each user's top-K candidates: (U,) float64.

    NaN for users without a positive candidate.
    """
    return _at_k("hits_at_k", scores, labels, k, mask, chunk)


def precision_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK
                   ) -> np.ndarray:
    """Precision@K = hits in the top K / K (K even when a user has fewer candidates): (U,).

    NaN for users without a positive candidate.
    """
    return _at_k("precision_at_k", scores, labels, k, mask, chunk)


def recall_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Recall@K = hits in the top K / the user's number of positive candidates: (U,).

    (Not truncated: a user with more than K positives cannot reach 1.) NaN for users without
    a positive candidate.
    """
    return _at_k("recall_at_k", scores, labels, k, mask, chunk)


def ndcg_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """NDCG@K with binary gains and 1/log2(rank+1) discounts: (U,) float64.

    DCG@K over the ranked candidates divided by the ideal DCG@K (all positives first);
    ties averaged as ``sklearn.metrics.ndcg_score(k=K, ignore_ties=False)``. NaN for users
    without a positive candidate (scikit-learn returns 0 there).
    """
    return _at_k("ndcg_at_k", scores, labels, k, mask, chunk)


def average_precision_at_k(scores, labels, k: int, mask=None, *, chunk: int = DEFAULT_CHUNK
                           ) -> np.ndarray:
    """AP@K = sum over ranks i <= K of precision@i * rel_i, / min(K, n_pos): (U,) float64.

    The truncated average precision of the Million Song Dataset Challenge (McFee et al.
    2012); its mean over users is mAP@K. NaN for users without a positive candidate.
    """
    return _at_k("average_precision_at_k", scores, labels, k, mask, chunk)


def mean_popularity_at_k(scores, popularity, k: int, mask=None, *,
                         chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Mean popularity of each user's top-K candidates (L = min(K, candidates) songs): (U,).

    `popularity` (I,) is any per-song figure (e.g. listener counts). NaN for users without
    a candidate.
    """
    s = np.asarray(scores)
    return _at_k("mean_popularity_at_k", s, np.zeros(s.shape, dtype=bool), k, mask, chunk,
                 popularity=popularity)


def _coverage_rows(n, top, idx, t, tied, n_tied, slots, n_list) -> np.ndarray:
    c, kk = top.shape
    certain = top < t[:, None]
    whole = slots >= n_tied  # the whole cutoff group fits: its songs are certain too
    certain |= whole[:, None] & (top == t[:, None]) & (np.arange(kk) < n_list[:, None])
    partial = tied & ~whole[:, None]
    n_part = partial.sum(axis=1)
    n_cert = certain.sum(axis=1)
    # a tie group holding most songs (e.g. an all-tied model) is listed by its complement:
    # the songs neither certain nor tied
    comp = n_part > n - n_part
    if comp.any():
        other = ~tied
        rc, cc = np.nonzero(certain)
        other[rc, idx[rc, cc]] = False
        other &= comp[:, None]
        partial &= ~comp[:, None]
        n_part = np.where(comp, other.sum(axis=1), n_part)
    else:
        other = None
    width = int(max((n_cert + n_part).max(initial=0), 1))
    codes = np.full((c, width), np.nan, dtype=np.float32)

    def put(mask, values, offset):
        r, col = np.nonzero(mask)
        start = np.concatenate([[0], np.cumsum(mask.sum(axis=1))])
        codes[r, offset[r] + np.arange(r.size) - start[r]] = values(r, col)

    # certain songs first (in rank order), then the partial group's songs or the
    # complement's, by column
    put(certain, lambda r, col: idx[r, col], np.zeros(c, dtype=np.intp))
    put(partial, lambda r, col: -(col + 1.0), n_cert)
    if other is not None:
        put(other, lambda r, col: col + float(n), n_cert)
    n_tied_code = np.where(whole, 1.0, n_tied.astype(np.float64))
    head = np.stack([np.full(c, float(n)), slots.astype(np.float64),
                     np.where(comp, -n_tied_code, n_tied_code)], axis=1)
    out = np.concatenate([head.astype(np.float32), codes], axis=1)
    out[n_list == 0] = np.nan  # no candidate: excluded
    return out


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
