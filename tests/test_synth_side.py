"""synth-msd side mechanisms (issue 12): each knob's signal is usable when on and absent at 0.

For each mechanism a simple model that uses it is compared with the same model without it,
averaged over three seeds of the tiny preset (600 users): with the knob on it must win by a
stated margin; at 0 it must not win by more than a stated tolerance. The figures measured
when the tests were written are in each test's docstring.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from recbench_builtin.datasets import synth_side
from recbench_builtin.datasets.synth_msd import SynthMSD
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score

from recbench.components import LoadContext

CTX = LoadContext(cache_dir="unused")
SEEDS = (0, 1, 2)
TINY_FINGERPRINT = "6fc2a1a3ed3b9f47"  # SynthMSD(preset="tiny") before issue 12 (272c85f)
SMALL_FINGERPRINT = "d2eeb93ea163141e"  # SynthMSD(preset="small"), same commit


def _load(seed: int, **knobs):
    return SynthMSD(preset="tiny", users=600, seed=seed, **knobs).load(CTX)


def _auc_rows(scores: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over rows of the AUC of `scores` for the positives in `truth` among the entries
    where `mask` is True (all by default); rows without both classes are left out."""
    mask = np.ones(truth.shape, bool) if mask is None else mask
    truth = truth & mask
    ranks = rankdata(np.where(mask, scores, -np.inf), axis=1)  # masked: lowest, never positive
    n_pos = truth.sum(axis=1)
    n_neg = mask.sum(axis=1) - n_pos
    n_out = (~mask).sum(axis=1)
    u = (ranks * truth).sum(axis=1) - n_pos * (n_pos + 1) / 2 - n_pos * n_out
    ok = (n_pos > 0) & (n_neg > 0)
    return float(np.mean(u[ok] / (n_pos[ok] * n_neg[ok])))


