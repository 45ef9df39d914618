"""Losses for sequential models (issue 14, seed 004).

- ``skip-contrastive``: the contrastive term on skipped tracks of seed 004 (a transformer
  for sequential music recommendation trained with negative session feedback): the
  representation of a listening position is pulled toward the track played next and pushed
  away from the tracks the user skipped in that session,
  ``loss = -log( e^{pos/t} / (e^{pos/t} + sum_k e^{neg_k/t}) )``
  with pos the score (representation . track vector) of the played track and neg_k those
  of the skipped ones. It is a ranking loss (pos (B,), neg (B, K)) that any sequential
  model can add to its next-item loss: pad rows with fewer than K skipped tracks with
  -inf; rows without a skipped track add nothing (they are left out of the mean).
  ``similarity``: how the model scores a track for the term, through the loss's
  :meth:`SkipContrastiveLoss.scores` (which a model calls with its representations and
  track vectors): ``"dot"``, the model's own score (dot product + song bias), or
  ``"cosine"``, the cosine of the representation and the track vector (no bias), InfoNCE
  as in seed 004 (Seshadri & Knees, arXiv 2309.11623; with a temperature t, e.g. 0.1).

torch is imported inside the call so that this module imports cheaply.
"""

from __future__ import annotations

from typing import Any

from recbench import hookimpl
from recbench.components import Loss
from recbench.params import Param


class SkipContrastiveLoss(Loss):
    """Played track against the session's skipped tracks, softmax at temperature t."""

    name = "skip-contrastive"
    description = ("Contrastive term on skipped tracks (seed 004): -log softmax of the "
                   "played track against the skipped ones; -inf pads")
    params = (
        Param("temperature", float, 1.0, "softmax temperature t", gt=0.0),
        Param("similarity", str, "dot", "score of a track for the term: dot product + song "
              "bias (the model's score) or cosine (seed 004's InfoNCE)",
              choices=("dot", "cosine")),
    )

    def scores(self, h: Any, pos_vecs: Any, neg_vecs: Any, pos_bias: Any = None,
               neg_bias: Any = None) -> tuple[Any, Any]:
        """(pos (B,), neg (B, K)) scores of the played and skipped tracks' vectors (B, d)
        and (B, K, d) for the representations h (B, d): dot product (+ the biases when
        given) or, with ``similarity = "cosine"``, cosine similarity (biases ignored)."""
        import torch

        if self.options["similarity"] == "cosine":
            f = torch.nn.functional
            h, pos_vecs, neg_vecs = (f.normalize(h, dim=-1), f.normalize(pos_vecs, dim=-1),
                                     f.normalize(neg_vecs, dim=-1))
            pos_bias = neg_bias = None
        pos = (h * pos_vecs).sum(-1)
        neg = torch.einsum("bd,bkd->bk", h, neg_vecs)
        if pos_bias is not None:
            pos = pos + pos_bias
        if neg_bias is not None:
            neg = neg + neg_bias
        return pos, neg

    def pairwise(self, h: Any) -> Any:
        """(B, L, L) scores between the positions of each row of h (B, L, d): dot products
        or, with ``similarity = "cosine"``, cosines (the states form of the term)."""
        import torch

        if self.options["similarity"] == "cosine":
            h = torch.nn.functional.normalize(h, dim=-1)
        return h @ h.transpose(1, 2)

    def __call__(self, pos: Any, neg: Any) -> Any:
        """Mean over rows with at least one skipped track; 0 (with gradients) without."""
        import torch

        if pos.dim() != 1 or neg.dim() != 2 or neg.shape[0] != pos.shape[0]:
            raise ValueError(f"loss.{self.name}: expected pos (B,) and neg (B, K) scores, "
                             f"got {tuple(pos.shape)} and {tuple(neg.shape)}")
        t = self.options["temperature"]
        has = torch.isfinite(neg).any(dim=1) & torch.isfinite(pos)
        if not bool(has.any()):
            return (pos * 0.0).sum() + (torch.nan_to_num(neg, neginf=0.0) * 0.0).sum()
        p, n = pos[has] / t, neg[has] / t
        lse_neg = torch.logsumexp(n, dim=1)
        # -log(e^p / (e^p + sum e^n)) = softplus(logsumexp(n) - p)
        return torch.nn.functional.softplus(lse_neg - p).mean()


@hookimpl
def recbench_register_losses(register):
    register(SkipContrastiveLoss)
