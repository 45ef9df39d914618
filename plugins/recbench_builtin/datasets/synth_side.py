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
16-vector ``S_i = [s_a, s_h]`` (see :func:`synth_taste.make_taste`): ``affinity = T_u . S_i``.

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

from recbench.params import Param

from .synth_sessions import sessions
from .synth_taste import _z, mix, taste_vectors

#: The world's genres (synth_msd's genre centres and tags, and the `genre` category).
GENRES = ("rock", "pop", "electronic", "hip-hop", "jazz", "folk", "metal", "soul", "ambient",
          "reggae", "classical", "punk")
USER_FEATURES = ("age", "registration_year", "daily_minutes", "mobile_share",
                 "followed_artists", "night_share")
AGE_BANDS = ("<18", "18-24", "25-34", "35-49", "50+")
N_COUNTRIES, N_LABELS, N_TOKENS = 12, 24, 300


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
