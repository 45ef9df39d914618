"""`synth-msd`: a synthetic, MSD-shaped dataset whose audio partly explains the listening.

Generated deterministically from a seed:

- every song has 8 *audible* style factors (songs cluster in 12 genres), 8 *hidden* factors
  (shared by the songs of an artist) and a popularity (a power law over a random order of
  the songs plus the artist's hype); audible factors, hidden factors and popularity are
  drawn independently;
- its audio is synthesised on demand from the audible factors only: a kick on every beat
  (tempo), hi-hats whose subdivision and hit rate follow the rhythmic density, a snare on
  the off-beats whose level is the percussiveness, and a melody in the song's key and
  register whose note rate is the onset rate and whose harmonics set the brightness;
- users have an audible and a hidden taste vector; a user's affinity for a song is
  ``sqrt(a) * audible + sqrt(1 - a) * hidden`` (both parts standardised, a =
  ``audible_share``) and the songs they play are drawn with probability proportional to
  ``exp(taste_scale * affinity) * popularity``. At ``audible_share = 0`` nothing users do
  depends on the audio, and popularity is never audible;
- 50 tags (genres, acoustic attributes, moods from the audible factors; era/scene tags
  from the hidden ones) with label noise;
- optional niche listeners (``niche_share`` n, unset = absent, bit for bit): a share n of
  the users, drawn at random (stream ``[seed, 15]``), are niche listeners whose plays ignore
  popularity (drawn with probability proportional to ``exp(taste_scale * affinity)``); the
  others are unchanged. Popular songs then stay frequent in the logs (the mainstream users
  play them) without every user's plays following popularity: the premise of popularity-
  drawn negatives (Tran et al., SIGIR 2019). At 0 every user is mainstream (the unset data);
- optional artist loyalty (``artist_loyalty`` l, unset = absent, bit for bit): each of a
  user's plays is, with probability l, a *follow-up*: it is replaced by a song, drawn
  uniformly, of the artist of another of the user's plays (one the user kept, drawn
  uniformly), one the user has not played yet (no such song: the play stays). Having played
  an artist's song raises the chance of its other songs whatever the user's taste: an
  item-item structure (same-artist co-listening) that is not low-rank user taste, since
  which artists a user follows depends on the draws, over about songs / 4 artists. At 0 no
  play is replaced (the unset data). Its own random stream ``[seed, 14]``;
- optional side information (user features, artists and genres, sessions with skips, a
  tokens modality, categorical features), each with its own strength: see synth_side.py;
  ``log_propensities = true`` (with sessions) records on each event the probability with
  which the platform's exposure law showed that track (``events.propensity``; the logging
  policy of off-policy evaluation, see synth_oracle.py), and ``logging_uniform`` (with
  it) draws that share of the exposures uniformly at random (a platform that randomises
  part of its traffic). Unset / 0: no column / the platform's own law, data unchanged.

Presets (param ``preset``; every other param overrides the preset's value):

========= ======= ====== ======= ====== =================================================
preset    users   songs  clip_s  sr     feature params (``dataset.manifest["feature_params"]``)
========= ======= ====== ======= ====== =================================================
tiny      300     200    1.5     8000   n_fft 256, hop 128, 32 mels, 1-s windows (CI)
small     2000    1000   4.0     16000  n_fft 1024, hop 512, 64 mels, 3-s windows
default   6000    3000   6.0     22050  the paper's: 1024 / 512 / 128 mels, 3-s windows
paper     20000   10000  30.0    22050  the paper's, 30-s clips
========= ======= ====== ======= ====== =================================================

The feature parameters that fit the preset are published as
``dataset.manifest["feature_params"]``; :func:`recbench.features.load_features` and the
runner apply them before the suite's ``[features]`` table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset, hash_arrays
from recbench.errors import ConfigError
from recbench.params import Param

from . import synth_side
from .synth_audio import SynthAudio
from .synth_side import GENRES
from .synth_taste import make_taste

GENERATOR_VERSION = "synth-msd-v1"  # bump whenever generated content changes

N_AUDIBLE = 8  # tempo, onset rate, register, key (2 dims: an angle), brightness, percussion, density
N_HIDDEN = 8
ACOUSTIC_TAGS = (  # (factor column, high-end tag, low-end tag)
    (0, "fast", "slow"), (1, "busy", "sparse"), (2, "high-pitched", "bass-heavy"),
    (5, "bright", "mellow"), (6, "percussive", "smooth"), (7, "dense-rhythm", "laid-back"))
MOOD_TAGS = ("happy", "sad", "chill", "energetic", "dark", "dreamy", "upbeat", "melancholic",
             "romantic", "aggressive", "groovy", "atmospheric", "catchy", "relaxing", "epic",
             "quirky")
HIDDEN_TAGS = ("80s", "90s", "00s", "indie", "mainstream", "underground", "female-vocalist",
               "male-vocalist", "british", "cover")

PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"users": 300, "songs": 200, "clip_s": 1.5, "sample_rate": 8000,
             "plays_per_user": 15,
             "feature_params": {"n_fft": 256, "hop_length": 128, "n_mels": 32,
                                "window_s": 1.0}},
    "small": {"users": 2000, "songs": 1000, "clip_s": 4.0, "sample_rate": 16000,
              "plays_per_user": 20,
              "feature_params": {"n_fft": 1024, "hop_length": 512, "n_mels": 64,
                                 "window_s": 3.0}},
    "default": {"users": 6000, "songs": 3000, "clip_s": 6.0, "sample_rate": 22050,
                "plays_per_user": 30,
                "feature_params": {"n_fft": 1024, "hop_length": 512, "n_mels": 128,
                                   "window_s": 3.0}},
    "paper": {"users": 20000, "songs": 10000, "clip_s": 30.0, "sample_rate": 22050,
              "plays_per_user": 60,
              "feature_params": {"n_fft": 1024, "hop_length": 512, "n_mels": 128,
                                 "window_s": 3.0}},
}
POP_EXPONENT = 0.7  # song popularity ~ rank^-0.7 (with taste: oracle popularity AUC ~0.75)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _uniform(z: np.ndarray, sd: float) -> np.ndarray:
    """Map normal scores of standard deviation `sd` to (0, 1) through the normal CDF."""
    from scipy.special import ndtr

    return ndtr(z / sd)


# --------------------------------------------------------------------------- latent world


def make_songs(seed: int, songs: int) -> dict[str, np.ndarray]:
    """Per-song latent factors, each from its own random stream (so they are independent).

    Returns audible (songs, 8) style scores, genre (songs,), hidden (songs, 8), artist
    (songs,), log_pop (songs,) log popularity, and the genre centres (12, 8).
    """
    ra = np.random.default_rng([seed, 1])
    centres = ra.normal(size=(len(GENRES), N_AUDIBLE))
    genre = ra.integers(len(GENRES), size=songs)
    audible = centres[genre] + 0.6 * ra.normal(size=(songs, N_AUDIBLE))

    rh = np.random.default_rng([seed, 2])
    n_artists = max(1, songs // 4)
    artist = rh.integers(n_artists, size=songs)
    artist_vec = rh.normal(size=(n_artists, N_HIDDEN))
    hidden = artist_vec[artist] + 0.6 * rh.normal(size=(songs, N_HIDDEN))

    rp = np.random.default_rng([seed, 3])
    hype = rp.normal(size=n_artists)  # artist hype: popular, never audible
    log_pop = -POP_EXPONENT * np.log1p(rp.permutation(songs)) + 0.5 * hype[artist]
    return {"audible": audible, "genre": genre, "hidden": hidden, "artist": artist,
            "log_pop": log_pop, "centres": centres}


def make_counts(seed: int, users: int, world: dict[str, np.ndarray], audible_share: float,
                plays_per_user: float, taste_scale: float = 2.5, chunk: int = 1000,
                niche_share: float | None = None):
    """Users x songs play counts (CSR float32) from the latent world.

    Each user plays n_u songs (log-normal around `plays_per_user`, at least 5, at most half
    the songs) drawn without replacement with probability proportional to
    exp(taste_scale * affinity + log_pop) (Gumbel top-k), where affinity =
    sqrt(audible_share) * a + sqrt(1 - audible_share) * h and a, h are the standardised
    dot products of unit-normalised user and song vectors (:func:`make_taste`). Play counts
    are 1 + Poisson. Every song gets at least one listener (its best-matching user).
    `niche_share` (None: absent): that share of the users drop the log_pop term.
    """
    import scipy.sparse as sp

    songs = len(world["log_pop"])
    t = make_taste(seed, users, world, audible_share)
    u_a, u_h, s_a, s_h, w_a, w_h = (t[k] for k in ("u_a", "u_h", "s_a", "s_h", "w_a", "w_h"))
    n_u = np.exp(np.log(plays_per_user) + 0.6 * t["rng"].normal(size=users))
    n_u = np.clip(np.rint(n_u), min(5, songs), max(min(5, songs), songs // 2)).astype(np.int64)

    def affinity(rows: slice | np.ndarray, cols=slice(None)) -> np.ndarray:
        return w_a * (u_a[rows] @ s_a[cols].T) + w_h * (u_h[rows] @ s_h[cols].T)

    pop_w = np.ones(users)
    if niche_share is not None:
        pop_w[np.random.default_rng([seed, 15]).random(users) < niche_share] = 0.0
    rg = np.random.default_rng([seed, 5])
    rows_l, cols_l, vals_l = [], [], []
    for start in range(0, users, chunk):
        rows = np.arange(start, min(start + chunk, users))
        aff = affinity(rows)
        log_pop = world["log_pop"][None, :]
        if niche_share is not None:
            log_pop = pop_w[rows, None] * log_pop
        keys = taste_scale * aff + log_pop + rg.gumbel(size=aff.shape)
        k = n_u[rows]
        kmax = int(k.max())
        top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
        top_keys = np.take_along_axis(keys, top, axis=1)
        top = np.take_along_axis(top, np.argsort(-top_keys, axis=1), axis=1)
        take = np.arange(kmax)[None, :] < k[:, None]
        r = np.broadcast_to(rows[:, None], top.shape)[take]
        c = top[take]
        a = aff[r - start, c]
        rows_l.append(r)
        cols_l.append(c)
        vals_l.append(1.0 + rg.poisson(np.exp(0.5 * a)))
    r, c, v = np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(vals_l)
    orphans = np.setdiff1d(np.arange(songs), c)
    if len(orphans):
        best = np.argmax(affinity(slice(None), orphans), axis=0)
        r, c = np.r_[r, best], np.r_[c, orphans]
        v = np.r_[v, np.ones(len(orphans))]
    counts = sp.csr_matrix((v.astype(np.float32), (r, c)), shape=(users, songs))
    counts.sort_indices()
    return counts


def add_loyalty(seed: int, counts, artist: np.ndarray, share: float):
    """`counts` with a share of each user's plays turned into artist follow-ups (see the
    module docstring, ``artist_loyalty``); the replaced play's count is kept. CSR float32."""
    import scipy.sparse as sp

    counts = counts.tocsr()
    if share <= 0:
        return counts
    rng = np.random.default_rng([seed, 14])
    order = np.argsort(artist, kind="stable")
    starts = np.searchsorted(artist[order], np.arange(artist.max() + 2))
    rows, cols, vals = [], [], []
    for u in range(counts.shape[0]):
        lo, hi = counts.indptr[u], counts.indptr[u + 1]
        songs, v = counts.indices[lo:hi].copy(), counts.data[lo:hi]
        follow = np.flatnonzero(rng.random(len(songs)) < share)
        kept = np.setdiff1d(np.arange(len(songs)), follow)
        played = set(songs.tolist())
        for j in follow if len(kept) else ():
            a = artist[songs[kept[rng.integers(len(kept))]]]
            free = [s for s in order[starts[a]:starts[a + 1]] if s not in played]
            if free:
                played.discard(int(songs[j]))
                songs[j] = free[rng.integers(len(free))]
                played.add(int(songs[j]))
        rows.append(np.full(len(songs), u))
        cols.append(songs)
        vals.append(v)
    out = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=counts.shape, dtype=np.float32)
    out.sort_indices()
    return out


