"""The side-information mechanisms of `synth-msd` (issue 12), each with its own strength.

Every mechanism is off (its part absent) while its knob is unset; at strength 0 the part is
present but carries no signal about taste (the leak check of that mechanism); at 1 (or
above, for the skip logits) it carries the most. Each draws from its own random streams
(``[seed, 21..]``). Only two change the default content: the artist mechanism moves songs'
genres (at strength > 0: the counts, tags and audio follow), and the sessions replace the
play counts by those of their non-skipped events; the others are drawn beside the counts.
In the formulas ``mix(signal, noise, s) = sqrt(s) z(signal) + sqrt(1 - s) noise``, z
standardising each column and the noise a standard normal of the same shape.

A user's taste is the 16-vector ``T_u = [w_a u_a, w_h u_h]`` and a song's style the
16-vector ``S_i = [s_a, s_h]`` (see :func:`make_taste`): ``affinity = T_u . S_i``.

- **user features** (``user_feature_strength`` s): six dense registration / demographic
  features (age, registration year, daily minutes, mobile share, followed artists, night
  share) and the categories ``age_band`` and ``gender``, monotone maps of
  ``mix(T R, noise, s)`` for a fixed random projection R. Features and taste are jointly
  Gaussian with a share s of each feature's variance shared with taste: the same joint law
  as "taste = features + the rest", generated in the direction that leaves the play counts
  untouched. At 0 the features are drawn independently of taste.
- **artists and genres** (``artist_style_strength`` s): each artist has a genre and a
  timbre; a song takes its artist's genre with probability s (its audible style moves to
  that genre's centre, keeping its own deviation: the song cue), and its two timbre
  parameters (odd/even harmonic balance, chorus detune: the artist cue, which no one's
  taste depends on) are ``ndtr(mix(artist timbre, song noise, s))``. Song categories
  ``artist`` and ``genre``. At 0 genres stay independent of artists and timbre is per song.
  ``artist_timbre_strength`` s_b (unset: s) replaces s in the timbre's mix only: at 0 the
  timbre is per song while the genres still follow the artists (no artist cue in it).
- **an artist's own sound within its genre** (``artist_sound_strength`` s_s): a song's
  audible deviation from its genre centre (tempo, onset rate, register, key, brightness,
  percussion, density; sd 0.6) becomes ``0.6 mix(artist offset, deviation / 0.6, s_s)``:
  the marginal law is unchanged and an artist's songs cluster around its own point inside
  the genre (the artist-disambiguation paper's world: artists of a genre sound different).
  Without it the artists of a genre differ only by the two timbre parameters. Unset:
  absent; at 0 the songs keep their own deviations (the unset knob's data, bit for bit).
  Listening follows (taste reads the audible factors).
  ``artist_sound_scale`` c (with or without s_s) scales that whole deviation, the mix
  above included, by c: within-genre sd 0.6 c against the genre centres' sd 1 (their
  spacing ~4 in the 8 factors). Below 1 the genres are tight and artists of a genre
  sound alike, their own points only fine differences next to the genre separation (the
  paper's premise: random, mostly cross-genre negatives are easy); at s_s = 0 the same
  tight genres without any artist cue. Unset: no scaling (today's data, bit for bit).
- **sessions with skips** (``skip_strength`` s_t, ``skip_prev_strength`` s_p): each user
  listens in 1 + Poisson(sessions_per_user - 1) sessions of 1 + Poisson(session_length - 1)
  tracks drawn with replacement with probability proportional to
  ``exp(taste_scale * affinity + log_pop)``; a track is skipped with probability
  ``sigmoid(logit(skip_rate) - 2 s_t z(affinity) - 2 s_p z(sim(previous, track)))``, z
  standardising over the log and sim the cosine of the two songs' styles S (0 for a
  session's first track), so skip_rate is the skip rate at 0 and grows with the knobs. The
  play counts are then the counts of the non-skipped events (every user keeps at least one play
  and every song at least one listener). At s_t = s_p = 0 skips are independent of taste
  and of the previous track.
  With ``skip_cause = "aversion"`` (unset or "taste": the above) a skip reveals what the
  plays do not: each user also has an aversion, a unit direction V_u in the 16-d style
  space drawn independently of taste (a "sound" the user dislikes, which the platform's
  exposure, driven by taste and popularity, does not know), and a track is skipped with
  probability ``sigmoid(logit(skip_rate) + 2 s_t z(V_u . S_i / |S_i|) - 2 s_p z(sim))``:
  exposure keeps serving songs from the disliked half of song space, the user skips them,
  and the plays (the counts, the next played track) avoid it. The exposure draws are the
  same as with "taste"; at s_t = s_p = 0 skips are independent of everything (aversion
  included): the skip log then carries no signal.
  With ``skip_cause = "mood"`` skips carry session-level information: each session has a
  mood genre the listener is not in the mood for (that of a song drawn, stream
  ``[seed, 28]``, from the user's own exposure law, so it is a genre the platform does
  serve them, and a new one each session, unknown to the platform), and a track is
  skipped with probability ``sigmoid(logit(skip_rate) + 2 s_t z(1[genre_i = mood genre])
  - 2 s_p z(sim))`` (z of the indicator over the log): on the small preset at s_t = 3 the
  mood genre holds a third of the events, its tracks are skipped with probability 0.9996,
  the others with 0.005 (skip rate 0.33), and the session's next plays avoid the genre.
  A skip earlier in the session names the genre; the plays show it only by its absence
  (the sequential task tells models which events belong to the session). Exposure draws
  are the same as with the other causes; at s_t = s_p = 0 skips are independent of
  everything (the mood included).
- **a second item modality** (``modality_strength`` s): ``modalities["tokens"]``, songs x
  300 token counts (about 40 per song) drawn from ``softmax(1.5 * mix(S Q^T, N Q^T, s))`` for
  random token vectors Q and an independent random song vector N: tokens always form
  topics; at 0 the topics are unrelated to taste.
- **categorical features** (``categorical_strength`` s): user category ``country`` (12) and
  song category ``label`` (24), the argmax over prototypes P of ``mix(T P^T, noise, s)``
  (``mix(S P^T, noise, s)`` for labels). At 0 they are uniform random codes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr

from recbench.data import Events
from recbench.params import Param

#: The world's genres (synth_msd's genre centres and tags, and the `genre` category).
GENRES = ("rock", "pop", "electronic", "hip-hop", "jazz", "folk", "metal", "soul", "ambient",
          "reggae", "classical", "punk")
USER_FEATURES = ("age", "registration_year", "daily_minutes", "mobile_share",
                 "followed_artists", "night_share")
AGE_BANDS = ("<18", "18-24", "25-34", "35-49", "50+")
N_COUNTRIES, N_LABELS, N_TOKENS = 12, 24, 300
EPOCH = 1.6e9  # 2020-09-13: the first session starts within a day of it


#: The loader's params: unset = part absent, 0 = present without signal, 1 = strongest.
PARAMS = (
    Param("user_feature_strength", float, None, "users' features and age_band / gender "
          "share of taste (unset: no user features)", min=0.0, max=1.0),
    Param("artist_style_strength", float, None, "how much an artist's songs share its "
          "genre and timbre (unset: no artist / genre categories)", min=0.0, max=1.0),
    Param("artist_timbre_strength", float, None, "how much an artist's songs share its "
          "timbre (with artist_style_strength; unset: artist_style_strength)", min=0.0,
          max=1.0),
    Param("artist_sound_strength", float, None, "share of a song's audible deviation "
          "from its genre centre shared by its artist's songs (unset: none)", min=0.0,
          max=1.0),
    Param("artist_sound_scale", float, None, "scale of songs' audible deviation from "
          "their genre centre, artist offsets included (unset: 1, data unchanged; below "
          "1: tight genres, artists of a genre sound alike)", min=0.0, max=2.0),
    Param("skip_strength", float, None, "how much skips depend on taste (unset: no "
          "events)", min=0.0, max=4.0),
    Param("skip_prev_strength", float, 0.0, "how much skips depend on the previous track "
          "(with skip_strength)", min=0.0, max=4.0),
    Param("skip_cause", str, "taste", "what skips depend on: taste (the affinity that "
          "drives exposure) or aversion (a per-user disliked style direction, independent "
          "of taste; with skip_strength)", choices=("taste", "aversion", "mood")),
    Param("skip_rate", float, 0.25, "base skip probability (with skip_strength)",
          min=0.01, max=0.9),
    Param("sessions_per_user", float, 6.0, "mean sessions per user (with skip_strength)",
          min=1.0),
    Param("session_length", float, 8.0, "mean tracks per session (with skip_strength)",
          min=1.0),
    Param("modality_strength", float, None, "taste carried by the tokens modality "
          "(unset: no modalities)", min=0.0, max=1.0),
    Param("categorical_strength", float, None, "taste carried by country / label "
          "(unset: none)", min=0.0, max=1.0),
)
KNOBS = ("user_feature_strength", "artist_style_strength", "artist_sound_strength",
         "artist_sound_scale", "artist_timbre_strength",
         "skip_strength", "modality_strength", "categorical_strength")
SESSION_KNOBS = ("skip_prev_strength", "skip_rate", "sessions_per_user", "session_length")

PROVIDES = {"user_feature_strength": ("user_features", "user_categories"),
            "artist_style_strength": ("song_categories",), "skip_strength": ("events",),
            "modality_strength": ("modalities",),
            "categorical_strength": ("user_categories", "song_categories")}


def config(options: dict[str, Any]) -> dict[str, Any]:
    """The knobs set in `options` (the session knobs with skip_strength), for the config."""
    cfg = {k: options[k] for k in KNOBS if options.get(k) is not None}
    if "skip_strength" in cfg:
        cfg.update({k: options[k] for k in SESSION_KNOBS})
        if options.get("skip_cause", "taste") != "taste":  # the default config unchanged
            cfg["skip_cause"] = options["skip_cause"]
    return cfg


def provides(cfg: dict[str, Any]) -> list[str]:
    """The side parts a resolved configuration yields."""
    out: list[str] = []
    for knob, names in PROVIDES.items():
        out += [n for n in names if knob in cfg and n not in out]
    return out


def audio_knobs(cfg: dict[str, Any]) -> tuple[Any, ...]:
    """What the audio depends on beyond the default generator (for its identity)."""
    out: tuple[Any, ...] = ()
    for knob in ("artist_style_strength", "artist_sound_strength", "artist_sound_scale",
                 "artist_timbre_strength"):
        if knob in cfg:
            out += (knob, cfg[knob])
    return out


def needs_taste(cfg: dict[str, Any]) -> bool:
    """Whether a mechanism that reads users' taste is on."""
    return any(k in cfg for k in ("user_feature_strength", "skip_strength",
                                  "modality_strength", "categorical_strength"))


