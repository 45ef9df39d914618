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
order of the songs. Catalogue coverage is the expected share of songs in at least one
user's top K under independent random tie orders (:func:`coverage_rows`,
:func:`expected_coverage`). Only :func:`top_k` (concrete song lists) breaks ties
deterministically: among equal scores the lower song position comes first.

Rank once. :class:`Ranking` keeps a block's ranking keys so that AUC, AUC restricted to
groups of songs (popularity buckets) and every @K metric come from one sort per chunk;
the standalone functions compute the same numbers chunk by chunk.

Excluded users. A user without positive candidates gets NaN from every positive-based
metric (and AUC also needs one negative); :func:`n_excluded` counts them.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError, DataError

__all__ = ["roc_auc_per_user", "ndcg_at_k", "recall_at_k", "precision_at_k",
           "average_precision_at_k", "hits_at_k", "mean_popularity_at_k", "top_k",
           "catalogue_coverage", "coverage_rows", "expected_coverage", "stack_rows",
           "Ranking", "n_excluded"]

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
    if np.issubdtype(s.dtype, np.floating) and s.size and np.isnan(s.max()):  # max: no copy
        bad = np.isnan(s)
        if m is not None:
            bad &= m
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(f"scores contain NaN for {int(bad.sum())} candidate pair(s) "
                            f"(first at block row {r}, column {c}); the model must score every "
                            "candidate")


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
        ch = _Chunk(s[a:b], y[a:b], None if m is None else m[a:b])
        ch.keep_keys = False
        out[a:b] = ch.auc()
    return out


