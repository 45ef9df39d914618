"""Built-in metrics: per-user ROC AUC (the paper's metric) and top-K ranking metrics.

Every metric is computed per user over that user's candidate songs (the split's test
songs minus songs the user has in training or validation) and reduced by the mean over
the users for whom it is defined; the array maths lives in :mod:`recbench.metrics`.
Ranking metrics report the exact expectation over random orders of tied scores (AUC: a
tie counts 1/2), so a constant-score model gets the chance value. Users without a
positive candidate are excluded (NaN per-user value; the task counts them).
"""

from __future__ import annotations

import numpy as np

from recbench import hookimpl
from recbench.components import Metric, MetricInput
from recbench.errors import ConfigError


def _k(metric: Metric, block: MetricInput) -> int:
    if block.k is None:
        raise ConfigError(f"metric {metric.name!r} needs a cutoff, e.g. '{metric.name}@10'")
    return int(block.k)


class AUC(Metric):
    """Per-user ROC AUC averaged over users (the DCUE paper's metric)."""

    name = "auc"
    label = "AUC (per-user mean)"
    description = ("ROC AUC per user over the candidate (test) songs, ties count 1/2, "
                   "averaged over users with at least one positive and one negative "
                   "(not pooled over all pairs)")

    def per_user(self, block: MetricInput) -> np.ndarray:
        from recbench.metrics import roc_auc_per_user

        return roc_auc_per_user(block.scores, block.labels, block.mask)


class _CutoffMetric(Metric):
    """A per-user @K metric computed by the function of :mod:`recbench.metrics` named in
    `function` as ``function(scores, labels, k, mask)``."""

    needs_k = True
    function = ""

    def per_user(self, block: MetricInput) -> np.ndarray:
        import recbench.metrics

        fn = getattr(recbench.metrics, self.function)
        return fn(block.scores, block.labels, _k(self, block), block.mask)


class NDCG(_CutoffMetric):
    """NDCG@K with binary relevance (scikit-learn's ndcg_score, ties averaged)."""

    name = "ndcg"
    label = "NDCG@K (binary, per-user)"
    description = ("NDCG@K per user: binary gains, 1/log2(rank+1) discounts, divided by the "
                   "ideal DCG@K; ties averaged as sklearn ndcg_score(ignore_ties=False); "
                   "mean over users with a positive candidate")
    function = "ndcg_at_k"


class Recall(_CutoffMetric):
    """Recall@K: hits in the top K over the user's number of positives."""

    name = "recall"
    label = "Recall@K (hits/positives)"
    description = ("Recall@K per user: positives among the top-K candidates divided by the "
                   "user's number of positive candidates (not min(K, positives)); ties "
                   "straddling the cutoff count their expected share; mean over users with "
                   "a positive")
    function = "recall_at_k"


class Precision(_CutoffMetric):
    """Precision@K: hits in the top K over K."""

    name = "precision"
    label = "Precision@K (hits/K)"
    description = ("Precision@K per user: positives among the top-K candidates divided by K "
                   "(K even if the user has fewer candidates); ties straddling the cutoff "
                   "count their expected share; mean over users with a positive")
    function = "precision_at_k"


class MAP(_CutoffMetric):
    """mAP@K as in the Million Song Dataset Challenge (AP@K normalised by min(K, n_pos))."""

    name = "map"
    label = "mAP@K (AP/min(K,positives))"
    description = ("Mean average precision at K (MSD Challenge): per user, the sum over ranks "
                   "i <= K of precision@i at each positive, divided by min(K, positives); "
                   "expectation over tie orders; mean over users with a positive "
                   "(e.g. map@500)")
    function = "average_precision_at_k"


class Coverage(Metric):
    """Catalogue coverage@K: share of candidate songs in at least one user's top K.

    Per-user values are rows ``[n_candidate_songs, song_1, ..., song_K]`` (float; song
    positions in the block's candidate list, NaN padding; the whole row NaN for a user
    without candidates), so that `reduce` works on any resampled set of rows.
    """

    name = "coverage"
    label = "Coverage@K (catalogue share)"
    description = ("Share of the candidate (test) songs that appear in at least one "
                   "evaluated user's top K; ties broken by song position (lower first); a "
                   "diagnostic of diversity, not of accuracy")
    needs_k = True

    def per_user(self, block: MetricInput) -> np.ndarray:
        from recbench.metrics import top_k

        top = top_k(block.scores, _k(self, block), block.mask).astype(np.float64)
        top[top < 0] = np.nan
        n_items = np.full((len(top), 1), float(np.shape(block.scores)[1]))
        out = np.concatenate([n_items, top], axis=1)
        out[np.isnan(top).all(axis=1)] = np.nan  # no candidate: excluded
        return out

    def reduce(self, values: np.ndarray) -> float:
        from recbench.metrics import catalogue_coverage

        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 2 or not v.size or np.isnan(v[:, 0]).all():
            return float("nan")
        return catalogue_coverage(v[:, 1:], int(np.nanmax(v[:, 0])))

    def reduce_resamples(self, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Coverage of many resamples at once: `counts` (B, U) user multiplicities -> (B,)."""
        import scipy.sparse as sp

        v = np.asarray(values, dtype=np.float64)
        counts = np.asarray(counts)
        if v.ndim != 2 or not v.size or np.isnan(v[:, 0]).all():
            return np.full(len(counts), np.nan)
        n_items = int(np.nanmax(v[:, 0]))
        top = v[:, 1:]
        rows, cols = np.nonzero(np.isfinite(top))
        hit = sp.csr_matrix((np.ones(rows.size), (rows, top[rows, cols].astype(np.int64))),
                            shape=(len(v), n_items))
        covered = np.asarray(hit.T.dot(np.asarray(counts, dtype=np.float64).T).T) > 0
        return covered.sum(axis=1) / n_items


class Popularity(Metric):
    """Mean popularity of the top-K recommended songs (a popularity-bias diagnostic)."""

    name = "popularity"
    label = "Mean popularity@K (listeners)"
    description = ("Mean popularity (the task's per-song figure: listeners over the whole "
                   "dataset, a measuring stick never shown to models) of each user's top-K "
                   "candidates, ties by expected share, averaged over users; lower = less "
                   "popularity bias (a diagnostic, not accuracy)")
    needs_k = True
    higher_is_better = False

    def per_user(self, block: MetricInput) -> np.ndarray:
        from recbench.metrics import mean_popularity_at_k

        if block.popularity is None:
            raise ConfigError("metric 'popularity' needs per-song popularity, which this "
                              "task does not provide")
        return mean_popularity_at_k(block.scores, block.popularity, _k(self, block),
                                    block.mask)


@hookimpl
def recbench_register_metrics(register):
    for cls in (AUC, NDCG, Recall, Precision, MAP, Coverage, Popularity):
        register(cls)
