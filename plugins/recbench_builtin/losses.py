"""Training losses.

Ranking losses take ``pos`` (B,) relevance scores of the positive song and ``neg`` (B, K)
scores of K negatives for the same user, and return the mean over the batch of a per-row
loss. Regression losses take ``pred`` and ``target`` of the same shape.

- ``hinge``: the DCUE max-margin loss (Lee et al. 2018, eq. 2):
  sum over negatives of max(0, margin - pos + neg), margin 0.2.
- ``softmax``: cross-entropy of the positive among [pos, negs] with scores / temperature.
- ``infonce``: the same softmax cross-entropy at a contrastive temperature (0.07).
- ``bpr``: -log sigmoid(pos - neg), mean over negatives (Rendle et al. 2009).
- ``mse``: mean squared error (regression, e.g. onto WMF item factors).

torch is imported inside the calls so that this module imports cheaply.
"""

from __future__ import annotations

from typing import Any

from recbench import hookimpl
from recbench.components import Loss
from recbench.params import Param


def _check_ranking(name: str, pos: Any, neg: Any) -> None:
    if pos.dim() != 1 or neg.dim() != 2 or neg.shape[0] != pos.shape[0]:
        # a bug in the calling model, not a user mistake
        raise ValueError(f"loss.{name}: expected pos (B,) and neg (B, K) scores, got "
                         f"{tuple(pos.shape)} and {tuple(neg.shape)}")


class HingeLoss(Loss):
    """Max-margin hinge loss (DCUE, eq. 2):
    ``loss = mean_b  sum_k max(0, margin - pos[b] + neg[b, k])``.

    The paper sums over the (20) negatives; ``negatives = "mean"`` divides by K instead
    (the same gradient direction, K times smaller).
    """

    name = "hinge"
    description = "Max-margin hinge: sum over negatives of max(0, margin - pos + neg) (DCUE eq. 2)"
    params = (
        Param("margin", float, 0.2, min=0.0, help="margin (paper: 0.2, grid-searched)"),
        Param("negatives", str, "sum", choices=("sum", "mean"),
              help="reduction over negatives per positive (paper: sum)"),
    )

    def __call__(self, pos: Any, neg: Any) -> Any:
        """Scalar tensor: per-row hinge summed (or averaged) over negatives, mean over rows."""
        import torch

        _check_ranking(self.name, pos, neg)
        per = torch.clamp(self.options["margin"] - pos[:, None] + neg, min=0.0)
        per = per.sum(dim=1) if self.options["negatives"] == "sum" else per.mean(dim=1)
        return per.mean()


class SoftmaxLoss(Loss):
    """Softmax cross-entropy with the positive as the target class (DSSM-style):
    ``loss = mean_b  -log( exp(pos/t) / (exp(pos/t) + sum_k exp(neg_k/t)) )``."""

    name = "softmax"
    description = "Cross-entropy of the positive among [pos, negatives], scores / temperature"
    params = (
        Param("temperature", float, 1.0, min=1e-6,
              help="scores are divided by this (DSSM's smoothing factor is 1/temperature)"),
    )

    def __call__(self, pos: Any, neg: Any) -> Any:
        """Scalar tensor: mean cross-entropy over the batch."""
        import torch

        _check_ranking(self.name, pos, neg)
        logits = torch.cat([pos[:, None], neg], dim=1) / self.options["temperature"]
        # -log softmax of column 0, computed stably.
        return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


class InfoNCELoss(SoftmaxLoss):
    """InfoNCE (van den Oord et al. 2018): the softmax cross-entropy of the positive
    against the given negatives at a contrastive temperature. Under the (pos, neg) contract
    it equals ``softmax`` with the same temperature; which songs are negatives (sampled or
    in-batch) is the model's and the sampler's choice."""

    name = "infonce"
    description = "InfoNCE: softmax cross-entropy over pos + negatives, temperature 0.07"
    params = (
        Param("temperature", float, 0.07, min=1e-6, help="softmax temperature"),
    )


class BPRLoss(Loss):
    """Bayesian personalised ranking: ``loss = mean_{b,k} -log sigmoid(pos[b] - neg[b, k])``."""

    name = "bpr"
    description = "BPR: -log sigmoid(pos - neg), mean over negatives and batch"

    def __call__(self, pos: Any, neg: Any) -> Any:
        """Scalar tensor."""
        import torch.nn.functional as F

        _check_ranking(self.name, pos, neg)
        return -F.logsigmoid(pos[:, None] - neg).mean()


class MSELoss(Loss):
    """Mean squared error over all elements: ``mean((pred - target) ** 2)``; pred and
    target have the same shape, e.g. (B, factors)."""

    name = "mse"
    description = "Mean squared error (regression onto targets such as WMF item factors)"
    ranking = False

    def __call__(self, pred: Any, target: Any) -> Any:
        """Scalar tensor."""
        import torch.nn.functional as F

        if tuple(pred.shape) != tuple(target.shape):
            raise ValueError(f"loss.mse: expected pred and target of the same shape, got "
                             f"{tuple(pred.shape)} and {tuple(target.shape)}")
        return F.mse_loss(pred, target)


@hookimpl
def recbench_register_losses(register):
    register(HingeLoss)
    register(SoftmaxLoss)
    register(InfoNCELoss)
    register(BPRLoss)
    register(MSELoss)
