"""Baselines that need no audio: `random`, `popularity` (honest) and `popularity-oracle`."""

from __future__ import annotations

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext, Recommender


class RandomRecommender(Recommender):
    """Uniform random scores: the chance level (AUC 0.5 in expectation)."""

    name = "random"
    description = "Uniform random scores (chance level)"
    consumes = ()

    def fit(self, ctx: FitContext) -> None:
        self._seed = ctx.seed

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        # Seeded by the block's users so the result does not depend on chunking order.
        out = np.empty((len(users), len(songs)), dtype=np.float32)
        for r, u in enumerate(users):
            out[r] = np.random.default_rng((self._seed, int(u))).random(len(songs))
        return out


class PopularityRecommender(Recommender):
    """Songs ranked by their training play count (users who played them).

    On a cold-item split every test song has count zero: the scores tie and the AUC is
    exactly 0.5. That is the honest cold-start number.
    """

    name = "popularity"
    description = "Number of training listeners per song (chance on cold songs)"
    consumes = ("interactions",)

    def fit(self, ctx: FitContext) -> None:
        self._pop = np.asarray((ctx.train > 0).sum(axis=0)).ravel().astype(np.float32)

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self._pop[songs], (len(users), len(songs))).copy()


class PopularityOracle(PopularityRecommender):
    """Songs ranked by their listener count over all interactions, held-out ones included:
    the paper's Popularity row (an upper bound, not a cold-start model)."""

    name = "popularity-oracle"
    description = "Listener counts including held-out interactions (the paper's row; oracle)"
    consumes = ("interactions", "test_interactions")
    uses_test_interactions = True

    def fit(self, ctx: FitContext) -> None:
        self._pop = np.asarray((ctx.all_interactions > 0).sum(axis=0)).ravel().astype(
            np.float32)


@hookimpl
def recbench_register_recommenders(register):
    register(RandomRecommender)
    register(PopularityRecommender)
    register(PopularityOracle)