class _Chunk:
    """The ranking state of a chunk of users, computed once and shared by every metric.

    dk: (c, n) uint32 descending keys (smaller = better score, ties equal, masked pairs the
    largest key); pos: the positives among candidates. Lazily: the globally sorted haystack
    ``row << 32 | dk`` with each positive's tie range in it (AUC and the per-group AUCs),
    and the best `kk` pairs in rank order (the @K metrics, every K up to `kk`).
    """

    _SHIFT = np.uint64(32)

    def __init__(self, s: np.ndarray, y: np.ndarray, m: np.ndarray | None):
        c, n = self.shape = s.shape
        _check_nan(s, m)
        self.dk = _desc_keys(s, m)
        if m is not None:
            self.pos = np.logical_and(y, m)
            self.n_cand = np.count_nonzero(m, axis=1)
        else:
            self.pos = y if y.dtype == np.bool_ else y.astype(bool)
            self.n_cand = np.full(c, n)
        self._flat = None  # flat positions of the positives (row-major)
        self._n_pos = None
        self.keep_keys = True  # False: the AUC may sort dk in place (nothing else needs it)
        self._ranks = None
        self.with_groups = False  # set when group AUCs will be asked for: rank for both at once
        self._prefix = None  # (kk, packed sorted ``dk << 32 | column`` of the best kk)

    @property
    def flat(self) -> np.ndarray:
        if self._flat is None:
            self._flat = np.flatnonzero(self.pos)  # much faster than a 2-D np.nonzero
        return self._flat

    @property
    def n_pos(self) -> np.ndarray:
        if self._n_pos is None:
            c, n = self.shape
            self._n_pos = np.bincount(self.flat // n, minlength=c)
        return self._n_pos

    # ---------------------------------------------------------------- AUC
    def _positive_ranks(self, with_columns: bool = False):
        """(rows, twice the average ascending 1-based rank of each positive among its row's
        candidates[, flat positions of the positives, twice their average ascending rank
        among the row's positives]), positives in (row, key) order."""
        if self._ranks is None or (with_columns and len(self._ranks) == 2):
            c, n = self.shape
            shift = self._SHIFT
            flat = self.flat
            # positives' keys, globally sorted (row-major, then key): searchsorted then walks
            # the haystack forward and stays in cache
            needles = np.bitwise_or(self.dk.ravel()[flat],
                                    (flat // n).astype(np.uint64) << shift, dtype=np.uint64)
            if with_columns:
                order = np.argsort(needles)
                needles, flat = needles[order], flat[order]
            else:
                needles.sort()
            if self._ranks is None:
                row_off = (np.arange(c, dtype=np.uint64) << shift)[:, None]
                if self.keep_keys:
                    srt = np.sort(self.dk, axis=1)
                else:
                    srt = self.dk
                    srt.sort(axis=1)
                    self.dk = None
                hay = np.bitwise_or(srt, row_off, dtype=np.uint64).ravel()
                lo = np.searchsorted(hay, needles, side="left")
                # a positive ties at least with itself; most tie with nothing else, so search
                # the right end only where the next key is equal
                hi = lo + 1
                more = np.flatnonzero(hay[np.minimum(hi, hay.size - 1)] == needles)
                if more.size:
                    hi[more] = np.searchsorted(hay, needles[more], side="right")
                rows = (needles >> shift).astype(np.intp)
                base = rows * n
                # descending positions [lo, hi) -> ascending ranks n_cand - hi + 1 .. n_cand - lo
                two_rank = 2 * self.n_cand[rows] - (lo - base) - (hi - base) + 1
            else:  # the sorted needles are the same: reuse the ranks, add the columns
                rows, two_rank = self._ranks
            self._ranks = (rows, two_rank)
            if with_columns:
                # the same among the row's positives: the needles are its sorted positives
                plo = np.searchsorted(needles, needles, side="left")
                phi = np.searchsorted(needles, needles, side="right")
                start = np.concatenate([[0], np.cumsum(self.n_pos)])[rows]
                two_prank = 2 * self.n_pos[rows] - (plo - start) - (phi - start) + 1
                self._ranks = (rows, two_rank, flat, two_prank)
        return self._ranks

    def auc(self) -> np.ndarray:
        c = self.shape[0]
        rows, two_rank = self._positive_ranks(self.with_groups)[:2]
        n_pos = self.n_pos
        two_rank_sum = np.bincount(rows, weights=two_rank, minlength=c)  # exact: integers
        n_neg = self.n_cand - n_pos
        two_u = two_rank_sum - n_pos * (n_pos + 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = two_u / (2.0 * n_pos * n_neg)
        auc[(n_pos == 0) | (n_neg == 0)] = np.nan
        return auc

    def auc_by_group(self, group: np.ndarray, n_groups: int) -> np.ndarray:
        """(c, n_groups): AUC with the positives restricted to the songs of each group and
        every negative candidate kept (= :func:`roc_auc_per_user` on ``labels & in_g`` with
        the mask ``mask & (~labels | in_g)``), from the one ranking: a positive's count of
        negatives below it (ties 1/2) is its rank among candidates minus its rank among
        positives."""
        c, n = self.shape
        rows, two_rank, flat, two_prank = self._positive_ranks(with_columns=True)
        g = np.asarray(group, dtype=np.intp)[flat % n]
        cell = rows * n_groups + g
        two_u = np.bincount(cell, weights=two_rank - two_prank,
                            minlength=c * n_groups).reshape(c, n_groups)
        n_pos = np.bincount(cell, minlength=c * n_groups).reshape(c, n_groups)
        n_neg = (self.n_cand - self.n_pos)[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            auc = two_u / (2.0 * n_pos * n_neg)
        auc[(n_pos == 0) | (n_neg == 0)] = np.nan
        return auc

    # ---------------------------------------------------------------- top K
    def cutoff(self, kk: int) -> tuple:
        """The cutoff at `kk` list positions, shared by every @K metric with that K: (keys
        and columns of the best kk, their positive flags, L = min(kk, candidates), the key
        t of the L-th best candidate, the row's pairs tied with it, their number and
        positives, the selected pairs strictly above t, the list slots left for t's
        group)."""
        cuts = self.__dict__.setdefault("_cuts", {})
        if kk not in cuts:
            c, n = self.shape
            top, idx = self.prefix(kk)
            lab = np.take_along_axis(self.pos, idx, axis=1)
            n_list = np.minimum(self.n_cand, kk)  # L: list positions that hold candidates
            t = top[np.arange(c), np.maximum(n_list - 1, 0)]  # the cutoff group's key
            tied = self.dk == t[:, None]
            n_tied = np.count_nonzero(tied, axis=1)
            r = self.flat // n  # positives tied with t: from the positives alone
            p_tied = np.bincount(r, weights=self.dk.ravel()[self.flat] == t[r],
                                 minlength=c).astype(np.int64)
            above = top < t[:, None]  # every key below t lies in the list
            slots = n_list - np.count_nonzero(above, axis=1)
            cuts[kk] = (top, idx, lab, n_list, t, tied, n_tied, p_tied, above, slots)
        return cuts[kk]

    def prefix(self, kk: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, columns) of each row's best `kk` pairs in rank order (ties by column; which
        songs of a tie group straddling `kk` are taken is unspecified, and no metric depends
        on it)."""
        if self._prefix is None or self._prefix[0] < kk:
            c, n = self.shape
            if kk < n:  # select on the uint32 keys, then order the selection exactly
                idx = np.argpartition(self.dk, kk - 1, axis=1)[:, :kk]
                top = np.take_along_axis(self.dk, idx, axis=1)
            else:
                idx, top = np.broadcast_to(np.arange(n), (c, n)), self.dk
            packed = top.astype(np.uint64) << self._SHIFT
            packed |= idx.astype(np.uint64)
            packed.sort(axis=1)
            self._prefix = (kk, packed)
        packed = self._prefix[1][:, :kk]
        return ((packed >> self._SHIFT).astype(np.uint32),
                (packed & np.uint64(0xFFFFFFFF)).astype(np.intp))


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
    """uint32 keys with the reverse order and the ties of the scores `s` (2-D, no NaN among
    candidates), exactly: smaller key = better score; masked pairs get the largest key
    (rank last).

    float32-exact inputs map bit-wise (IEEE order trick, in place on one copy); others
    (float64, int64…) map to their dense rank within the block, which preserves order and
    ties exactly.
    """
    f = s.astype(np.float32)
    if s.dtype in _EXACT_IN_F32:
        exact = True
    elif np.issubdtype(s.dtype, np.integer):  # integers up to 2**24 are exact floats
        exact = not s.size or (s.min() >= -2**24 and s.max() <= 2**24)
    else:
        eq = f == s  # NaN only where masked (checked), where it must not spoil exactness
        exact = bool(eq.all()) or bool(np.all(eq | np.isnan(s)))
    if not exact:
        _, inv = np.unique(s, return_inverse=True)
        # descending dense ranks that never reach the masked key
        dk = (np.uint32(0xFFFFFFFE) - inv.reshape(s.shape)).astype(np.uint32)
    else:
        f += np.float32(0.0)  # -0.0 -> +0.0 so that the two zeros tie
        dk = f.view(np.uint32)
        # ascending key: negative floats flip all bits, positive ones set the sign bit; the
        # descending key is its complement: negative floats keep their bits, positive ones
        # flip all but the sign bit. Candidate keys stay <= 0xFF800000 (-inf).
        t = f.view(np.int32) >> 31  # -1 where negative, 0 elsewhere
        np.invert(t, out=t)
        tu = t.view(np.uint32)
        tu &= np.uint32(0x7FFFFFFF)
        dk ^= tu
    if m is not None:
        np.copyto(dk, _MASKED_KEY, where=~m)
    return dk


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


# --------------------------------------------------------------------------- coverage


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


def stack_rows(parts) -> np.ndarray:
    """Concatenate 2-D blocks of per-user rows along users, NaN-padding to the widest."""
    parts = [np.asarray(p) for p in parts]
    if not parts:
        return np.zeros((0, 0))
    if parts[0].ndim == 1:
        return np.concatenate(parts)
    width = max(p.shape[1] for p in parts)
    dtype = np.result_type(*parts)
    out = np.full((sum(len(p) for p in parts), width), np.nan, dtype=dtype)
    row = 0
    for p in parts:
        out[row:row + len(p), :p.shape[1]] = p
        row += len(p)
    return out


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


# --------------------------------------------------------------------------- rank once


class Ranking:
    """A block of users ranked once, from which every metric and diagnostic is derived.

    ``Ranking(scores, labels, mask)`` computes each chunk's ranking keys once and keeps
    them (memory: about 5 bytes per pair, plus about 1 per pair and 20 per selected pair for
    each distinct K asked for), then
    ``auc()``, ``auc_by_group(group)`` and ``at_k(name, k)`` (name: a function of this
    module such as ``"ndcg_at_k"`` or ``"coverage_rows"``) return exactly what the
    standalone functions return, without sorting again. Pass `k_max` (the largest cutoff
    that will be asked for) so the best pairs are selected once for every K, and
    `with_groups` when ``auc_by_group`` will be asked for (the positives are then located
    once for both).
    """

    def __init__(self, scores, labels, mask=None, *, chunk: int = DEFAULT_CHUNK,
                 k_max: int | None = None, popularity=None, with_groups: bool = False):
        s, y, m = _as_block(scores, labels, mask)
        self.shape = s.shape
        self._popularity = popularity
        self._chunks = [] if 0 in s.shape else [
            _Chunk(s[a:b], y[a:b], None if m is None else m[a:b])
            for a, b in _chunks(s.shape[0], chunk)]
        self._empty = (s, y, m)  # kept only for the degenerate no-user/no-song case
        if not self._chunks:
            return
        self._empty = None
        for ch in self._chunks:
            ch.with_groups = with_groups
        if k_max is not None:
            kk = min(_check_k(k_max), s.shape[1])
            for ch in self._chunks:
                ch.prefix(kk)

    def auc(self) -> np.ndarray:
        """:func:`roc_auc_per_user` of the block."""
        if not self._chunks:
            return np.full(self.shape[0], np.nan)
        return np.concatenate([ch.auc() for ch in self._chunks])

    def auc_by_group(self, group, n_groups: int | None = None) -> np.ndarray:
        """(U, G) per-user AUC with the positives restricted to the songs of each group
        (`group` (I,) ints in [0, G)) against every negative candidate: column g equals
        ``roc_auc_per_user(scores, labels & in_g, mask & (~labels | in_g))``."""
        group = np.asarray(group, dtype=np.intp).ravel()
        if group.shape != (self.shape[1],):
            raise DataError(f"group must have one entry per candidate song ({self.shape[1]}), "
                            f"got shape {group.shape}")
        n_groups = int(group.max(initial=-1)) + 1 if n_groups is None else int(n_groups)
        if not self._chunks:
            return np.full((self.shape[0], n_groups), np.nan)
        return np.concatenate([ch.auc_by_group(group, n_groups) for ch in self._chunks])

    def at_k(self, name: str, k: int, popularity=None) -> np.ndarray:
        """The per-user values of the @K function `name` of this module at cutoff `k`."""
        k = _check_k(k)
        want, finish = _AT_K[name]
        if popularity is None:
            popularity = self._popularity
        if not self._chunks:
            s, y, m = self._empty
            return finish(_topk_metric(s, y, m, k, 1, want, popularity), k)
        if popularity is not None:
            popularity = np.asarray(popularity, dtype=np.float64).ravel()
            if popularity.shape != (self.shape[1],):
                raise DataError(f"popularity must have one value per candidate song "
                                f"({self.shape[1]}), got shape {popularity.shape}")
        return finish(_join([_topk_chunk(ch, k, want, popularity) for ch in self._chunks]), k)


def ranking_of(block, *, k_max: int | None = None, with_groups: bool = False) -> Ranking:
    """The :class:`Ranking` of a :class:`recbench.components.MetricInput`, made on first use
    and kept on the block (so that the metrics of one block share it); a block whose
    arrays were replaced gets a new one. `k_max`, `with_groups`: see :class:`Ranking`
    (first use only)."""
    key = (block.scores, block.labels, block.mask)
    cached = block.__dict__.get("_ranking")
    if cached is None or any(a is not b for a, b in zip(cached[0], key)):
        cached = (key, Ranking(block.scores, block.labels, block.mask, k_max=k_max,
                               with_groups=with_groups,
                               popularity=getattr(block, "popularity", None)))
        block.__dict__["_ranking"] = cached
    return cached[1]