def restyle(cfg: dict[str, Any], world: dict[str, np.ndarray]):
    """(world, side parts so far, timbre params): the artist mechanism, before the counts."""
    side: dict[str, Any] = {"user_categories": {}, "song_categories": {},
                            "category_names": {}}
    timbre: dict[str, Any] = {}
    if "artist_style_strength" in cfg:
        world, timbre, cats = artist_style(cfg["seed"], world, cfg["artist_style_strength"],
                                           cfg.get("artist_timbre_strength"))
        side["song_categories"].update(cats)
        side["category_names"]["song:genre"] = list(GENRES)
    if "artist_sound_strength" in cfg or "artist_sound_scale" in cfg:
        world = artist_sound(cfg["seed"], world, cfg.get("artist_sound_strength", 0.0),
                             cfg.get("artist_sound_scale"))
    return world, side, timbre


def add_parts(cfg: dict[str, Any], world: dict[str, np.ndarray], taste: dict[str, Any],
              side: dict[str, Any], counts: sp.csr_matrix) -> sp.csr_matrix:
    """Add the taste-driven parts to `side`; return the counts (those of the events' plays
    when sessions are on, else `counts` unchanged)."""
    seed = cfg["seed"]
    if "user_feature_strength" in cfg:
        x, names, cats, cat_names = user_features(seed, taste, cfg["user_feature_strength"])
        side.update(user_features=x, user_feature_names=names)
        side["user_categories"].update(cats)
        side["category_names"].update(cat_names)
    if "modality_strength" in cfg:
        side["modalities"] = {"tokens": tokens(seed, taste, cfg["modality_strength"])}
    if "categorical_strength" in cfg:
        ucats, scats, cat_names = categories(seed, taste, cfg["categorical_strength"])
        side["user_categories"].update(ucats)
        side["song_categories"].update(scats)
        side["category_names"].update(cat_names)
    if "skip_strength" in cfg:
        side["events"], counts = sessions(seed, taste, world, cfg)
    return counts


