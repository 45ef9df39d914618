"""Next-track baselines (issue 14): the last played track's neighbours and popularity.

- ``last-item-sim``: item-based next-track recommendation: candidates ranked by the cosine
  similarity of their training listeners (users x songs, binary) with the last track the
  user played (not skipped) in the history; an empty history falls back to popularity.
- ``seq-popularity``: training plays per song (events when the split has them), whatever
  the history: the floor every sequential model must beat.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.params import Param
from recbench_builtin.sequential._data import SequentialMixin, training_histories


class _HistoryModel(SequentialMixin, Recommender):
    """Keeps the training histories; `score` = `score_next` after them."""

    consumes = ("interactions",)

    def _keep(self, ctx: FitContext) -> None:
        self._hist = training_histories(ctx.dataset, ctx.split, ctx.seed)
        self._record_uses(ctx.dataset, ctx.split)
        plays = np.zeros(ctx.dataset.n_songs)
        for songs, skipped in self._hist:
            np.add.at(plays, songs[~skipped], 1.0)
        self._pop = plays / max(plays.max(), 1.0)

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """The next-track scores after each user's training history."""
        return self.score_next([self._hist[u] for u in np.asarray(users)], songs)


class LastItemSimilarity(_HistoryModel):
    """Cosine similarity of co-listening with the last played track (+ popularity ties)."""

    name = "last-item-sim"
    description = "Co-listening cosine similarity with the last played track"
    params = (
        Param("popularity_weight", float, 1e-3, "popularity added to break ties", min=0.0),
    )

    def fit(self, ctx: FitContext) -> None:
        self._keep(ctx)
        m = sp.csr_matrix(ctx.train > 0, dtype=np.float32).tocsc()
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel())
        self._m, self._inv = m, 1.0 / np.maximum(norms, 1e-12)

    def score_next(self, histories, songs: np.ndarray) -> np.ndarray:
        """Similarity of each candidate with the history's last played track."""
        songs = np.asarray(songs)
        last = np.array([s[~k][-1] if (~k).any() else -1
                         for s, k in ((np.asarray(h[0]), np.asarray(h[1], bool))
                                      for h in histories)], dtype=np.int64)
        out = np.zeros((len(histories), len(songs)), np.float32)
        has = last >= 0
        if has.any():
            co = (self._m[:, last[has]].T @ self._m[:, songs]).toarray()
            out[has] = co * self._inv[last[has]][:, None] * self._inv[songs][None, :]
        return out + self.options["popularity_weight"] * self._pop[songs][None, :]


class SequentialPopularity(_HistoryModel):
    """Training plays per song, for every history."""

    name = "seq-popularity"
    description = "Training plays per song (ignores the history)"

    def fit(self, ctx: FitContext) -> None:
        self._keep(ctx)

    def score_next(self, histories, songs: np.ndarray) -> np.ndarray:
        """The songs' play share, the same for every history."""
        return np.broadcast_to(self._pop[np.asarray(songs)],
                               (len(histories), len(songs))).astype(np.float32)


@hookimpl
def recbench_register_recommenders(register):
    register(LastItemSimilarity)
    register(SequentialPopularity)
