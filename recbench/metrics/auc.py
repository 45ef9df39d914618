"""Per-user ROC AUC, exact (ties count 1/2)."""

from __future__ import annotations

import numpy as np

from .blocks import DEFAULT_CHUNK, _as_block, _chunks
from .chunk import _Chunk

def roc_auc_per_user(scores, labels, mask=None, *, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """Exact ROC AUC of each user's candidates: (U,) float64.

    AUC = P(score of a positive > score of a negative) + 1/2 P(tie), i.e. the
    Mann-Whitney U statistic with average ranks over the user's candidate songs, divided
    by n_pos * n_neg (identical to ``sklearn.metrics.roc_auc_score`` on the row). NaN for
    users with no positive or no negative candidate.

    Method: per chunk of users, sort order-preserving uint32 keys of each row, lay the rows
    end to end as uint64 ``row << 32 | key`` (a globally sorted haystack), and find each
    positive's tie range with one ``searchsorted`` (left and right) over the sorted
    positives' keys. Masked pairs get the largest key so they sort after every candidate.
    """
    s, y, m = _as_block(scores, labels, mask)
    n_users, n_items = s.shape
    out = np.full(n_users, np.nan)
    for a, b in _chunks(n_users, chunk):
        ch = _Chunk(s[a:b], y[a:b], None if m is None else m[a:b])
        ch.keep_keys = False
        out[a:b] = ch.auc()
    return out