def acoustic_params(world: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-song synthesis parameters from the audible factors only.

    tempo_bpm 70-170, notes_per_beat 0.5-4, register (MIDI note) 40-76, key 0-11,
    brightness 0-1, percussion 0-1 (snare / hi-hat level), density 0-1 (hi-hat rate).
    """
    sd = float(np.sqrt(1.0 + 0.36))  # a genre centre (sd 1) plus the song's own 0.6
    u = _uniform(world["audible"], sd)
    key = np.floor((np.arctan2(world["audible"][:, 4], world["audible"][:, 3]) / (2 * np.pi)
                    % 1.0) * 12).astype(np.int64) % 12
    return {"tempo_bpm": 70.0 + 100.0 * u[:, 0],
            "notes_per_beat": 2.0 ** (-1.0 + 3.0 * u[:, 1]),
            "register": np.rint(40 + 36 * u[:, 2]).astype(np.int64),
            "key": key, "brightness": u[:, 5], "percussion": u[:, 6], "density": u[:, 7]}


def make_tags(seed: int, world: dict[str, np.ndarray], label_noise: float):
    """Songs x 50 binary tags (CSR float32) and their names.

    12 genre tags (the song's genre), 12 acoustic tags (top / bottom 20 % of six audible
    factors), 16 mood tags (top 5-25 % of random projections of the audible factors) and 10
    era/scene tags (the same on hidden factors and the artist hype: not audible). Label
    noise drops a true tag with probability `label_noise` and adds a false one at a rate
    keeping each tag's frequency about the same.
    """
    import scipy.sparse as sp

    rt = np.random.default_rng([seed, 6])
    n = len(world["genre"])
    cols, names = [], []
    for g, name in enumerate(GENRES):
        cols.append(world["genre"] == g)
        names.append(name)
    for j, hi, lo in ACOUSTIC_TAGS:
        z = world["audible"][:, j]
        cols += [z >= np.quantile(z, 0.8), z <= np.quantile(z, 0.2)]
        names += [hi, lo]
    s_a = _unit(world["audible"])
    for name in MOOD_TAGS:
        proj = s_a @ rt.normal(size=N_AUDIBLE)
        cols.append(proj >= np.quantile(proj, 1.0 - rt.uniform(0.05, 0.25)))
        names.append(name)
    hid = np.c_[_unit(world["hidden"]), world["log_pop"] / max(world["log_pop"].std(), 1e-9)]
    for name in HIDDEN_TAGS:
        proj = hid @ rt.normal(size=hid.shape[1])
        cols.append(proj >= np.quantile(proj, 1.0 - rt.uniform(0.05, 0.25)))
        names.append(name)
    truth = np.stack(cols, axis=1)
    prev = truth.mean(axis=0, keepdims=True)
    flip_on = rt.random(truth.shape) < label_noise * prev / np.maximum(1.0 - prev, 1e-9)
    keep = rt.random(truth.shape) >= label_noise
    tags = np.where(truth, keep, flip_on)
    assert tags.shape == (n, 50)
    return sp.csr_matrix(tags.astype(np.float32)), names


# --------------------------------------------------------------------------- loader


class SynthMSD(DatasetLoader):
    """Synthetic MSD-shaped dataset with audio synthesised from latent style factors."""

    name = "synth-msd"
    description = ("Synthetic MSD-shaped data: audio from latent style factors that partly "
                   "drive listening (synthetic)")
    synthetic = True
    params = (
        Param("preset", str, "small", "size preset", choices=tuple(PRESETS)),
        Param("seed", int, 0, "generator seed"),
        Param("users", int, None, "number of users (default: the preset's)", min=2),
        Param("songs", int, None, "number of songs (default: the preset's)", min=10),
        Param("clip_s", float, None, "clip length in seconds (default: the preset's)",
              min=0.1),
        Param("sample_rate", int, None, "audio sample rate in Hz (default: the preset's)",
              min=4000),
        Param("audible_share", float, 0.5,
              "share of the preference signal carried by audible factors (0: audio "
              "independent of listening)", min=0.0, max=1.0),
        Param("plays_per_user", float, None,
              "median songs per user (default: the preset's)", min=1.0),
        Param("taste_scale", float, 2.5, "strength of taste against popularity", min=0.0),
        Param("label_noise", float, 0.1, "tag label noise", min=0.0, max=0.5),
        Param("niche_share", float, None, "share of users whose plays ignore popularity "
              "(unset: none)", min=0.0, max=1.0),
        Param("artist_loyalty", float, None, "share of plays that follow up another "
              "played song's artist, beyond taste (unset: none)", min=0.0, max=1.0),
        *synth_side.PARAMS,  # issue 12 side mechanisms
        Param("log_propensities", bool, False, "record on each event the probability with "
              "which the exposure law showed it (events.propensity, for off-policy "
              "evaluation; with skip_strength; false: no column, data unchanged)"),
        Param("logging_uniform", float, 0.0, "with log_propensities: share of exposures "
              "drawn uniformly at random over all songs (a randomised logging policy; 0: "
              "the platform's own exposure law, data unchanged)", min=0.0, max=1.0),
    )

    def config(self) -> dict[str, Any]:
        """The resolved generator configuration (preset values overridden by params)."""
        o = dict(self.options)
        preset = PRESETS[o["preset"]]
        cfg = {k: (o[k] if o.get(k) is not None else v) for k, v in preset.items()
               if k != "feature_params"}
        for k in ("seed", "audible_share", "taste_scale", "label_noise", "preset"):
            cfg[k] = o[k]
        for k in ("niche_share", "artist_loyalty"):  # unset: the default config unchanged
            if o.get(k) is not None:
                cfg[k] = o[k]
        cfg.update(synth_side.config(o))  # only the knobs set: the default is unchanged
        if o.get("log_propensities"):  # like the knobs: in the config only when on
            cfg["log_propensities"] = True
            if o.get("logging_uniform"):
                cfg["logging_uniform"] = float(o["logging_uniform"])
        fp = dict(preset["feature_params"])
        fp["sample_rate"], fp["clip_s"] = int(cfg["sample_rate"]), float(cfg["clip_s"])
        if fp["window_s"] > cfg["clip_s"]:
            fp["window_s"] = float(cfg["clip_s"])
        cfg["feature_params"] = fp
        return cfg

    def validate(self, suite_dir: str | None = None) -> None:
        cfg = self.config()
        if cfg["plays_per_user"] > cfg["songs"]:
            raise ConfigError(f"plays_per_user ({cfg['plays_per_user']}) exceeds songs "
                              f"({cfg['songs']})", key="dataset.synth-msd.plays_per_user")
        if cfg.get("log_propensities") and "skip_strength" not in cfg:
            raise ConfigError("log_propensities needs the event log: set skip_strength",
                              key="dataset.synth-msd.log_propensities")
        if self.options.get("logging_uniform") and not cfg.get("log_propensities"):
            raise ConfigError("logging_uniform is the logging policy of log_propensities: "
                              "set log_propensities = true", key="dataset.synth-msd."
                              "logging_uniform")

    def provides(self, suite_dir: str | None = None) -> tuple[str, ...]:
        """interactions, audio, tags, and the side parts whose knobs are set."""
        return ("interactions", "audio", "tags", *synth_side.provides(self.config()))

    def load(self, ctx: LoadContext) -> Dataset:
        self.validate()
        cfg = self.config()
        seed = cfg["seed"]
        world = make_songs(seed, cfg["songs"])
        world, side, timbre = synth_side.restyle(cfg, world)
        counts = make_counts(seed, cfg["users"], world, cfg["audible_share"],
                             cfg["plays_per_user"], cfg["taste_scale"],
                             niche_share=cfg.get("niche_share"))
        if "artist_loyalty" in cfg:
            counts = add_loyalty(seed, counts, world["artist"], cfg["artist_loyalty"])
        if synth_side.needs_taste(cfg):
            taste = make_taste(seed, cfg["users"], world, cfg["audible_share"])
            counts = synth_side.add_parts(cfg, world, taste, side, counts)
        tags, tag_names = make_tags(seed, world, cfg["label_noise"])
        acoustic = {**acoustic_params(world), **timbre}
        # audio depends only on these: seed, songs (the factors), clip and sample rate (and
        # the artist style, when set)
        token = hash_arrays(GENERATOR_VERSION, seed, cfg["songs"], cfg["clip_s"],
                            cfg["sample_rate"], *synth_side.audio_knobs(cfg))
        audio = SynthAudio(acoustic, cfg["sample_rate"], cfg["clip_s"], seed, token)
        manifest = {"generator": GENERATOR_VERSION,
                    **{k: v for k, v in cfg.items() if k != "feature_params"},
                    "feature_params": cfg["feature_params"]}
        d = Dataset(
            name=self.name, counts=counts,
            user_ids=np.array([f"user{i:06d}" for i in range(cfg["users"])]),
            song_ids=np.array([f"song{i:06d}" for i in range(cfg["songs"])]),
            audio=audio, tags=tags, tag_names=tag_names, synthetic=True, manifest=manifest,
            **side)
        d.validate_side()
        return d


@hookimpl
def recbench_register_datasets(register):
    register(SynthMSD)