def timbre(spectrum: np.ndarray, n_harm: int, p: dict[str, Any]) -> None:
    """The artist cue in the melody's wavetable: damp the even harmonics by `timbre`."""
    if "timbre" in p:
        spectrum[2:n_harm + 1:2] *= 1.0 - 0.95 * p["timbre"]


def chorus(tone: np.ndarray, table: np.ndarray, cycles: np.ndarray,
           p: dict[str, Any]) -> np.ndarray:
    """The artist cue in the melody: a second voice up to 40 cents sharp (`detune`)."""
    if "detune" not in p:
        return tone
    ratio = np.float32(2.0 ** (0.4 * p["detune"] / 12))
    idx = (cycles * ratio * np.float32(2048)).astype(np.int64) & 2047
    return np.float32(0.5) * (tone + table[idx])


def make_taste(seed: int, users: int, world: dict[str, np.ndarray],
               audible_share: float) -> dict[str, Any]:
    """Users' taste: unit audible (u_a) and hidden (u_h) vectors, the songs' unit vectors
    (s_a, s_h) and the weights (w_a, w_h) that make affinity = w_a u_a.s_a + w_h u_h.s_h
    have both parts standardised; `rng` is the user stream, to draw further from."""
    ru = np.random.default_rng([seed, 4])
    fav = ru.integers(len(world["centres"]), size=users)
    n_a, n_h = world["audible"].shape[1], world["hidden"].shape[1]
    u_a = _unit(world["centres"][fav] + 0.8 * ru.normal(size=(users, n_a)))
    u_h = _unit(ru.normal(size=(users, n_h)))
    s_a, s_h = _unit(world["audible"]), _unit(world["hidden"])
    # one scale for every chunk: the spread of each affinity part over a fixed user sample
    probe = np.arange(min(users, 500))
    sd_a = max(float((u_a[probe] @ s_a.T).std()), 1e-6)
    sd_h = max(float((u_h[probe] @ s_h.T).std()), 1e-6)
    return {"rng": ru, "u_a": u_a, "u_h": u_h, "s_a": s_a, "s_h": s_h,
            "w_a": np.sqrt(audible_share) / sd_a, "w_h": np.sqrt(1.0 - audible_share) / sd_h}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _z(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)


