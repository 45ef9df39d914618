"""Negative samplers: draw songs a user is assumed not to like.

- ``uniform``: uniform over the songs given to ``prepare`` (the training songs).
- ``popularity``: proportional to (number of training listeners) ** exponent (0.75, as
  word2vec's unigram distribution): popular songs are harder negatives and popularity is
  not audible, so a content model must learn to discount it.
- ``two-stage``: a candidate pool drawn uniformly (or by popularity), scored by the model,
  then n kept per row: the n highest (``selection = "top"``), or n drawn without
  replacement with probability proportional to exp(score) (``selection = "sample"``: the
  scores are log-weights, as the distance-weighted second stage of Tran et al., SIGIR 2019,
  section 3, needs). ``pool_replacement = false`` draws the pool without replacement (the
  authors' code). Without a scorer it falls back to the first stage.

All samplers are vectorised numpy. ``exclude_positives`` (default off, for speed) redraws
negatives that the user played in training; with it off a negative is a positive with
probability about (user's songs / catalogue), which the paper-scale data makes small
(~1 % for an active user of the 10,000-song subset). With it on, clashing draws are redrawn
from the sampler's distribution (up to 10 rounds), then the rare leftovers uniformly from
the user's unplayed songs; only a user who played every candidate keeps positives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from recbench import hookimpl
from recbench.components import Sampler
from recbench.errors import DataError
from recbench.params import Param

_REDRAW_ROUNDS = 10
_DENSE_LOOKUP_MAX = 50_000_000  # users x songs cells up to which positives are a bool table


class _Base(Sampler):
    """Shared preparation: the candidate songs and (optionally) the users' positives."""

    def prepare(self, train, songs: np.ndarray) -> None:
        """Remember `songs` (int indices negatives may come from) and, when excluding
        positives, the sorted keys user * n_songs + song of the training interactions."""
        self.songs = np.asarray(songs, dtype=np.int64)
        if self.songs.size == 0:
            raise DataError(f"sampler.{self.name}: no songs to draw negatives from")
        self._n_cols = int(train.shape[1])
        self._pos_keys = None
        self._pos_dense = None
        if self.options.get("exclude_positives"):
            coo = train.tocoo()
            keys = coo.row.astype(np.int64) * self._n_cols + coo.col.astype(np.int64)
            self._pos_keys = np.unique(keys[coo.data > 0])
            if train.shape[0] * train.shape[1] <= _DENSE_LOOKUP_MAX:
                # users x songs bool table: one gather per look-up instead of a binary
                # search per key (same answers; ~2 MB for 2000 x 1000)
                self._pos_dense = np.zeros(train.shape, dtype=bool)
                self._pos_dense.ravel()[self._pos_keys] = True

    def _is_positive(self, users: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        """Bool (len(users), n): whether drawn[i, j] is a training positive of users[i]."""
        if self._pos_dense is not None:
            return self._pos_dense[users.astype(np.int64)[:, None], drawn]
        keys = users.astype(np.int64)[:, None] * self._n_cols + drawn
        if len(self._pos_keys) == 0:
            return np.zeros(keys.shape, dtype=bool)
        idx = np.minimum(np.searchsorted(self._pos_keys, keys), len(self._pos_keys) - 1)
        return self._pos_keys[idx] == keys

    def _draw(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Song indices of `shape` from this sampler's first-stage distribution."""
        return self.songs[rng.integers(0, len(self.songs), size=shape)]

    def _sample_first_stage(self, users: np.ndarray, n: int,
                            rng: np.random.Generator) -> np.ndarray:
        users = np.asarray(users)
        out = self._draw((len(users), n), rng)
        if self._pos_keys is not None:
            for _ in range(_REDRAW_ROUNDS):
                bad = self._is_positive(users, out)
                if not bad.any():
                    return out
                out[bad] = self._draw((int(bad.sum()), 1), rng)[:, 0]
            # Rare leftovers (users who played most heavy-weight songs): uniform over the
            # user's non-positive songs, one row at a time.
            bad = self._is_positive(users, out)
            for r in np.flatnonzero(bad.any(axis=1)):
                played = self._is_positive(users[r:r + 1], self.songs[None, :])[0]
                free = self.songs[~played]
                if free.size:
                    out[r, bad[r]] = free[rng.integers(0, free.size, size=int(bad[r].sum()))]
        return out


def _exclude_param() -> Param:
    return Param("exclude_positives", bool, False,
                 help="redraw negatives the user played in training (off: faster)")


class UniformSampler(_Base):
    """Negatives uniform over the prepared songs. Returns int64 (len(users), n)."""

    name = "uniform"
    description = "Negatives uniform over the training songs"
    params = (_exclude_param(),)

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator,
               scorer: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
               ) -> np.ndarray:
        """Song indices (len(users), n)."""
        return self._sample_first_stage(users, n, rng)


class PopularitySampler(_Base):
    """Negatives with probability proportional to listeners ** exponent, where listeners is
    the number of training users who played the song (play counts binarised). Songs no one
    played in training are never drawn; if no prepared song has a listener, uniform."""

    name = "popularity"
    description = "Negatives proportional to (training listeners) ** 0.75"
    params = (
        Param("exponent", float, 0.75, min=0.0, help="power on the listener count"),
        _exclude_param(),
    )

    def prepare(self, train, songs: np.ndarray) -> None:
        super().prepare(train, songs)
        listeners = np.asarray((train > 0).sum(axis=0)).ravel()[self.songs].astype(np.float64)
        w = np.where(listeners > 0, listeners ** self.options["exponent"], 0.0)
        if w.sum() <= 0:
            w = np.ones_like(w)
        self.probabilities = w / w.sum()  # aligned with self.songs
        self._cdf = np.cumsum(self.probabilities)
        self._cdf[-1] = 1.0

    def _draw(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        # Inverse-CDF sampling: one uniform per draw, O(log songs) each.
        idx = np.searchsorted(self._cdf, rng.random(shape), side="right")
        return self.songs[np.minimum(idx, len(self.songs) - 1)]

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator,
               scorer: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
               ) -> np.ndarray:
        """Song indices (len(users), n)."""
        return self._sample_first_stage(users, n, rng)


class TwoStageSampler(PopularitySampler):
    """Two-stage sampling: draw one pool of `pool_size` candidate songs for the batch
    (uniformly by default, or by popularity), score it with ``scorer(rows, pool)`` -> (U,
    pool_size), rows = `anchors` when given (e.g. the positive songs) else `users`, and keep
    n candidates per row: the n highest-scored (``selection = "top"``), or n drawn without
    replacement with probability proportional to exp(score) (``"sample"``; -inf = never,
    unless fewer than n candidates are finite). With ``scorer=None`` it returns n
    first-stage draws per user."""

    name = "two-stage"
    description = "Pool drawn uniformly, scored by the model; the n highest-scored kept"
    params = (
        Param("pool_size", int, 100, min=1,
              help="candidates drawn per batch in the first stage (raised to n if smaller)"),
        Param("first_stage", str, "uniform", choices=("uniform", "popularity"),
              help="distribution of the candidate pool"),
        Param("exponent", float, 0.75, min=0.0,
              help="power on listener counts when first_stage = popularity"),
        Param("pool_replacement", bool, True,
              help="draw the pool with replacement (false: distinct songs, as Tran et al.)"),
        Param("selection", str, "top", choices=("top", "sample"),
              help="keep the n top-scored, or draw n with probability ~ exp(score)"),
        _exclude_param(),
    )

    def _draw(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        if self.options["first_stage"] == "popularity":
            return super()._draw(shape, rng)
        return _Base._draw(self, shape, rng)

    def _pool(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """One pool of `size` songs from the first-stage distribution; without replacement
        by Gumbel-top-k on the log-probabilities (Efraimidis-Spirakis)."""
        if self.options["pool_replacement"]:
            return self._draw((1, size), rng)[0]
        if self.options["first_stage"] == "popularity":
            with np.errstate(divide="ignore"):
                logp = np.log(self.probabilities)
        else:
            logp = np.zeros(len(self.songs))
        size = min(size, int(np.isfinite(logp).sum()))
        keys = logp + rng.gumbel(size=len(logp))
        return self.songs[np.argsort(-keys, kind="stable")[:size]]

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator,
               scorer: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
               anchors: np.ndarray | None = None) -> np.ndarray:
        """Song indices (len(users), n): per user, n songs of the pool chosen by their
        scores (see the class docstring)."""
        users = np.asarray(users)
        if scorer is None:
            return self._sample_first_stage(users, n, rng)
        pool = self._pool(max(self.options["pool_size"], n), rng)
        if len(pool) < n:  # fewer songs with listeners than n: pad by uniform draws
            pool = np.concatenate([pool, _Base._draw(self, (1, n - len(pool)), rng)[0]])
        rows = users if anchors is None else np.asarray(anchors)
        scores = np.array(scorer(rows, pool), dtype=np.float64, copy=True)
        if scores.shape != (len(users), len(pool)):
            raise ValueError(f"sampler.two-stage: scorer returned {scores.shape}, expected "
                             f"{(len(users), len(pool))}")
        if self._pos_keys is not None:
            scores[self._is_positive(users, np.broadcast_to(pool, scores.shape))] = -np.inf
        if self.options["selection"] == "sample":
            return pool[select_by_weight(scores, n, rng)]
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        # Highest first, ties broken by pool position: deterministic.
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        return pool[np.take_along_axis(top, order, axis=1)]


def select_by_weight(log_w: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(R, n) column indices drawn per row without replacement with probability
    proportional to exp(log_w) (Gumbel-top-k; successive draws are the sequential
    weighted draws without replacement). -inf entries come last: drawn only when a row has
    fewer than n finite ones (then uniformly among them)."""
    g = rng.gumbel(size=log_w.shape)
    fin = np.isfinite(log_w)
    keys = np.where(fin, log_w + g, g)  # among -inf entries: a uniform order
    if n >= log_w.shape[1] or not (fin.sum(axis=1) >= n).all():
        return np.lexsort((-keys, ~fin), axis=-1)[:, :n]
    # Every row has n finite keys: its n largest, in decreasing order (the lexsort's first n
    # columns; Gumbel keys tie with probability 0), by a partial sort.
    top = np.argpartition(np.where(fin, -keys, np.inf), n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


@hookimpl
def recbench_register_samplers(register):
    register(UniformSampler)
    register(PopularitySampler)
    register(TwoStageSampler)
