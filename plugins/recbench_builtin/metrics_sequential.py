"""Next-item metrics (issue 14): `hr` (hit rate at K) and `mrr` (mean reciprocal rank).

With one held-out next track per row (the sequential task's blocks), ``hr@K`` is 1 when
that track is in the top K and ``mrr`` is 1 / its rank; with several positives ``hr@K`` is
the share of them in the top K (recall@K) and ``mrr`` uses the best-ranked one. Both are
the exact expectation over random orders of tied scores, like the built-in metrics, and
NaN for rows without a positive candidate.
"""

from __future__ import annotations

import numpy as np

from recbench import hookimpl
from recbench.components import Metric, MetricInput
from recbench.errors import ConfigError


class HitRate(Metric):
    """HR@K: the next track is among the top K (share of positives in the top K)."""

    name = "hr"
    label = "HR@K (next track in top K)"
    description = ("hit rate at K: 1 when the held-out next track is in the top K "
                   "candidates (with several positives, their share in the top K); ties "
                   "straddling the cutoff count their expected share")
    needs_k = True

    def per_user(self, block: MetricInput) -> np.ndarray:
        from recbench.metrics import ranking_of

        if block.k is None:
            raise ConfigError("metric 'hr' needs a cutoff, e.g. 'hr@10'")
        return ranking_of(block).at_k("recall_at_k", int(block.k))


def expected_reciprocal_rank(scores: np.ndarray, labels: np.ndarray) -> float:
    """E[1 / rank of the first positive] over random orders of tied scores (NaN without a
    positive). `scores`, `labels`: one row's candidates."""
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return float("nan")
    top = scores[labels].max()
    above = int((scores > top).sum())  # all negatives: no positive scores above `top`
    tied = scores == top
    p, n = int((tied & labels).sum()), int((tied & ~labels).sum())
    # J = position of the first positive among the p + n tied items, uniformly shuffled:
    # P(J = j) = C(p + n - j, p - 1) / C(p + n, p)
    from math import comb

    total = comb(p + n, p)
    return sum(comb(p + n - j, p - 1) / total / (above + j) for j in range(1, n + 2))


class MRR(Metric):
    """Mean reciprocal rank of the next track."""

    name = "mrr"
    label = "MRR (next track)"
    description = ("1 / rank of the held-out next track among the candidates (the "
                   "best-ranked positive when several), expectation over tied orders; mean "
                   "over rows with a positive")

    def per_user(self, block: MetricInput) -> np.ndarray:
        scores = np.asarray(block.scores, dtype=np.float64)
        labels = np.asarray(block.labels, dtype=bool)
        mask = np.ones_like(labels) if block.mask is None else np.asarray(block.mask, bool)
        return np.array([expected_reciprocal_rank(s[m], y[m])
                         for s, y, m in zip(scores, labels, mask)], dtype=np.float64)


@hookimpl
def recbench_register_metrics(register):
    register(HitRate)
    register(MRR)