def mix(signal: np.ndarray, noise: np.ndarray, s: float) -> np.ndarray:
    """sqrt(s) * standardised signal + sqrt(1 - s) * noise (the noise alone at s = 0)."""
    s = float(s)
    if s <= 0.0:
        return noise
    return np.sqrt(s) * _z(signal) + np.sqrt(max(1.0 - s, 0.0)) * noise


def taste_vectors(taste: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(T, S): users x 16 and songs x 16 with T @ S.T the generator's affinity."""
    t = np.c_[taste["w_a"] * taste["u_a"], taste["w_h"] * taste["u_h"]]
    return t, np.c_[taste["s_a"], taste["s_h"]]


# --------------------------------------------------------------------------- (a)


def user_features(seed: int, taste: dict[str, Any], s: float):
    """(features users x 6 float32, names, categories, category names); see the module."""
    t, _ = taste_vectors(taste)
    r = np.random.default_rng([seed, 21])
    proj = r.normal(size=(t.shape[1], len(USER_FEATURES) + 1))
    noise = r.normal(size=(t.shape[0], proj.shape[1]))
    z = mix(t @ proj, noise, s)
    feats = np.c_[np.clip(33 + 11 * z[:, 0], 13, 85),  # age
                  np.clip(np.rint(2015 + 3 * z[:, 1]), 2006, 2026),  # registration year
                  np.exp(3.6 + 0.6 * z[:, 2]),  # daily minutes
                  ndtr(z[:, 3]),  # mobile share
                  np.rint(np.exp(2.5 + 0.8 * z[:, 4])),  # followed artists
                  ndtr(z[:, 5] - 1.0)]  # night share
    age_band = np.searchsorted([18, 25, 35, 50], feats[:, 0], side="right").astype(np.int64)
    gender = (z[:, 6] > 0).astype(np.int64)
    gender[r.random(len(gender)) < 0.08] = -1  # undisclosed
    cats = {"age_band": age_band, "gender": gender}
    names = {"user:age_band": list(AGE_BANDS), "user:gender": ["f", "m"]}
    return feats.astype(np.float32), list(USER_FEATURES), cats, names


# --------------------------------------------------------------------------- (b)


def artist_style(seed: int, world: dict[str, np.ndarray], s: float,
                 s_timbre: float | None = None):
    """(world with genres and audible styles moved, timbre params, song categories);
    the timbre mixes at `s_timbre` when set, else at `s`."""
    r = np.random.default_rng([seed, 23])
    artist, genre = world["artist"], world["genre"]
    n_artists = int(artist.max()) + 1
    artist_genre = r.integers(len(world["centres"]), size=n_artists)
    share = r.random(len(genre)) < s
    new_genre = np.where(share, artist_genre[artist], genre)
    audible = world["audible"].copy()  # untouched where the genre stays (bit for bit at 0)
    audible[share] += world["centres"][new_genre[share]] - world["centres"][genre[share]]
    timbre_z = mix(r.normal(size=(n_artists, 2))[artist], r.normal(size=(len(genre), 2)),
                   s if s_timbre is None else s_timbre)
    timbre = {"timbre": ndtr(timbre_z[:, 0]), "detune": ndtr(timbre_z[:, 1])}
    cats = {"artist": artist.astype(np.int64), "genre": new_genre.astype(np.int64)}
    return dict(world, audible=audible, genre=new_genre), timbre, cats


def artist_sound(seed: int, world: dict[str, np.ndarray], s: float,
                 scale: float | None = None) -> dict[str, np.ndarray]:
    """The world with each song's audible deviation from its genre centre drawn towards its
    artist's own offset (share `s` of its variance), then multiplied by `scale` when set;
    unchanged (the same arrays) at s = 0 with `scale` unset."""
    if s <= 0.0 and scale is None:
        return world
    centre = world["centres"][world["genre"]]
    dev = world["audible"] - centre
    if s > 0.0:
        r = np.random.default_rng([seed, 27])
        artist = world["artist"]
        own = r.normal(size=(int(artist.max()) + 1, centre.shape[1]))[artist]
        dev = 0.6 * mix(own, dev / 0.6, s)
    if scale is not None:
        dev = float(scale) * dev
    return dict(world, audible=centre + dev)


# --------------------------------------------------------------------------- (c)


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
    vectors of their own stream, independent of taste) against the song's unit style."""
    v = _unit(np.random.default_rng([seed, 27]).normal(size=(users, style.shape[1])))
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


