"""Splits for new users and listening sessions (issue 12 item 2, issue 14).

- ``cold-user-k`` (protocol ``cold-user``): users split at random into warm / valid / test;
  a held-out user reveals their FIRST `revealed` songs (k; in time order when the dataset
  has an event log, else a seeded random order) to training, the rest is held out.
  k = 0 is pure user cold start: a held-out user has no training row at all, only their
  side information (registration features, categories), if the dataset has any.
- ``next-session`` (protocol ``warm``): each user's sessions in time order; the last
  `test_sessions` are the test part, the `valid_sessions` before them the validation part,
  the earlier ones training. Returns a :class:`SessionSplit`, which also records the part of
  every event (``event_part``) for sequential models and the test sessions' skipped tracks
  as explicit negatives (``test_skips``).

Both satisfy the split contract: train / valid / test are disjoint (user, song) pairs whose
counts add up to the dataset's. A (user, song) pair of ``next-session`` belongs to the part
of its FIRST non-skipped play, with its whole count (so a song first heard in training and
replayed later stays a training pair: the test part holds the songs a user discovers in the
held-out session; sequential models read events, where the cutoff is exact).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import Splitter
from recbench.data import Dataset, Split, hash_arrays
from recbench.errors import DataError
from recbench.params import Param

from .splits import _SHARES, _build, _entries, _rank_within, _shares, _SharesSplitter
from .splits import _csr, songs_with_interactions, users_with_interactions


def first_play_time(dataset: Dataset) -> sp.csr_matrix | None:
    """Users x songs CSR of 1 + the rank (in time) of each pair's first non-skipped play
    within its user, or None without events. Pairs never played unskipped are absent."""
    ev = dataset.events
    if ev is None or not len(ev):
        return None
    keep = ~ev.skipped
    user, song, t = ev.user[keep], ev.song[keep], ev.timestamp[keep]
    order = np.lexsort((t, song, user))  # first occurrence of each pair = earliest play
    user, song, t = user[order], song[order], t[order]
    first = np.r_[True, (user[1:] != user[:-1]) | (song[1:] != song[:-1])]
    user, song, t = user[first], song[first], t[first]
    by_time = np.lexsort((t, user))
    rank = np.empty(len(user), dtype=np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(user[by_time])) + 1]
    sizes = np.diff(np.r_[starts, len(user)])
    rank[by_time] = np.arange(len(user)) - np.repeat(starts, sizes)
    return sp.csr_matrix((rank + 1.0, (user, song)), shape=dataset.counts.shape)


class ColdUserKSplit(_SharesSplitter):
    """Held-out users reveal their first k songs (k = 0: pure user cold start).

    Users split at random (by seed) into warm / valid / test shares. A held-out user's
    `revealed` earliest songs (by first non-skipped play when the dataset has events, else
    in a seeded random order; ``order = "random"`` forces the latter) go to training; the
    rest to the valid or test part. Held-out users with at most k songs keep them all in
    training (nothing to evaluate), so every evaluated user has exactly k known songs.
    Candidates (valid = test songs) are every song with an interaction (a song only
    held-out users played has no training listener: it scores as any unknown song).
    """

    name = "cold-user-k"
    description = "Held-out users reveal their first k songs (k = 0: pure user cold start)"
    protocol = "cold-user"
    params = _SHARES + (
        Param("revealed", int, 0, "k: earliest songs of each held-out user given to "
              "training (0 = pure cold start)", min=0),
        Param("order", str, "time", "which songs are revealed first: by time of first play "
              "(needs events; random without) or random", choices=("time", "random")),
    )

    def split(self, dataset: Dataset, seed: int) -> Split:
        o = self.options
        rng = np.random.default_rng(seed)
        counts = dataset.counts.tocsr()
        n_valid, n_test = _shares(dataset.n_users, o["valid_share"], o["test_share"], "users")
        order = rng.permutation(dataset.n_users)
        user_part = np.zeros(dataset.n_users, dtype=np.int8)
        user_part[order[:n_test]] = 2
        user_part[order[n_test:n_test + n_valid]] = 1
        rows, cols, vals = _entries(counts)
        rank = _rank_within(rows, rng)  # random order, the fallback
        times = first_play_time(dataset) if o["order"] == "time" else None
        if times is not None:
            t = np.asarray(times[rows, cols]).ravel()
            t[t == 0] = np.inf  # pairs without an unskipped event: revealed last
            by = np.lexsort((rng.random(len(rows)), t, rows))
            starts = np.r_[0, np.flatnonzero(np.diff(rows[by])) + 1]
            sizes = np.diff(np.r_[starts, len(rows)])
            rank = np.empty(len(rows), dtype=np.int64)
            rank[by] = np.arange(len(rows)) - np.repeat(starts, sizes)
        part = np.where(rank < o["revealed"], 0, user_part[rows]).astype(np.int8)
        train = _build(counts.shape, rows, cols, vals, part, 0)
        test = _build(counts.shape, rows, cols, vals, part, 2)
        songs = songs_with_interactions(train)
        every = songs_with_interactions(counts)  # songs only held-out users played included
        params = dict(o, revealed_order="time" if times is not None else "random")
        return Split(name=self.name, seed=int(seed), protocol=self.protocol,
                     train=train, valid=_build(counts.shape, rows, cols, vals, part, 1),
                     test=test, train_songs=songs, valid_songs=every,
                     test_songs=every.copy(), train_users=users_with_interactions(train),
                     test_users=users_with_interactions(test), params=params)


@dataclass
class SessionSplit(Split):
    """A :class:`Split` of a listening log by sessions.

    event_part: int8 per event of ``dataset.events`` (0 train, 1 valid, 2 test).
    test_skips: users x songs CSR, 1 where a test-session track was skipped and never
                played unskipped in that session (explicit negatives).
    """

    event_part: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    test_skips: sp.csr_matrix | None = None

    @property
    def fingerprint(self) -> str:
        """The split's content, the event parts included."""
        return hash_arrays(super().fingerprint, self.event_part)


