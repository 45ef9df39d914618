"""Section (c) of synth-msd's side mechanisms: time-stamped listening sessions with skips
(``skip_strength``, ``skip_cause`` taste / aversion / mood, ``skip_prev_strength``) and the
logging propensities of their exposures. The formulas are in synth_side's module
docstring; moved out of synth_side.py unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recbench.data import Events

from .synth_taste import _unit, _z, taste_vectors

EPOCH = 1.6e9  # 2020-09-13: the first session starts within a day of it


def sessions(seed: int, taste: dict[str, Any], world: dict[str, np.ndarray],
             cfg: dict[str, Any]) -> tuple[Events, sp.csr_matrix]:
    """(the listening log, the play counts of its non-skipped events); see the module."""
    t, style = taste_vectors(taste)
    users, songs = len(t), len(style)
    r = np.random.default_rng([seed, 24])
    n_sess = 1 + r.poisson(max(cfg["sessions_per_user"] - 1, 0), size=users)
    sess_user = np.repeat(np.arange(users), n_sess)
    sess_len = 1 + r.poisson(max(cfg["session_length"] - 1, 0), size=len(sess_user))
    user = np.repeat(sess_user, sess_len)
    session = np.repeat(np.arange(len(sess_user)), sess_len)
    first = np.r_[True, session[1:] != session[:-1]]
    # songs: inverse-CDF draws from each user's listening distribution
    song = np.empty(len(user), dtype=np.int64)
    aff = np.empty(len(user))
    bounds = np.searchsorted(user, np.arange(users + 1))
    for start in range(0, users, 500):
        rows = np.arange(start, min(start + 500, users))
        a = t[rows] @ style.T
        logits = cfg["taste_scale"] * a + world["log_pop"][None, :]
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        if cfg.get("logging_uniform"):  # a share of uniformly random exposures (synth_oracle)
            u_share = cfg["logging_uniform"]
            p = (1.0 - u_share) * p / p.sum(axis=1, keepdims=True) + u_share / songs
        cdf = np.cumsum(p, axis=1)
        cdf /= cdf[:, -1:]
        for k, u in enumerate(rows):
            lo, hi = bounds[u], bounds[u + 1]
            pick = np.minimum(np.searchsorted(cdf[k], r.random(hi - lo)), songs - 1)
            song[lo:hi], aff[lo:hi] = pick, a[k, pick]
    unit = style / np.maximum(np.linalg.norm(style, axis=1, keepdims=True), 1e-12)
    sim = np.r_[0.0, np.einsum("ij,ij->i", unit[song[1:]], unit[song[:-1]])]
    sim[first] = 0.0
    if (~first).any():
        sim[~first] = _z(sim[~first])
    rate = float(cfg["skip_rate"])
    cause_name = cfg.get("skip_cause", "taste")
    if cause_name == "aversion":
        cause = aversion(seed, len(t), style, user, song)
        sign = 1.0  # the more the track lies toward the user's aversion, the more skips
    elif cause_name == "mood":
        cause = mood(seed, t, style, world["genre"], (cfg["taste_scale"], world["log_pop"]),
                     sess_user, session, song)
        sign = 1.0  # the closer the track to the sound the session is not in the mood for
    else:
        cause, sign = aff, -1.0  # the less the user likes the track, the more skips
    logit = (np.log(rate / (1 - rate)) + sign * 2.0 * cfg["skip_strength"] * _z(cause)
             - 2.0 * cfg["skip_prev_strength"] * sim)
    skipped = r.random(len(user)) < 1.0 / (1.0 + np.exp(-logit))
    # timestamps: plays last 2-5 min, skips 5-30 s; a session starts on average two days
    # after the previous one ended
    dur = np.where(skipped, r.uniform(5, 30, len(user)), r.uniform(120, 300, len(user)))
    length = np.bincount(session, weights=dur, minlength=len(sess_user))
    gap = r.exponential(2 * 86400.0, size=len(sess_user))
    starts = (EPOCH + r.uniform(0, 86400, size=users)[sess_user]
              + _cumsum_within(gap + length, sess_user) - length)
    stamp = starts[session] + _cumsum_within(dur, session) - dur
    # every user keeps a play (their first track) and every song a listener
    none = np.flatnonzero(np.bincount(user, weights=~skipped, minlength=users) == 0)
    skipped[bounds[none]] = False
    orphans = np.setdiff1d(np.arange(songs), song[~skipped])
    if len(orphans):
        best = np.argmax(t @ style[orphans].T, axis=0)
        last = np.maximum.reduceat(stamp, bounds[:-1]) if len(stamp) else np.zeros(users)
        user = np.r_[user, best]
        song = np.r_[song, orphans]
        stamp = np.r_[stamp, last[best] + 86400.0 + np.arange(len(orphans))]
        session = np.r_[session, len(sess_user) + np.arange(len(orphans))]
        skipped = np.r_[skipped, np.zeros(len(orphans), dtype=bool)]
        order = np.lexsort((stamp, user))
        user, song, stamp, session, skipped = (x[order] for x in
                                               (user, song, stamp, session, skipped))
    prop = None
    if cfg.get("log_propensities"):  # each shown track's probability under the exposure law
        from .synth_oracle import exposure_probability

        prop = exposure_probability(t, style, world["log_pop"], cfg["taste_scale"], user, song,
                                    cfg.get("logging_uniform", 0.0))
    events = Events(user=user.astype(np.int64), song=song.astype(np.int64),
                    timestamp=stamp.astype(np.float64), session=session.astype(np.int64),
                    skipped=skipped.astype(bool), propensity=prop)
    keep = ~events.skipped
    counts = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32),
                            (events.user[keep], events.song[keep])), shape=(users, songs))
    counts.sum_duplicates()
    counts.sort_indices()
    return events, counts


def aversion(seed: int, users: int, style: np.ndarray, user: np.ndarray,
             song: np.ndarray) -> np.ndarray:
    """Per event ``V_u . S_i / |S_i|``: the user's aversion direction V_u (users x 16 unit
    vectors of their own stream ``[seed, 29]``, independent of taste and of the artists'
    sounds) against the song's unit style."""
    v = _unit(np.random.default_rng([seed, 29]).normal(size=(users, style.shape[1])))
    return np.einsum("ij,ij->i", v[user], _unit(style)[song])