# --------------------------------------------------------------------------- (d), (e)


def tokens(seed: int, taste: dict[str, Any], s: float) -> sp.csr_matrix:
    """Songs x N_TOKENS token counts (CSR float32); see the module."""
    _, style = taste_vectors(taste)
    r = np.random.default_rng([seed, 25])
    q = r.normal(size=(N_TOKENS, style.shape[1]))
    noise = _z(r.normal(size=style.shape) @ q.T)
    logits = 1.5 * mix(style @ q.T, noise, s)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    n = 5 + r.poisson(35, size=len(style))
    counts = np.stack([r.multinomial(k, row) for k, row in zip(n, p)])
    return sp.csr_matrix(counts.astype(np.float32))


def categories(seed: int, taste: dict[str, Any], s: float):
    """(user categories {"country"}, song categories {"label"}, category names)."""
    t, style = taste_vectors(taste)
    r = np.random.default_rng([seed, 26])
    country = np.argmax(mix(t @ r.normal(size=(t.shape[1], N_COUNTRIES)),
                            r.normal(size=(len(t), N_COUNTRIES)), s), axis=1)
    label = np.argmax(mix(style @ r.normal(size=(style.shape[1], N_LABELS)),
                          r.normal(size=(len(style), N_LABELS)), s), axis=1)
    names = {"user:country": [f"country{i:02d}" for i in range(N_COUNTRIES)],
             "song:label": [f"label{i:02d}" for i in range(N_LABELS)]}
    return {"country": country.astype(np.int64)}, {"label": label.astype(np.int64)}, names