class NextSessionSplit(Splitter):
    """Train on each user's earlier sessions, evaluate the next one (temporal split).

    Per user, sessions are ordered by their first event's timestamp: the last
    `test_sessions` are test, the `valid_sessions` before them valid, earlier ones train.
    Users with fewer than `min_train_sessions` training sessions keep every session in
    training. ``holdout = "tracks"`` (for logs of one session per user, e.g. ``mssd``):
    the last `test_tracks` events of each user are test, the `valid_tracks` before them
    valid (users with fewer than test + valid + 2 events: all training). (user, song) pairs go to the part of their first non-skipped play (see the
    module). Needs a dataset with an event log (``events``). Deterministic and
    seed-independent: time decides, not chance.
    """

    name = "next-session"
    description = "Earlier sessions train, the next session is held out (skips = negatives)"
    protocol = "warm"
    params = (
        Param("test_sessions", int, 1, "last sessions of each user held out for test", min=1),
        Param("valid_sessions", int, 1, "sessions before them held out for validation",
              min=0),
        Param("min_train_sessions", int, 1, "users with fewer training sessions are not "
              "evaluated (all their sessions train)", min=1),
        Param("holdout", str, "sessions", "hold out each user's last sessions, or the last "
              "tracks of their log (one-session users, e.g. mssd)",
              choices=("sessions", "tracks")),
        Param("test_tracks", int, 5, "with holdout = tracks: last events held out for test",
              min=1),
        Param("valid_tracks", int, 2, "with holdout = tracks: events before them for "
              "validation", min=0),
    )

    def split(self, dataset: Dataset, seed: int) -> SessionSplit:
        o = self.options
        ev = dataset.events
        if ev is None or not len(ev):
            raise DataError(f"split next-session: dataset {dataset.name!r} has no event log "
                            "(events); e.g. synth-msd needs skip_strength set")
        event_part = self.event_parts(ev, o)
        counts = dataset.counts.tocsr()
        rows, cols, vals = _entries(counts)
        # part of each pair = part of its first unskipped play (train when it has none)
        keep = ~ev.skipped
        order = np.lexsort((ev.timestamp[keep], ev.song[keep], ev.user[keep]))
        u, s, p = ev.user[keep][order], ev.song[keep][order], event_part[keep][order]
        first = np.r_[True, (u[1:] != u[:-1]) | (s[1:] != s[:-1])] if len(u) else u > 0
        pair_part = sp.csr_matrix((p[first].astype(np.float64) + 1.0, (u[first], s[first])),
                                  shape=counts.shape)
        part = np.asarray(pair_part[rows, cols]).ravel()
        part = np.where(part > 0, part - 1, 0).astype(np.int8)
        train = _build(counts.shape, rows, cols, vals, part, 0)
        test = _build(counts.shape, rows, cols, vals, part, 2)
        songs = songs_with_interactions(train)
        return SessionSplit(
            name=self.name, seed=int(seed), protocol=self.protocol, train=train,
            valid=_build(counts.shape, rows, cols, vals, part, 1), test=test,
            train_songs=songs, valid_songs=songs.copy(), test_songs=songs.copy(),
            train_users=users_with_interactions(train),
            test_users=np.unique(ev.user[event_part == 2]).astype(np.int64),
            params=dict(o), event_part=event_part,
            test_skips=self.skips(ev, event_part, counts.shape))

    @staticmethod
    def event_parts(ev, o) -> np.ndarray:
        """The part (0 train, 1 valid, 2 test) of every event, by session position (or, with
        ``holdout = "tracks"``, by position from the end of the user's log)."""
        if o.get("holdout") == "tracks":
            n = len(ev.user)
            starts = np.r_[0, np.flatnonzero(np.diff(ev.user)) + 1] if n else np.zeros(0, int)
            sizes = np.diff(np.r_[starts, n])
            from_end = np.repeat(starts + sizes, sizes) - np.arange(n)  # 1 = the last event
            held = o["test_tracks"] + o["valid_tracks"]
            enough = np.repeat(sizes, sizes) >= held + 2
            part = np.zeros(n, dtype=np.int8)
            part[enough & (from_end <= held)] = 1
            part[enough & (from_end <= o["test_tracks"])] = 2
            return part
        sess_ids, first_idx = np.unique(ev.session, return_index=True)
        sess_user = ev.user[first_idx]
        sess_start = ev.timestamp[first_idx]
        by = np.lexsort((sess_start, sess_user))  # sessions in time order within users
        su = sess_user[by]
        n_per_user = np.bincount(su, minlength=int(su.max()) + 1 if len(su) else 0)
        starts = np.r_[0, np.flatnonzero(np.diff(su)) + 1]
        pos = np.arange(len(su)) - np.repeat(starts, np.diff(np.r_[starts, len(su)]))
        from_end = n_per_user[su] - pos  # 1 = the user's last session
        held = o["test_sessions"] + o["valid_sessions"]
        enough = n_per_user[su] >= held + o["min_train_sessions"]
        part_sorted = np.zeros(len(su), dtype=np.int8)
        part_sorted[enough & (from_end <= held)] = 1
        part_sorted[enough & (from_end <= o["test_sessions"])] = 2
        sess_part = np.empty(len(su), dtype=np.int8)
        sess_part[by] = part_sorted
        return sess_part[np.searchsorted(sess_ids, ev.session)]

    @staticmethod
    def skips(ev, event_part: np.ndarray, shape) -> sp.csr_matrix:
        """Users x songs: test-session tracks skipped and not played unskipped there."""
        test = event_part == 2
        played = sp.csr_matrix((np.ones(int((test & ~ev.skipped).sum())),
                                (ev.user[test & ~ev.skipped], ev.song[test & ~ev.skipped])),
                               shape=shape)
        skipped = sp.csr_matrix((np.ones(int((test & ev.skipped).sum())),
                                 (ev.user[test & ev.skipped], ev.song[test & ev.skipped])),
                                shape=shape)
        out = (skipped > 0).astype(np.float32) - (skipped > 0).multiply(played > 0)
        return _csr(out)


@hookimpl
def recbench_register_splits(register):
    register(ColdUserKSplit)
    register(NextSessionSplit)
