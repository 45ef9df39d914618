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
        from recbench.metrics import ranking_of

        return ranking_of(block).auc()


class _CutoffMetric(Metric):
    """A per-user @K metric computed by the function of :mod:`recbench.metrics` named in
    `function` as ``function(scores, labels, k, mask)``, from the block's shared ranking
    (:func:`recbench.metrics.ranking_of`: the block is ranked once for all its metrics)."""

    needs_k = True
    function = ""

    def per_user(self, block: MetricInput) -> np.ndarray:
        from recbench.metrics import ranking_of

        return ranking_of(block).at_k(self.function, _k(self, block))


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
    """Catalogue coverage@K: expected share of the candidate songs in at least one user's
    top K, each user's ties at the cutoff ordered uniformly at random.

    Per-user values are the rows of :func:`recbench.metrics.coverage_rows` (the songs
    certainly in the user's top K, and the tie group straddling the cutoff with its chance
    of entering), so that `reduce` works on any resampled set of rows; the whole row is
    NaN for a user without candidates.

    Its bootstrap interval is bias-corrected (``bootstrap_interval``): a resample of U
    users holds only about 63% distinct users, so resampled coverage is biased downwards
    and a plain percentile interval can exclude the point estimate.
    """

    name = "coverage"
    label = "Coverage@K (catalogue share)"
    description = ("Expected share of the candidate (test) songs that appear in at least one "
                   "evaluated user's top K, each user's ties at the cutoff ordered uniformly "
                   "at random (1 - prod over users of (1 - P(song in the user's top K)), "
                   "averaged over songs); bias-corrected bootstrap interval; a diagnostic of "
                   "diversity, not of accuracy")
    needs_k = True
    bootstrap_interval = "bias-corrected"
    bootstrap_bounds = (0.0, 1.0)  # a share: the shifted interval is clipped to it

    def per_user(self, block: MetricInput) -> np.ndarray:
        from recbench.metrics import ranking_of

        return ranking_of(block).at_k("coverage_rows", _k(self, block))

    def reduce(self, values: np.ndarray) -> float:
        from recbench.metrics import expected_coverage

        return expected_coverage(values)

    def reduce_resamples(self, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Coverage of many resamples at once: `counts` (B, U) user multiplicities -> (B,)."""
        from recbench.metrics import expected_coverage

        return expected_coverage(values, counts)


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
        from recbench.metrics import ranking_of

        if block.popularity is None:
            raise ConfigError("metric 'popularity' needs per-song popularity, which this "
                              "task does not provide")
        return ranking_of(block).at_k("mean_popularity_at_k", _k(self, block),
                                      popularity=block.popularity)


@hookimpl
def recbench_register_metrics(register):
    for cls in (AUC, NDCG, Recall, Precision, MAP, Coverage, Popularity):
        register(cls)
