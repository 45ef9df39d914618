"""The ranking state of a chunk of users, computed once and shared by every metric."""

from __future__ import annotations

from typing import Any

import numpy as np

from .blocks import _check_nan, _desc_keys

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
        self.dk: Any = _desc_keys(s, m)
        if m is not None:
            self.pos = np.logical_and(y, m)
            self.n_cand = np.count_nonzero(m, axis=1)
        else:
            self.pos = y if y.dtype == np.bool_ else y.astype(bool)
            self.n_cand = np.full(c, n)
        self._flat: np.ndarray | None = None  # flat positions of the positives (row-major)
        self._n_pos: np.ndarray | None = None
        self.keep_keys = True  # False: the AUC may sort dk in place (nothing else needs it)
        self._ranks: tuple[Any, ...] | None = None
        self.with_groups = False  # set when group AUCs will be asked for: rank for both at once
        self._prefix: tuple[int, np.ndarray] | None = None  # (kk, packed sorted ``dk << 32 | column`` of the best kk)

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