def mood(seed: int, t: np.ndarray, style: np.ndarray, genre: np.ndarray,
         law: tuple[float, np.ndarray], sess_user: np.ndarray, session: np.ndarray,
         song: np.ndarray) -> np.ndarray:
    """Per event, 1.0 when the song's genre is the session's mood genre, else 0.0. The mood
    genre is that of a song drawn (stream [seed, 28]) from the session user's exposure law
    ``exp(law[0] * T_u . S + law[1])`` (`t`: users x 16, `style`: songs x 16). `sess_user`
    (sorted): each session's user; `session`, `song`: per event."""
    r = np.random.default_rng([seed, 28])
    pick = np.empty(len(sess_user), np.int64)
    bounds = np.searchsorted(sess_user, np.arange(len(t) + 1))
    for u in range(len(t)):
        logits = law[0] * (style @ t[u]) + law[1]
        p = np.exp(logits - logits.max())
        pick[bounds[u]:bounds[u + 1]] = r.choice(len(p), size=bounds[u + 1] - bounds[u],
                                                 p=p / p.sum())
    return (genre[pick][session] == genre[song]).astype(np.float64)


def _cumsum_within(x: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Cumulative sums of x restarting at each new value of the (sorted) group array."""
    c = np.cumsum(x)
    starts = np.r_[0, np.flatnonzero(group[1:] != group[:-1]) + 1]
    offset = np.zeros(len(x))
    offset[starts[1:]] = c[starts[1:] - 1]
    return c - np.maximum.accumulate(offset)
