"""User cold-start baselines (issue 14): what a new user can honestly get.

- ``segment-popularity``: songs ranked by their listeners among the training users of the
  new user's demographic segment (the user categories, e.g. age band x gender); a segment
  with fewer than `min_segment` users, and unknown codes, back off to global popularity.
  Reads ``user_categories`` (side information).
- ``popularity-diverse``: pure cold start (k = 0, no side information): the global
  popularity ranking re-ranked greedily by maximal marginal relevance (Carbonell &
  Goldstein 1998) over the songs' co-listening cosine similarity, so that the top of the
  list covers several tastes instead of repeating one; the same list for every user.

Global popularity is the built-in ``popularity``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import FitContext
from recbench.params import Param
from recbench_builtin.recommenders._users import UsesMixin, listeners


class SegmentPopularity(UsesMixin):
    """Popularity within the user's demographic segment, backing off to global popularity."""

    name = "segment-popularity"
    description = "Listeners among the training users of the user's demographic segment"
    consumes = ("interactions",)
    side_info: ClassVar[tuple[str, ...]] = ("user_categories",)
    params = (
        Param("categories", list, None, "user categories defining a segment (unset: all the "
              "dataset's)", item_type=str),
        Param("min_segment", int, 20, "segments with fewer training users back off to "
              "global popularity", min=1),
    )

    def fit(self, ctx: FitContext) -> None:
        train = ctx.train.tocsr()
        cats = ctx.dataset.user_categories or {}
        names = self.options["categories"] or sorted(cats)
        missing = [n for n in names if n not in cats]
        if missing:
            from recbench.errors import ConfigError

            raise ConfigError(f"segment-popularity: the dataset has no user category "
                              f"{missing[0]!r} (it has {sorted(cats)})",
                              key="models.segment-popularity.categories")
        active = np.flatnonzero(np.diff(train.indptr) > 0)
        glob = listeners(train, active)
        glob = glob / max(len(active), 1)
        if not names:
            self.segment = np.zeros(train.shape[0], dtype=np.int64)
            self.scores = glob[None, :].astype(np.float32)
            return
        codes = np.stack([np.asarray(cats[n]) for n in names], axis=1)
        known = (codes >= 0).all(axis=1)
        keys, seg = np.unique(codes, axis=0, return_inverse=True)
        seg = np.where(known, seg.ravel(), -1)
        scores = np.repeat(glob[None, :], len(keys) + 1, axis=0)  # last row: global
        sizes = []
        for s in range(len(keys)):
            members = active[seg[active] == s]
            sizes.append(len(members))
            if len(members) >= self.options["min_segment"]:
                scores[s] = listeners(train, members) / len(members) + 1e-6 * glob
        seg[seg < 0] = len(keys)
        self.segment, self.scores = seg, scores.astype(np.float32)
        self.fit_info = {"segments": int(len(keys)), "categories": list(names),
                         "segments_backed_off": int(sum(n < self.options["min_segment"]
                                                        for n in sizes))}

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """The user's segment's listener share of each song."""
        return self.scores[self.segment[np.asarray(users)]][:, np.asarray(songs)]


def mmr_order(pop: np.ndarray, sim: np.ndarray, depth: int, lam: float) -> np.ndarray:
    """Greedy maximal-marginal-relevance order of the first `depth` songs: each step picks
    argmax lam * pop_i - (1 - lam) * max_j sim_ij over the songs j already picked (pop
    scaled to [0, 1]); ties go to the lower index."""
    pop = np.asarray(pop, dtype=np.float64)
    rel = pop / pop.max() if pop.max() > 0 else pop
    picked: list[int] = []
    max_sim = np.zeros(len(pop))
    free = np.ones(len(pop), dtype=bool)
    for _ in range(min(depth, len(pop))):
        gain = np.where(free, lam * rel - (1 - lam) * max_sim, -np.inf)
        i = int(np.argmax(gain))
        picked.append(i)
        free[i] = False
        max_sim = np.maximum(max_sim, sim[i])
    return np.asarray(picked, dtype=np.int64)


class DiversePopularity(UsesMixin):
    """Popularity re-ranked by maximal marginal relevance over co-listening similarity."""

    name = "popularity-diverse"
    description = "Global popularity re-ranked for diversity (MMR over co-listening)"
    consumes = ("interactions",)
    params = (
        Param("trade_off", float, 0.7, "lambda: weight of popularity against novelty "
              "(1 = plain popularity)", min=0.0, max=1.0),
        Param("depth", int, 100, "songs re-ranked at the top; the rest follow by popularity",
              min=1),
    )

    def fit(self, ctx: FitContext) -> None:
        train = sp.csr_matrix(ctx.train > 0, dtype=np.float32)
        pop = listeners(train)
        depth = min(self.options["depth"], train.shape[1])
        top = np.argsort(-pop, kind="stable")[:depth]
        cols = train[:, top].tocsc()
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(axis=0)).ravel())
        co = (cols.T @ cols).toarray() / np.maximum(np.outer(norms, norms), 1e-12)
        order = top[mmr_order(pop[top], co, depth, self.options["trade_off"])]
        score = pop / max(pop.max(), 1.0)  # below every re-ranked song
        score[order] = 2.0 + np.arange(len(order))[::-1]
        self._score = score.astype(np.float32)

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """The same diversified list for every user."""
        return np.broadcast_to(self._score[np.asarray(songs)],
                               (len(users), len(songs))).copy()


@hookimpl
def recbench_register_recommenders(register):
    register(SegmentPopularity)
    register(DiversePopularity)
