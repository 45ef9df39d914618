"""Listening histories for sequential models and the sequential task.

A history is a pair ``(songs, skipped)`` of 1-D arrays in time order, or a triple
``(songs, skipped, now)`` whose boolean ``now`` flags the events of the session that the
next track continues (the sequential task passes it; absent: none). What a model may
train on:

- with a :class:`recbench_builtin.splits_users.SessionSplit` (``next-session``): the
  events of the training part (``event_part == 0``), skips included;
- with another split and an event log: the unskipped events whose (user, song) pair is in
  training, and no skips (other splits hold pairs, not events: a skip cannot be placed);
- without an event log: each user's training songs in a seeded random order, no skips.
"""

from __future__ import annotations

from typing import Any

import numpy as np

History = tuple[np.ndarray, ...]


class SequentialMixin:
    """Marks a recommender as sequential: it scores candidates after a listening history.
    Its fit report says what it read (``uses``: the consumes, plus "events" and "skips"
    when the training histories came from an event log with skips)."""

    sequential = True

    def _record_uses(self, dataset: Any, split: Any) -> None:
        ev = getattr(dataset, "events", None)
        extra = []
        if ev is not None and len(ev):
            extra.append("events")
            if getattr(split, "event_part", None) is not None and ev.skipped.any():
                extra.append("skips")
        self._uses = list(type(self).consumes) + extra

    def fit_report(self) -> dict[str, Any]:
        """The fit facts plus ``uses`` (see the class)."""
        base = super().fit_report()  # type: ignore[misc]
        return {**base, "uses": list(getattr(self, "_uses", type(self).consumes))}

    def score_next(self, histories: list[History], songs: np.ndarray) -> np.ndarray:
        """(len(histories), len(songs)) float scores of each candidate as the next track."""
        raise NotImplementedError


def training_histories(dataset: Any, split: Any, seed: int, parts=(0,)) -> list[History]:
    """One history per user (index = user position), from the training data (see module)."""
    n_users = dataset.counts.shape[0]
    ev = getattr(dataset, "events", None)
    train = split.train.tocsr()
    empty = (np.zeros(0, np.int64), np.zeros(0, bool))
    if ev is None or not len(ev):
        rng = np.random.default_rng(seed)
        out = []
        for u in range(n_users):
            songs = train.indices[train.indptr[u]:train.indptr[u + 1]].astype(np.int64)
            out.append((rng.permutation(songs), np.zeros(len(songs), bool)))
        return out
    part = getattr(split, "event_part", None)
    if part is not None and len(part) == len(ev):
        keep = np.isin(part, parts)
    else:
        keep = ~ev.skipped & (np.asarray(train[ev.user, ev.song]).ravel() > 0)
    user, song, skipped = ev.user[keep], ev.song[keep], ev.skipped[keep]
    bounds = np.searchsorted(user, np.arange(n_users + 1))
    return [(song[bounds[u]:bounds[u + 1]], skipped[bounds[u]:bounds[u + 1]])
            if bounds[u + 1] > bounds[u] else empty for u in range(n_users)]


def session_ids(dataset: Any, split: Any, parts=(0,)) -> list[np.ndarray] | None:
    """Per user, the session id of each event of :func:`training_histories` (same
    selection), or None when the histories do not come from a session split."""
    ev = getattr(dataset, "events", None)
    part = getattr(split, "event_part", None)
    if ev is None or part is None or len(part) != len(ev):
        return None
    keep = np.isin(part, parts)
    user, sess = ev.user[keep], ev.session[keep]
    bounds = np.searchsorted(user, np.arange(dataset.counts.shape[0] + 1))
    return [sess[bounds[u]:bounds[u + 1]] for u in range(dataset.counts.shape[0])]
