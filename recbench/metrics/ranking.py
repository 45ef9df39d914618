"""Rank once: a block ranked once, from which every metric of the block is derived."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from .blocks import DEFAULT_CHUNK, _as_block, _check_k, _chunks
from .chunk import _Chunk
from .topk import _AT_K, _join, _topk_chunk, _topk_metric

class Ranking:
    """A block of users ranked once, from which every metric and diagnostic is derived.

    ``Ranking(scores, labels, mask)`` computes each chunk's ranking keys once and keeps
    them (memory: about 5 bytes per pair, plus about 1 per pair and 20 per selected pair for
    each distinct K asked for), then
    ``auc()``, ``auc_by_group(group)`` and ``at_k(name, k)`` (name: a function of
    :mod:`recbench.metrics` such as ``"ndcg_at_k"`` or ``"coverage_rows"``) return exactly
    what the standalone functions return, without sorting again. Pass `k_max` (the largest cutoff
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
        self._empty: tuple[Any, Any, Any] | None = (s, y, m)  # kept only for the degenerate no-user/no-song case
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
        """The per-user values of the @K function `name` of :mod:`recbench.metrics` at
        cutoff `k`."""
        k = _check_k(k)
        want, finish = _AT_K[name]
        if popularity is None:
            popularity = self._popularity
        if not self._chunks:
            assert self._empty is not None
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
