"""Exploration policies for pure user cold start (issue 14 item 2: k = 0, no side info).

A brand-new user has no history, so a policy can only choose what to show from what the
warm users did; these models say so through their action distribution ``policy(users,
songs)`` (rows sum to 1), which the ``off-policy`` task evaluates on the logged first
sessions of new users (replay / inverse-propensity evaluation: Li, Chu, Langford and Wang,
WWW 2010 section 4 and WSDM 2011). Their ``score`` is the exploit ranking (what a ranking
task sees). Every model is context-free: the same distribution for every new user.

- ``epsilon-greedy-popularity``: the most played song with probability 1 - epsilon, a
  uniformly random one otherwise (the context-free epsilon-greedy baseline of Li et al.
  WWW 2010, section 5). Reads the warm users' plays.
- ``boltzmann-popularity``: softmax (Boltzmann) exploration (Sutton and Barto,
  "Reinforcement Learning: An Introduction", 1998, section 2.3): P(i) proportional to
  ``(listeners_i + 1) ** (1 / temperature)``; temperature 1 shows songs in proportion to
  their audience, towards 0 it is greedy. Reads the warm users' plays.
- ``thompson-bandit``: Thompson sampling for a Bernoulli bandit (Chapelle and Li, NeurIPS
  2011, "An empirical evaluation of Thompson sampling", algorithm 2): each song's reward
  rate theta_i has a Beta(a0 + successes, b0 + failures) posterior, and the policy shows
  the song whose sampled theta is largest, i.e. song i with probability
  ``P(theta_i = max_j theta_j) = int f_i(x) prod_{j != i} F_j(x) dx``, computed here by
  quadrature (exact up to the grid), so the target policy's probabilities are known.
  ``evidence = "exposures"``: successes / failures = plays / skips of the warm users'
  logged exposures (reads their event log: the skips); ``"listeners"``: training
  listeners / warm users who did not play the song (reads the plays only). The log's
  exposures are not random (the platform shows users what it thinks they like), so
  "exposures" overstates the rate of niche songs for a random new user: the posterior
  is of the logged rate, as a deployed bandit warmed up on that log would have it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import FitContext
from recbench.params import Param
from recbench_builtin.recommenders._users import UsesMixin, listeners


def _greedy(values: np.ndarray) -> np.ndarray:
    top = values == values.max()
    return top / top.sum()


class _ContextFree(UsesMixin):
    """A policy that gives every new user the same distribution over songs."""

    consumes = ("interactions",)
    _value: np.ndarray  # (n_songs,) the exploit score
    _prob: np.ndarray  # (n_songs,) the action distribution over every song

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """The exploit score of each song, the same for every user: (U, I)."""
        return np.broadcast_to(self._value[np.asarray(songs)],
                               (len(users), len(songs))).astype(np.float32)

    def policy(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(U, I) probabilities of showing each of `songs` (renormalised over them)."""
        p = self._prob[np.asarray(songs)]
        p = p / p.sum() if p.sum() > 0 else np.full(len(p), 1.0 / len(p))
        return np.broadcast_to(p, (len(users), len(songs))).copy()

    def fit_report(self) -> dict[str, Any]:
        """Fit facts plus the policy's entropy (nats) and largest action probability."""
        p = self._prob[self._prob > 0]
        return {**super().fit_report(), "policy_entropy": float(-(p * np.log(p)).sum()),
                "policy_max_prob": float(p.max())}


class EpsilonGreedyPopularity(_ContextFree):
    """Most played song with probability 1 - epsilon, else a uniformly random song."""

    name = "epsilon-greedy-popularity"
    description = "Epsilon-greedy over global popularity (exploration for new users)"
    params = (Param("epsilon", float, 0.1, "probability of a uniformly random song",
                    min=0.0, max=1.0),)

    def fit(self, ctx: FitContext) -> None:
        self._value = listeners(ctx.train)
        eps = self.options["epsilon"]
        self._prob = (1.0 - eps) * _greedy(self._value) + eps / len(self._value)


