"""The `synth-msd` platform as a bandit: its logging policy and its reward law (issue 14).

With ``log_propensities = true`` (and sessions: ``skip_strength``) every event records
``events.propensity``: the probability with which the platform's exposure law showed that
track. The exposure law is the one :func:`synth_sessions.sessions` draws from, with
replacement, independently for every slot of every session::

    P(song i | user u) = softmax_i(taste_scale * affinity(u, i) + log_pop_i)

a softmax over every song, so every song has p > 0 (full support, what inverse propensity
scoring needs). With ``logging_uniform = e`` (a randomised logging policy, as a platform
that serves a share of its traffic at random to evaluate offline: Li et al., WWW 2010,
section 4), a slot is drawn from ``(1 - e) P + e / n_songs``: the worst propensity is then
at least e / n_songs, which bounds the importance weights. The law reads the user's hidden
taste: the evaluation needs only the logged track's probability, never the policy itself.
The few "orphan" events (a song nobody played, given to its best-matching user in a last
session of its own, not drawn) get the same law's probability of that (user, song) pair,
and ``RewardOracle.drawn`` marks them (the off-policy task leaves them out of the log).

:func:`play_probability` is the reward law, the simulator's own probability that a user
plays (does not skip) a track shown in a slot, for any candidate track: the skip logit of
synth_sessions.sessions (``skip_cause`` taste or aversion, with the previous track's
similarity) with the standardisation constants of the generated log. It is the oracle behind
the true value of a policy (a diagnostic only a simulator can give). It leaves out one
intervention of the generator: a user whose every track was skipped gets their first track
counted as played (with about 48 tracks per user at a 25 % skip rate, a chance below 1e-20).
Its agreement with the generated skips is a test (tests/test_off_policy_synth.py): a change
of the skip law in synth_side must be made here too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench.errors import DataError


def exposure_probability(t: np.ndarray, style: np.ndarray, log_pop: np.ndarray,
                         taste_scale: float, user: np.ndarray, song: np.ndarray,
                         uniform: float = 0.0, chunk: int = 500) -> np.ndarray:
    """float64 (n,): P(song[j] | user[j]) under the exposure law (see the module), computed
    as synth_sessions.sessions draws: ``exp(logits - max)`` normalised by its sum, mixed with
    the uniform law by the share `uniform`.

    t: users x 16 taste, style: songs x 16 (``synth_taste.taste_vectors``); user, song: (n,)
    positions."""
    user, song = np.asarray(user, np.int64), np.asarray(song, np.int64)
    out = np.empty(len(user), dtype=np.float64)
    uniq, inv = np.unique(user, return_inverse=True)
    for start in range(0, len(uniq), chunk):
        rows = uniq[start:start + chunk]
        logits = taste_scale * (t[rows] @ style.T) + log_pop[None, :]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        if uniform:
            p = (1.0 - uniform) * p + uniform / p.shape[1]
        sel = np.flatnonzero((inv >= start) & (inv < start + len(rows)))
        out[sel] = p[inv[sel] - start, song[sel]]
    return out


def supports(dataset: Any) -> bool:
    """Whether `dataset` is a synth-msd log with propensities whose skip law the oracle
    models (``skip_cause`` taste or aversion; not the session mood, whose skips depend on
    the session's earlier tracks)."""
    m = getattr(dataset, "manifest", None) or {}
    return (bool(getattr(dataset, "synthetic", False)) and m.get("generator", "").startswith(
        "synth-msd") and bool(m.get("log_propensities")) and "skip_strength" in m
            and m.get("skip_cause", "taste") in ("taste", "aversion"))


class RewardOracle:
    """The simulator's play probabilities for a synth-msd dataset with propensities.

    Rebuilds the world and the users' taste from ``dataset.manifest`` (the generator's
    configuration), checks that it reproduces the logged propensities, and fixes the skip
    law's standardisation constants from the generated log.
    """

    def __init__(self, dataset: Any):
        from . import synth_side
        from .synth_msd import make_songs
        from .synth_taste import make_taste, taste_vectors

        if not supports(dataset):
            raise DataError(f"dataset {getattr(dataset, 'name', '?')!r}: the reward oracle "
                            "needs synth-msd with skip_strength and log_propensities, "
                            "and skip_cause taste or aversion")
        cfg = dict(dataset.manifest)
        self.cfg, ev = cfg, dataset.events
        world = make_songs(cfg["seed"], cfg["songs"])
        world, _, _ = synth_side.restyle(cfg, world)
        taste = make_taste(cfg["seed"], cfg["users"], world, cfg["audible_share"])
        self.t, self.style = taste_vectors(taste)
        self.log_pop = world["log_pop"]
        probe = np.arange(min(len(ev), 5000))
        p = exposure_probability(self.t, self.style, self.log_pop, cfg["taste_scale"],
                                 ev.user[probe], ev.song[probe],
                                 cfg.get("logging_uniform", 0.0))
        if not np.allclose(p, ev.propensity[probe], rtol=1e-8, atol=0):
            raise DataError("synth-msd reward oracle: the rebuilt world does not reproduce "
                            "the logged propensities (generator changed?)")
        # the regular (drawn) events: sessions numbered before the orphans' own sessions
        r = np.random.default_rng([cfg["seed"], 24])
        n_sess = 1 + r.poisson(max(cfg["sessions_per_user"] - 1, 0), size=cfg["users"])
        self.drawn = ev.session < int(n_sess.sum())  # False: an orphan event (not drawn)
        reg = np.flatnonzero(self.drawn)
        self.events = ev
        self.prev = np.full(len(ev), -1, dtype=np.int64)  # previous event of the session
        same = np.r_[False, ev.session[1:] == ev.session[:-1]]
        self.prev[np.flatnonzero(same)] = np.flatnonzero(same) - 1
        cause = self._cause(ev.user[reg], ev.song[reg])
        self.c_mean, self.c_sd = float(cause.mean()), max(float(cause.std()), 1e-12)
        later = reg[self.prev[reg] >= 0]
        sim = self._sim(ev.song[self.prev[later]], ev.song[later])
        self.s_mean = float(sim.mean()) if len(sim) else 0.0
        self.s_sd = max(float(sim.std()), 1e-12) if len(sim) else 1.0

    def _cause(self, user: np.ndarray, song: np.ndarray) -> np.ndarray:
        """Per pair, what skips depend on: affinity (taste) or aversion."""
        from .synth_sessions import aversion

        if self.cfg.get("skip_cause", "taste") == "aversion":
            return aversion(self.cfg["seed"], self.cfg["users"], self.style,
                                       user, song)
        return np.einsum("ij,ij->i", self.t[user], self.style[song])

    def _sim(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        unit = self.style / np.maximum(np.linalg.norm(self.style, axis=1, keepdims=True),
                                       1e-12)
        return np.einsum("ij,ij->i", unit[a], unit[b])

    def play_probability(self, slots: np.ndarray, songs: np.ndarray | None = None
                         ) -> np.ndarray:
        """P(played | the slot's user and previous track, track shown).

        slots: (n,) event indices (the slot: user, position in the session); songs: (m,)
        candidate tracks -> (n, m); None -> (n,) for each slot's logged track."""
        cfg, ev = self.cfg, self.events
        slots = np.asarray(slots, np.int64)
        rate = float(cfg["skip_rate"])
        sign = 1.0 if cfg.get("skip_cause", "taste") == "aversion" else -1.0
        if songs is None:
            u, s, prev = ev.user[slots], ev.song[slots], self.prev[slots]
        else:
            m = len(songs)
            u = np.repeat(ev.user[slots], m)
            s = np.tile(np.asarray(songs, np.int64), len(slots))
            prev = np.repeat(self.prev[slots], m)
        z_c = (self._cause(u, s) - self.c_mean) / self.c_sd
        z_s = np.zeros(len(u))
        has = prev >= 0
        z_s[has] = (self._sim(ev.song[prev[has]], s[has]) - self.s_mean) / self.s_sd
        logit = (np.log(rate / (1 - rate)) + sign * 2.0 * cfg["skip_strength"] * z_c
                 - 2.0 * cfg["skip_prev_strength"] * z_s)
        p = 1.0 - 1.0 / (1.0 + np.exp(-logit))
        return p if songs is None else p.reshape(len(slots), len(songs))
