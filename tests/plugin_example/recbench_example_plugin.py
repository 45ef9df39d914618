"""A third-party recbench plugin: shows how an outside package adds a recommender."""

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.params import Param


class InversePopularity(Recommender):
    """Scores songs by minus their training listener count raised to `power`."""

    name = "example-inverse-popularity"
    description = "Third-party example: prefers the least played training songs"
    params = (Param("power", float, 1.0, "Exponent applied to listener counts", min=0.0),)

    def fit(self, ctx: FitContext) -> None:
        listeners = np.asarray((ctx.train > 0).sum(axis=0)).ravel().astype(float)
        self._scores = -(listeners ** self.options["power"])

    def score(self, users, songs):
        return np.broadcast_to(self._scores[songs], (len(users), len(songs))).copy()


@hookimpl
def recbench_register_recommenders(register):
    register(InversePopularity)