def _user_split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(0.7 * n)
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def _holdout(counts: sp.csr_matrix, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) binary users x songs: a quarter of each user's songs held out."""
    x = (counts.toarray() > 0)
    rng = np.random.default_rng(seed)
    test = np.zeros_like(x)
    for u in range(len(x)):
        songs = np.flatnonzero(x[u])
        test[u, rng.choice(songs, size=len(songs) // 4, replace=False)] = True
    return x & ~test, test


# --------------------------------------------------------------------------- contract


def test_defaults_unchanged_and_parts_absent():
    """The presets' content and fingerprints are those of before issue 12."""
    tiny = SynthMSD(preset="tiny").load(CTX)
    assert tiny.fingerprint == TINY_FINGERPRINT
    assert tiny.side_parts() == [] and "side" not in tiny.summary()
    assert SynthMSD(preset="small").load(CTX).fingerprint == SMALL_FINGERPRINT
    assert SynthMSD(preset="tiny").provides() == ("interactions", "audio", "tags")
    assert not any(k in tiny.manifest for k in synth_side.KNOBS + synth_side.SESSION_KNOBS)


def test_knobs_at_zero_leave_counts_and_audio_alone_except_sessions():
    """The taste-reading parts are drawn beside the counts: switching them on (at 0 or 1)
    changes no play count, and the artist mechanism at 0 moves no song."""
    base = SynthMSD(preset="tiny").load(CTX)
    for knobs in ({"user_feature_strength": 1.0, "modality_strength": 1.0,
                   "categorical_strength": 1.0},
                  {"artist_style_strength": 0.0}):
        d = SynthMSD(preset="tiny", **knobs).load(CTX)
        assert (d.counts != base.counts).nnz == 0 and (d.tags != base.tags).nnz == 0
        assert d.fingerprint != base.fingerprint  # the side parts are hashed
    moved = SynthMSD(preset="tiny", artist_style_strength=0.5).load(CTX)
    assert (moved.counts != base.counts).nnz > 0
    assert moved.audio.identity(0) != base.audio.identity(0)


def test_provides_and_parts_per_knob():
    cases = {"user_feature_strength": ["user_features", "user_categories"],
             "artist_style_strength": ["song_categories"],
             "skip_strength": ["events"], "modality_strength": ["modalities"],
             "categorical_strength": ["user_categories", "song_categories"]}
    for knob, parts in cases.items():
        loader = SynthMSD(preset="tiny", **{knob: 0.0})
        assert loader.provides() == ("interactions", "audio", "tags", *parts)
        d = loader.load(CTX)
        assert d.side_parts() == [p for p in ("user_features", "user_categories",
                                              "song_categories", "modalities", "events")
                                  if p in parts]
        assert d.manifest[knob] == 0.0
    d = SynthMSD(preset="tiny", user_feature_strength=0.5, artist_style_strength=0.5,
                 categorical_strength=0.5, modality_strength=0.5, skip_strength=0.5).load(CTX)
    assert d.user_features.shape == (300, 6) and d.user_features.dtype == np.float32
    assert set(d.user_categories) == {"age_band", "gender", "country"}
    assert set(d.song_categories) == {"artist", "genre", "label"}
    assert d.category_names["song:genre"][0] == "rock"
    assert d.modalities["tokens"].shape == (200, synth_side.N_TOKENS)
    assert d.manifest["session_length"] == 8.0 and d.manifest["skip_rate"] == 0.25
    assert SynthMSD(preset="tiny", user_feature_strength=0.5).load(CTX).fingerprint != \
        SynthMSD(preset="tiny", user_feature_strength=0.6).load(CTX).fingerprint


def test_events_log_is_valid_and_counts_are_its_plays():
    d = SynthMSD(preset="tiny", skip_strength=1.0, skip_prev_strength=1.0,
                 sessions_per_user=4.0, session_length=5.0).load(CTX)
    ev = d.events
    ev.validate(d.n_users, d.n_songs)
    keep = ~ev.skipped
    plays = sp.csr_matrix((np.ones(int(keep.sum())), (ev.user[keep], ev.song[keep])),
                          shape=d.counts.shape)
    assert (plays != d.counts).nnz == 0
    assert np.asarray((d.counts > 0).sum(axis=0)).min() >= 1  # every song has a listener
    assert np.diff(d.counts.indptr).min() >= 1  # every user has a play
    n_sess = len(np.unique(ev.session))
    assert 3.0 < n_sess / d.n_users < 5.0  # about sessions_per_user
    assert 4.0 < len(ev) / n_sess < 6.0  # about session_length
    s = ev.sessions_of(0)
    assert all(np.all(np.diff(ev.timestamp[i]) > 0) for i in s)
    # skipped tracks last 5-30 s, played ones 2-5 min
    i = np.concatenate([x[:-1] for x in s])
    gaps = ev.timestamp[i + 1] - ev.timestamp[i]
    assert np.all((gaps < 31) == ev.skipped[i])
    zero = SynthMSD(preset="tiny", skip_strength=0.0).load(CTX).events
    assert abs(zero.skipped.mean() - 0.25) < 0.02  # skip_rate at strength 0


def test_auc_rows_matches_sklearn():
    rng = np.random.default_rng(0)
    scores, truth = rng.normal(size=(5, 30)), rng.random((5, 30)) < 0.3
    mask = rng.random((5, 30)) < 0.7
    want = np.mean([roc_auc_score(truth[i][mask[i]], scores[i][mask[i]]) for i in range(5)])
    assert _auc_rows(scores, truth, mask) == pytest.approx(want)


# --------------------------------------------------------------------------- mechanisms


def _mean_gain(run, strength: float) -> float:
    """Mean over SEEDS of (model with the mechanism) - (model without it)."""
    return float(np.mean([np.subtract(*run(strength, seed)) for seed in SEEDS]))


def _onehot(codes: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((len(codes), n))
    known = codes >= 0
    out[np.flatnonzero(known), codes[known]] = 1.0
    return out


def _user_features_vs_popularity(strength: float, seed: int) -> tuple[float, float]:
    """Held-out users' plays: ridge regression from their features vs global popularity."""
    d = _load(seed, user_feature_strength=strength)
    x = np.c_[d.user_features, _onehot(d.user_categories["age_band"], 5),
              _onehot(d.user_categories["gender"], 2)]
    tr, te = _user_split(d.n_users, seed)
    x = (x - x[tr].mean(0)) / np.maximum(x[tr].std(0), 1e-9)
    y = d.counts.toarray() > 0
    pred = Ridge(alpha=50.0).fit(x[tr], y[tr].astype(float)).predict(x[te])
    pop = np.tile(y[tr].mean(0), (len(te), 1))
    return _auc_rows(pred, y[te]), _auc_rows(pop, y[te])


def test_a_user_features():
    """Measured (AUC gain over popularity, mean of 3 seeds): +0.132 at 1, +0.065 at 0.5,
    -0.035 at 0 (the ridge fits noise)."""
    assert _mean_gain(_user_features_vs_popularity, 1.0) > 0.05
    assert _mean_gain(_user_features_vs_popularity, 0.0) < 0.005


def _artist_from_acoustics(strength: float, seed: int) -> tuple[float, float]:
    """(leave-one-out accuracy of the nearest artist centroid of the acoustic params, chance)
    over the songs of artists with at least two songs."""
    d = _load(seed, artist_style_strength=strength)
    ac = d.audio.acoustic
    key = 2 * np.pi * ac["key"] / 12
    x = np.c_[np.stack([ac[k] for k in ("tempo_bpm", "notes_per_beat", "register",
                                        "brightness", "percussion", "density", "timbre",
                                        "detune")], axis=1), np.sin(key), np.cos(key)]
    x = (x - x.mean(0)) / x.std(0)
    artist = d.song_categories["artist"]
    cand = np.flatnonzero(np.bincount(artist) >= 2)
    onehot = (artist[:, None] == cand[None, :]).astype(float)
    sums, sizes = onehot.T @ x, onehot.sum(0)
    hits = []
    for i in np.flatnonzero(np.isin(artist, cand)):
        own = cand == artist[i]
        cent = (sums - own[:, None] * x[i]) / (sizes - own)[:, None]  # i left out
        hits.append(cand[np.argmin(((cent - x[i]) ** 2).sum(1))] == artist[i])
    return float(np.mean(hits)), 1.0 / len(cand)


def test_b_artist_style():
    """Measured (accuracy gain over chance, ~0.023): +0.139 at 0.5, +0.62 at 1, +0.003 at 0."""
    assert _mean_gain(_artist_from_acoustics, 0.5) > 0.06
    assert _mean_gain(_artist_from_acoustics, 0.0) < 0.015
    d = _load(0, artist_style_strength=1.0)  # songs follow their artist's genre
    genre, artist = d.song_categories["genre"], d.song_categories["artist"]
    assert all(len(set(genre[artist == a])) == 1 for a in np.unique(artist))


def _artist_in_genre(sound: float, seed: int) -> tuple[float, float]:
    """(leave-one-out accuracy of the nearest artist centroid of the audible acoustic params,
    timbre left out, among the artists of the song's genre; chance) with genres shared by
    each artist's songs (artist_style_strength 1) and the artist sound at `sound`."""
    d = _load(seed, artist_style_strength=1.0, artist_sound_strength=sound)
    ac = d.audio.acoustic
    key = 2 * np.pi * ac["key"] / 12
    x = np.c_[np.stack([ac[k] for k in ("tempo_bpm", "notes_per_beat", "register",
                                        "brightness", "percussion", "density")], axis=1),
              np.sin(key), np.cos(key)]
    x = (x - x.mean(0)) / x.std(0)
    artist, genre = d.song_categories["artist"], d.song_categories["genre"]
    hits, chance = [], []
    for i in np.flatnonzero(np.bincount(artist)[artist] >= 2):
        rivals = np.unique(artist[genre == genre[i]])
        cent = np.stack([x[(artist == a) & (np.arange(len(x)) != i)].mean(0) for a in rivals])
        ok = np.array([((artist == a) & (np.arange(len(x)) != i)).any() for a in rivals])
        dist = np.where(ok, ((cent - x[i]) ** 2).sum(1), np.inf)
        hits.append(rivals[np.argmin(dist)] == artist[i])
        chance.append(1.0 / ok.sum())
    return float(np.mean(hits)), float(np.mean(chance))


def test_b2_artist_sound_within_genre():
    """Measured (accuracy gain over chance ~0.26 among the genre's artists, mean of 3
    seeds): +0.741 at 1, +0.436 at 0.5, +0.011 at 0; at 0 the data are those of the unset
    knob, bit for bit."""
    assert _mean_gain(_artist_in_genre, 0.5) > 0.2
    assert _mean_gain(_artist_in_genre, 0.0) < 0.05
    base = _load(0, artist_style_strength=1.0)
    zero = _load(0, artist_style_strength=1.0, artist_sound_strength=0.0)
    assert (zero.counts != base.counts).nnz == 0
    for k, v in base.audio.acoustic.items():
        np.testing.assert_array_equal(zero.audio.acoustic[k], v)
    one = _load(0, artist_style_strength=1.0, artist_sound_strength=1.0)
    assert (one.counts != base.counts).nnz > 0  # listening follows the audible factors
    assert one.audio.identity(0) != zero.audio.identity(0) != base.audio.identity(0)


def _cos_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.einsum("ij,ij->i", a, b) / np.maximum(norm, 1e-12)


def _skip_auc(taste: float, prev: float, seed: int) -> float:
    """AUC on held-out users of a logistic skip predictor on the tag cosine of the track to
    the user's plays in their other sessions and to the previous track (base rate: 0.5)."""
    d = _load(seed, skip_strength=taste, skip_prev_strength=prev)
    ev, tags = d.events, d.tags.toarray()
    t = tags[ev.song]
    played = (~ev.skipped)[:, None] * t
    per_user = np.zeros((d.n_users, t.shape[1]))
    per_session = np.zeros((int(ev.session.max()) + 1, t.shape[1]))
    np.add.at(per_user, ev.user, played)
    np.add.at(per_session, ev.session, played)
    first = np.r_[True, ev.session[1:] != ev.session[:-1]]
    x = np.c_[_cos_rows(t, per_user[ev.user] - per_session[ev.session]),
              np.where(first, 0.0, _cos_rows(t, np.r_[t[:1], t[:-1]])), first]
    tr, te = (np.isin(ev.user, part) for part in _user_split(d.n_users, seed))
    model = LogisticRegression().fit(x[tr], ev.skipped[tr])
    return roc_auc_score(ev.skipped[te], model.decision_function(x[te]))


def test_c_skips():
    """Measured (AUC, mean of 3 seeds): 0.734 with skip_strength 1, 0.702 with
    skip_prev_strength 1, 0.714 with both 0.5, 0.492 with both 0."""
    auc = {k: np.mean([_skip_auc(*k, seed) for seed in SEEDS])
           for k in ((1.0, 0.0), (0.0, 1.0), (0.0, 0.0))}
    assert auc[1.0, 0.0] > 0.62 and auc[0.0, 1.0] > 0.62
    assert auc[0.0, 0.0] < 0.52


def _zrows(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(1, keepdims=True)) / np.maximum(x.std(1, keepdims=True), 1e-12)


def _tokens_knn_vs_popularity(strength: float, seed: int) -> tuple[float, float]:
    """Held-out plays: popularity + 20-NN tf-idf token similarity to the user's songs vs
    popularity alone (AUC over the songs not in the user's training plays)."""
    d = _load(seed, modality_strength=strength)
    train, test = _holdout(d.counts, seed)
    tok = d.modalities["tokens"].toarray()
    w = np.log1p(tok) * np.log(len(tok) / np.maximum((tok > 0).sum(0), 1))
    w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-12)
    sim = w @ w.T
    np.fill_diagonal(sim, 0.0)
    sim[sim < -np.sort(-sim, axis=1)[:, 19:20]] = 0.0
    pop = np.tile(np.log1p(train.sum(0)), (len(train), 1))
    knn = _zrows(pop) + _zrows(train.astype(float) @ sim.T)
    return _auc_rows(knn, test, ~train), _auc_rows(pop, test, ~train)


def test_d_tokens_modality():
    """Measured (AUC gain over popularity): +0.112 at 1, +0.035 at 0.5, -0.048 at 0."""
    assert _mean_gain(_tokens_knn_vs_popularity, 1.0) > 0.05
    assert _mean_gain(_tokens_knn_vs_popularity, 0.0) < 0.005


def _country_vs_global(strength: float, seed: int) -> tuple[float, float]:
    """Held-out users: popularity among the training users of their country (shrunk to the
    global popularity) vs global popularity."""
    d = _load(seed, categorical_strength=strength)
    y = d.counts.toarray() > 0
    tr, te = _user_split(d.n_users, seed)
    c = d.user_categories["country"]
    glob = y[tr].mean(0)
    cond = np.stack([(y[tr][c[tr] == k].sum(0) + 5 * glob) / ((c[tr] == k).sum() + 5)
                     for k in range(synth_side.N_COUNTRIES)])
    return _auc_rows(cond[c[te]], y[te]), _auc_rows(np.tile(glob, (len(te), 1)), y[te])


def _label_vs_global(strength: float, seed: int) -> tuple[float, float]:
    """Held-out plays: popularity times the user's (smoothed) lift for the song's label vs
    popularity alone."""
    d = _load(seed, categorical_strength=strength)
    train, test = _holdout(d.counts, seed)
    lab = np.eye(synth_side.N_LABELS)[d.song_categories["label"]]
    share = (train @ lab + 1.0) / (train.sum(1, keepdims=True) + synth_side.N_LABELS)
    overall = (train.sum(0) @ lab + 1.0) / (train.sum() + synth_side.N_LABELS)
    code = d.song_categories["label"]
    pop = np.log1p(train.sum(0))[None, :]
    lift = pop + np.log(share[:, code] / overall[code])
    return _auc_rows(lift, test, ~train), _auc_rows(np.tile(pop, (len(train), 1)), test, ~train)


def test_e_categorical_features():
    """Measured (AUC gain over global popularity): country +0.066 at 1, +0.022 at 0.5,
    -0.032 at 0; label +0.022 at 1 (per seed +0.030, +0.024, +0.012), -0.012 at 0.5, -0.054
    at 0."""
    assert _mean_gain(_country_vs_global, 1.0) > 0.03
    assert _mean_gain(_country_vs_global, 0.0) < 0.005
    assert _mean_gain(_label_vs_global, 1.0) > 0.01
    assert _mean_gain(_label_vs_global, 0.0) < 0.005


def test_strength_zero_parts_do_not_read_taste():
    """Exact, like the audible_share leak check: at strength 0 every part is the same
    whatever the users' taste and the songs' styles (here permuted); at 1 it is not."""
    from recbench_builtin.datasets.synth_msd import make_songs
    from recbench_builtin.datasets.synth_taste import make_taste

    world = make_songs(4, 120)
    taste = make_taste(4, 150, world, 0.5)
    rng = np.random.default_rng(0)
    other = dict(taste, u_a=taste["u_a"][rng.permutation(150)],
                 u_h=taste["u_h"][rng.permutation(150)],
                 s_a=taste["s_a"][rng.permutation(120)], s_h=taste["s_h"][rng.permutation(120)])
    cfg = {"skip_rate": 0.25, "sessions_per_user": 3.0, "session_length": 5.0,
           "taste_scale": 2.5, "skip_prev_strength": 0.0}

    def parts(t, s):
        feats, _, ucats, _ = synth_side.user_features(4, t, s)
        country, label, _ = synth_side.categories(4, t, s)
        ev, _ = synth_side.sessions(4, t, world, dict(cfg, skip_strength=s,
                                                      skip_prev_strength=s))
        # the songs listened to follow taste by design; which of them are skipped must not
        # (compared on the drawn sessions: the ids after them give orphan songs a listener)
        drawn = (1 + np.random.default_rng([4, 24]).poisson(2.0, size=150)).sum()
        return [feats, ucats["gender"], country["country"], label["label"],
                synth_side.tokens(4, t, s).toarray(), ev.skipped[ev.session < drawn]]

    for a, b in zip(parts(taste, 0.0), parts(other, 0.0)):
        np.testing.assert_array_equal(a, b)
    assert not any(np.array_equal(a, b) for a, b in zip(parts(taste, 1.0), parts(other, 1.0)))


def test_every_generator_stream_of_synth_msd_is_drawn_in_one_place():
    """Each mechanism draws from its own stream ``[seed, N]``: two mechanisms on one N draw
    the same numbers, so their parts would be correlated (the aversion once shared the
    artists' sound stream). Scans the generator modules for the stream ids."""
    import re
    from pathlib import Path

    import recbench_builtin.datasets as pkg

    found: dict[str, list[str]] = {}
    for path in sorted(Path(pkg.__file__).parent.glob("synth_*.py")):
        if path.name == "synth_oracle.py":  # rebuilds the generator's own draws on purpose
            continue
        for n in re.findall(r"default_rng\(\[\s*(?:self\.)?seed\s*,\s*(\d+)", path.read_text()):
            found.setdefault(n, []).append(path.name)
    assert found, "no stream found: the pattern no longer matches the generator's code"
    shared = {n: where for n, where in found.items() if len(where) > 1}
    assert shared == {}