class BoltzmannPopularity(_ContextFree):
    """Songs shown with probability proportional to (listeners + 1) ** (1 / temperature)."""

    name = "boltzmann-popularity"
    description = "Softmax (Boltzmann) exploration over log popularity for new users"
    params = (Param("temperature", float, 1.0, "1: in proportion to listeners; towards "
                    "0: greedy", min=1e-3),)

    def fit(self, ctx: FitContext) -> None:
        self._value = listeners(ctx.train)
        logit = np.log1p(self._value) / self.options["temperature"]
        e = np.exp(logit - logit.max())
        self._prob = e / e.sum()


def prob_of_max_beta(a: np.ndarray, b: np.ndarray, grid: int = 4000) -> np.ndarray:
    """P(theta_i is the largest) for independent theta_i ~ Beta(a_i, b_i): (n,), sums to 1.

    ``int f_i(x) prod_{j != i} F_j(x) dx`` by the midpoint rule on `grid` points of the
    range where the posteriors have mass (renormalised for the quadrature error)."""
    from scipy.stats import beta

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    lo = float(beta.ppf(1e-9, a, b).max()) if len(a) > 1 else 0.0  # below: some F_j ~ 0
    hi = float(beta.isf(1e-12, a, b).max())
    x = lo + (hi - lo) * (np.arange(grid) + 0.5) / grid
    log_cdf = beta.logcdf(x[None, :], a[:, None], b[:, None])  # (n, grid)
    log_pdf = beta.logpdf(x[None, :], a[:, None], b[:, None])
    others = log_cdf.sum(axis=0)[None, :] - log_cdf  # log prod_{j != i} F_j(x)
    p = np.exp(log_pdf + others).sum(axis=1)
    return p / p.sum()


class ThompsonBandit(_ContextFree):
    """Thompson sampling over songs with Beta-Bernoulli posteriors of their reward rate."""

    name = "thompson-bandit"
    description = "Thompson sampling (Beta-Bernoulli) over songs for new users"
    params = (
        Param("evidence", str, "exposures", "successes / failures per song: plays / skips "
              "of the warm users' logged exposures (reads events), or listeners / "
              "non-listeners among warm users", choices=("exposures", "listeners")),
        Param("prior_a", float, 1.0, "Beta prior successes", min=1e-3),
        Param("prior_b", float, 1.0, "Beta prior failures", min=1e-3),
        Param("grid", int, 4000, "quadrature points of P(song is the sampled max)", min=100),
    )

    def uses(self) -> list[str]:
        """Plays, and the warm users' event log with ``evidence = "exposures"``."""
        extra = ["events"] if self.options["evidence"] == "exposures" else []
        return list(type(self).consumes) + extra

    def fit(self, ctx: FitContext) -> None:
        train = sp.csr_matrix(ctx.train)
        warm = np.asarray(ctx.split.train_users, dtype=np.int64)
        if self.options["evidence"] == "listeners":
            succ = listeners(train, warm)
            fail = len(warm) - succ
        else:
            ev = ctx.dataset.events
            if ev is None:
                from recbench.errors import DataError

                raise DataError("thompson-bandit: evidence = 'exposures' needs a dataset "
                                "with an event log (synth-msd: skip_strength)")
            keep = np.isin(ev.user, warm)  # never a held-out user's events
            n = ctx.dataset.n_songs
            succ = np.bincount(ev.song[keep], weights=~ev.skipped[keep], minlength=n)
            fail = np.bincount(ev.song[keep], weights=ev.skipped[keep], minlength=n)
        a, b = self.options["prior_a"] + succ, self.options["prior_b"] + fail
        self._value = a / (a + b)  # posterior mean: the exploit ranking
        self._prob = prob_of_max_beta(a, b, self.options["grid"])
        self.fit_info = {"evidence_trials_mean": float((succ + fail).mean())}


@hookimpl
def recbench_register_recommenders(register):
    register(EpsilonGreedyPopularity)
    register(BoltzmannPopularity)
    register(ThompsonBandit)
