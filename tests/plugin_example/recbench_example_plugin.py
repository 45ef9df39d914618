"""A third-party recbench plugin: shows how an outside package adds a recommender."""

import time

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.params import Param


class InversePopularity(Recommender):
    """Scores songs by minus their training listener count raised to `power`."""

    name = "example-inverse-popularity"
    description = "Third-party example: prefers the least played training songs"
    params = (
        Param("power", float, 1.0, "Exponent applied to listener counts", min=0.0),
        Param("sleep_s", float, 0.0, "Pause in fit (lets tests interrupt a run midway)", min=0),
        Param("fail", bool, False, "Raise in fit (lets tests check failed cells)"),
    )

    def fit(self, ctx: FitContext) -> None:
        if self.options["fail"]:
            raise RuntimeError("asked to fail")
        time.sleep(self.options["sleep_s"])
        listeners = np.asarray((ctx.train > 0).sum(axis=0)).ravel().astype(float)
        self._scores = -(listeners ** self.options["power"])

    def score(self, users, songs):
        return np.broadcast_to(self._scores[songs], (len(users), len(songs))).copy()


@hookimpl
def recbench_register_recommenders(register):
    register(InversePopularity)
