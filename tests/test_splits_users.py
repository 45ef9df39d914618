"""Leak tests of the `cold-user-k` and `next-session` splits (issue 12 item 2)."""

from __future__ import annotations

import numpy as np
import pytest
from recbench_builtin.splits_users import ColdUserKSplit, NextSessionSplit, first_play_time
from users14_data import synth

from recbench.errors import DataError


@pytest.fixture(scope="module")
def sessions():
    return synth(skip_strength=1.0, user_feature_strength=1.0)


@pytest.mark.parametrize("k", [0, 1, 3])
def test_cold_user_k_reveals_exactly_the_first_k(sessions, k):
    split = ColdUserKSplit(revealed=k).split(sessions, 3)
    held = np.flatnonzero(np.asarray((split.test + split.valid).sum(axis=1)).ravel() > 0)
    assert len(split.test_users) > 30
    train = split.train.tocsr()
    n_known = np.diff(train.indptr)[held]
    assert (n_known == k).all()  # every evaluated user knows exactly k songs
    # no held-out pair is in training, and the known ones are the user's earliest songs
    assert not (split.train.multiply(split.test + split.valid) > 0).nnz
    first = first_play_time(sessions).tocsr()
    for u in held[:50]:
        known = train.indices[train.indptr[u]:train.indptr[u + 1]]
        order = np.sort(first[u].data)
        assert np.sort(np.asarray(first[u, known].todense()).ravel()).tolist() == \
            order[:k].tolist()
    # the warm users are disjoint from the held-out ones: warm rows have no held-out pair
    warm = np.setdiff1d(np.arange(sessions.n_users), held)
    assert not (split.test[warm].nnz or split.valid[warm].nnz)


def test_cold_user_zero_gives_no_row_and_random_order_without_events():
    ds = synth()  # no events: order falls back to random
    split = ColdUserKSplit(revealed=0).split(ds, 1)
    assert split.params["revealed_order"] == "random"
    assert split.train[split.test_users].nnz == 0 and split.valid[split.test_users].nnz == 0


def test_next_session_is_temporal_and_skips_are_negatives(sessions):
    split = NextSessionSplit().split(sessions, 0)
    ev = sessions.events
    part = split.event_part
    assert set(np.unique(part)) == {0, 1, 2}
    for u in split.test_users[:200]:
        lo, hi = np.searchsorted(ev.user, [u, u + 1])
        t, p = ev.timestamp[lo:hi], part[lo:hi]
        # every training event precedes every valid event, which precede every test event
        assert t[p == 0].max() < t[p == 1].min() <= t[p == 1].max() < t[p == 2].min()
        assert len(np.unique(ev.session[lo:hi][p == 2])) == 1  # one held-out session
    # pairs: a test pair's first unskipped play is in the test session, never before
    first = first_play_time(sessions)
    test_pairs = np.c_[split.test.nonzero()]
    keep = ~ev.skipped
    for u, s in test_pairs[:300]:
        sel = keep & (ev.user == u) & (ev.song == s)
        assert (part[sel] == 2).any() and not (part[sel] < 2).any()
    assert first is not None
    # skipped test tracks are explicit negatives, disjoint from the test positives
    assert split.test_skips.nnz > 0
    assert not split.test_skips.multiply(
        _played_in_test(sessions, part)).nnz
    assert NextSessionSplit().split(sessions, 5).fingerprint == split.fingerprint


def _played_in_test(ds, part):
    import scipy.sparse as sp

    ev = ds.events
    sel = (part == 2) & ~ev.skipped
    return sp.csr_matrix((np.ones(int(sel.sum())), (ev.user[sel], ev.song[sel])),
                         shape=ds.counts.shape)


def test_next_session_without_events_says_so():
    with pytest.raises(DataError, match="no event log"):
        NextSessionSplit().split(synth(), 0)


def test_next_tracks_holdout_by_position(sessions):
    split = NextSessionSplit(holdout="tracks", test_tracks=3, valid_tracks=2).split(sessions, 0)
    ev, part = sessions.events, split.event_part
    for u in split.test_users[:100]:
        lo, hi = np.searchsorted(ev.user, [u, u + 1])
        assert part[lo:hi].tolist() == [0] * (hi - lo - 5) + [1, 1, 2, 2, 2]
        assert ev.timestamp[lo:hi][part[lo:hi] == 0].max() < ev.timestamp[hi - 3]
    assert not (split.train.multiply(split.test) > 0).nnz
