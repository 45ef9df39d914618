"""Built-in metrics: per-user ROC AUC (the paper's metric) and top-K ranking metrics.

Every metric is computed per user over that user's candidate songs (the split's test
songs minus songs the user has in training) and reduced by the mean over users for whom
it is defined; the array maths lives in :mod:`recbench.metrics`.
"""

from __future__ import annotations

import numpy as np

from recbench import hookimpl
from recbench.components import Metric, MetricInput
from recbench.metrics import roc_auc_per_user


class AUC(Metric):
    """Per-user ROC AUC averaged over users (the DCUE paper's metric)."""

    name = "auc"
    label = "AUC (per-user mean)"
    description = ("ROC AUC per user over the candidate (test) songs, ties count 1/2, "
                   "averaged over users with at least one positive and one negative "
                   "(not pooled over all pairs)")

    def per_user(self, block: MetricInput) -> np.ndarray:
        return roc_auc_per_user(block.scores, block.labels, block.mask)


@hookimpl
def recbench_register_metrics(register):
    register(AUC)
