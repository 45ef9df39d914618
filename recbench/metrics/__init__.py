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

Modules: :mod:`.blocks` (input checks, chunks, ranking keys), :mod:`.chunk` (a chunk's
ranking state), :mod:`.auc`, :mod:`.topk` (the @K metrics and top-K lists),
:mod:`.coverage`, :mod:`.ranking` (rank once) and :mod:`.uncertainty` (bootstrap intervals,
paired comparisons, seed spread).
"""

from __future__ import annotations

from .auc import roc_auc_per_user
from .blocks import DEFAULT_CHUNK, n_excluded, stack_rows
from .coverage import catalogue_coverage, coverage_rows, expected_coverage
from .ranking import Ranking, ranking_of
from .topk import (average_precision_at_k, hits_at_k, mean_popularity_at_k, ndcg_at_k,
                   precision_at_k, recall_at_k, top_k)

__all__ = ["roc_auc_per_user", "ndcg_at_k", "recall_at_k", "precision_at_k",
           "average_precision_at_k", "hits_at_k", "mean_popularity_at_k", "top_k",
           "catalogue_coverage", "coverage_rows", "expected_coverage", "stack_rows",
           "Ranking", "n_excluded", "ranking_of", "DEFAULT_CHUNK"]
