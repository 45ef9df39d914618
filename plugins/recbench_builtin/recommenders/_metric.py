"""Metric-learning building blocks shared by `cml` and `hcml` (pure torch functions).

- :func:`sq_distances`: squared Euclidean distances between paired or all rows;
- :func:`cml_hinge`: the CML hinge on squared distances with margin and the WARP-style
  rank weight (Hsieh et al., WWW 2017, eq. 3-4);
- :func:`covariance_penalty`: the CML covariance regulariser (section 3.4);
- :func:`clip_rows_`: projection of rows onto the unit ball (the constraint of eq. 5);
- :func:`memory_attention`: memory-based attention translation vectors (LRML / HCML);
- :func:`reference_attention`: HCML's user-driven attention over relation vectors;
- :func:`distance_weighted_log_weights`: the 2-stage sampler's second-stage weights.

torch is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from recbench_builtin._training import validation_data  # noqa: F401 - re-exported


def sq_distances(a: Any, b: Any) -> Any:
    """Squared Euclidean distances: (B,) for a, b (B, D); (B, K) for a (B, D), b (B, K, D);
    (N, M) for a (N, D), b (M, D) when `b` is 2-D and of another length (all pairs)."""
    if b.dim() == 3:
        return ((a[:, None, :] - b) ** 2).sum(-1)
    if a.shape == b.shape:
        return ((a - b) ** 2).sum(-1)
    # all pairs: |a|^2 - 2 a.b + |b|^2, clamped at 0 against rounding
    return ((a * a).sum(-1)[:, None] - 2.0 * a @ b.T + (b * b).sum(-1)[None, :]).clamp_min(0.0)


def pairwise_sq_distances(a: Any, b: Any) -> Any:
    """(N, M) squared distances of every row of a (N, D) to every row of b (M, D), as
    |a|^2 - 2 a.b + |b|^2 clamped at 0 (one matrix product: shared negatives)."""
    return ((a * a).sum(-1)[:, None] - 2.0 * a @ b.T + (b * b).sum(-1)[None, :]).clamp_min(0.0)


def cml_hinge(d_pos: Any, d_neg: Any, margin: float, n_items: int, *,
              rank_weight: bool = True, reduction: str = "sum") -> Any:
    """The CML metric loss for B positive pairs and K sampled negatives each.

    ``d_pos`` (B,) and ``d_neg`` (B, K) are squared distances. A negative k is an
    impostor when ``margin + d_pos - d_neg[k] > 0``. With `rank_weight` each row is weighted
    by ``w = log(1 + floor(n_items * M / K))``, M the row's impostors (the WARP rank
    estimate of eq. 4; no gradient flows through w). `reduction`: "sum" sums the hinge over
    the K negatives (eq. 3); "hardest" keeps the closest negative only (the authors' code).
    Returns the mean over rows of ``w * hinge``.
    """
    import torch

    viol = margin + d_pos[:, None] - d_neg  # (B, K)
    if reduction == "hardest":
        per = torch.clamp(margin + d_pos - d_neg.min(dim=1).values, min=0.0)
    elif reduction == "sum":
        per = torch.clamp(viol, min=0.0).sum(dim=1)
    else:
        raise ValueError(f"cml_hinge: reduction must be 'sum' or 'hardest', got {reduction!r}")
    if rank_weight:
        impostors = (viol.detach() > 0).sum(dim=1).to(per.dtype)
        k = d_neg.shape[1]
        per = per * torch.log1p(torch.floor(n_items * impostors / k))
    return per.mean()


def distance_weighted_log_weights(anchors: Any, cands: Any, cutoff: float = 0.5) -> Any:
    """(A, C) log-weights log q(d)^-1 of distance-weighted sampling (Wu et al., ICCV 2017,
    eq. 4; the second stage of Tran et al., SIGIR 2019): rows of anchors (A, D) and cands
    (C, D) are L2-normalised, d = ||a - c|| on the unit sphere (d^2 = 2 - 2 cos), clipped
    below at `cutoff` (Wu et al.'s 0.5), and q(d) = d^(D-2) (1 - d^2/4)^((D-3)/2) is the
    density of d for uniform points; candidates with cos <= 0 get -inf (never drawn while
    others remain, as the authors' code masks them)."""
    import torch

    dim = anchors.shape[-1]
    a = torch.nn.functional.normalize(anchors, dim=-1)
    c = torch.nn.functional.normalize(cands, dim=-1)
    cos = a @ c.T
    d = torch.sqrt(torch.clamp(2.0 - 2.0 * cos, min=0.0)).clamp_min(cutoff)
    log_w = -(dim - 2) * torch.log(d) - 0.5 * (dim - 3) * torch.log1p(-d * d / 4.0)
    return torch.where(cos > 0, log_w, torch.full_like(log_w, float("-inf")))


def covariance_penalty(x: Any) -> Any:
    """De-correlation of the D dimensions of the rows of `x` (N, D): the sum of squared
    off-diagonal entries of the covariance C = (x - mean)^T (x - mean) / N, divided by N
    (CML section 3.4 writes (||C||_F - ||diag C||_2^2) / N; squaring the Frobenius norm makes
    it smooth and leaves its minimiser, a diagonal C, unchanged)."""
    n = x.shape[0]
    xc = x - x.mean(dim=0, keepdim=True)
    c = xc.T @ xc / n
    return ((c * c).sum() - (c.diagonal() ** 2).sum()) / n


def clip_rows_(weight: Any, rows: Any = None, max_norm: float = 1.0) -> None:
    """In place: rows `rows` (None = all) of `weight` with a norm above `max_norm` scaled
    onto the ball ``||x|| <= max_norm`` (CML eq. 5 constraint); other rows untouched."""
    import torch

    with torch.no_grad():
        if rows is None:  # in place, no gather / scatter copy
            weight.div_(torch.clamp(weight.norm(dim=1, keepdim=True) / max_norm, min=1.0))
            return
        r = torch.unique(rows)
        w = weight[r]
        norm = w.norm(dim=1, keepdim=True)
        weight[r] = w / torch.clamp(norm / max_norm, min=1.0)


def memory_attention(query: Any, keys: Any, memories: Any) -> tuple[Any, Any]:
    """Memory-based attention (Tay et al., WWW 2018, LRML; used by HCML, Tran et al. 2021):
    weights ``a = softmax(query @ keys^T)`` over the M memory slots and the translation
    ``r = a @ memories``. query (..., D), keys and memories (M, D). Returns (r, a)."""
    import torch

    a = torch.softmax(query @ keys.T, dim=-1)
    return a @ memories, a


def reference_attention(relations: Any, user: Any, valid: Any) -> tuple[Any, Any]:
    """The user-driven attention of HCML (Tran et al. 2021, section 3.3) over R relation
    vectors: weights ``alpha = softmax(<relations, user>)`` over the valid references
    (invalid ones get weight 0; a row with none valid gets all zeros) and their weighted
    sum. relations (..., R, D), user broadcastable to (..., D), valid (..., R) bool.
    Returns (sum (..., D), alpha (..., R))."""
    import torch

    logits = (relations * user[..., None, :]).sum(-1)
    logits = logits.masked_fill(~valid, float("-inf"))
    alpha = torch.softmax(logits, dim=-1)
    alpha = torch.nan_to_num(alpha, nan=0.0)  # rows without a valid reference
    return (alpha[..., None] * relations).sum(-2), alpha


def init_points(n: int, dim: int, gen: Any) -> Any:
    """(n, dim) float32 tensor ~ N(0, 1/dim), rows clipped into the unit ball (the
    authors' code draws the points with std 1/sqrt(dim))."""
    import torch

    w = torch.randn(n, dim, generator=gen) / math.sqrt(dim)
    return w / torch.clamp(w.norm(dim=1, keepdim=True), min=1.0)


def positive_pairs(train: Any) -> tuple[np.ndarray, np.ndarray]:
    """(users, songs) int64 of the stored positive entries of a users x songs matrix."""
    coo = train.tocoo()
    keep = coo.data > 0
    return coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)


def valid_auc(score: Any, valid: tuple) -> float:
    """Mean per-user ROC AUC of ``score(users, songs)`` on `valid` (see ``_training.validation_data``)."""
    from recbench.metrics import roc_auc_per_user

    users, songs, labels, mask = valid
    aucs = np.asarray(roc_auc_per_user(score(users, songs), labels, mask), dtype=float)
    return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")
