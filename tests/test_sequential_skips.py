"""synth-msd's aversion skips (issue 14, ``skip_cause = "aversion"``): skips follow each
user's aversion direction and not their taste; at skip_strength 0 they are random and the
log is the same as with taste-driven skips; leaving the cause unset changes nothing."""

from __future__ import annotations

import numpy as np
from recbench_builtin.datasets import synth_side
from recbench_builtin.datasets.synth_msd import SynthMSD, make_songs, make_taste
from sklearn.metrics import roc_auc_score

from recbench.components import LoadContext

CTX = LoadContext(cache_dir="unused")


def _world(**knobs):
    """(dataset, per-event aversion V_u . S_i/|S_i|, per-event taste affinity T_u . S_i)."""
    loader = SynthMSD(preset="tiny", users=600, seed=0, **knobs)
    d, cfg = loader.load(CTX), loader.config()
    world = make_songs(0, cfg["songs"])
    t, style = synth_side.taste_vectors(make_taste(0, cfg["users"], world,
                                                   cfg["audible_share"]))
    ev = d.events
    # the aversion recomputed here from its definition (own stream [seed, 29])
    v = np.random.default_rng([0, 29]).normal(size=(cfg["users"], style.shape[1]))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    unit = style / np.linalg.norm(style, axis=1, keepdims=True)
    av = np.einsum("ij,ij->i", v[ev.user], unit[ev.song])
    return d, av, np.einsum("ij,ij->i", t[ev.user], style[ev.song])


def test_aversion_skips_follow_the_aversion_and_not_taste():
    """Measured (tiny, 600 users, seed 0): AUC of the aversion score for skipped over played
    events 0.976 with the aversion cause at 3, of taste affinity 0.513 (skip rate 0.440);
    with the taste cause the other way round (aversion 0.491, affinity 0.024)."""
    d, av, aff = _world(skip_strength=3.0, skip_cause="aversion")
    sk = d.events.skipped
    assert roc_auc_score(sk, av) > 0.9
    assert abs(roc_auc_score(sk, aff) - 0.5) < 0.05
    assert 0.35 < sk.mean() < 0.5  # base rate 0.25 at the mean aversion, more above it
    d, av, aff = _world(skip_strength=3.0)
    sk = d.events.skipped
    assert abs(roc_auc_score(sk, av) - 0.5) < 0.05
    assert roc_auc_score(sk, aff) < 0.2


def test_plays_avoid_the_aversion_the_exposure_does_not():
    """The exposure (every event) is independent of the aversion (mean score 0); the plays
    lie on the other side of it and the skips toward it. Measured in aversion sds: all
    -0.019, played -0.705, skipped 0.853 (at strength 0: -0.024 and -0.005)."""
    d, av, _ = _world(skip_strength=3.0, skip_cause="aversion")
    sk = d.events.skipped
    sd = av.std()
    assert abs(av.mean()) < 0.05 * sd
    assert av[~sk].mean() < -0.3 * sd and av[sk].mean() > 0.5 * sd


def test_at_zero_the_causes_give_the_same_random_log():
    """Exposure draws do not depend on the cause, and at 0 skips depend on nothing."""
    a = SynthMSD(preset="tiny", skip_strength=0.0, skip_cause="aversion").load(CTX)
    b = SynthMSD(preset="tiny", skip_strength=0.0).load(CTX)
    for f in ("user", "song", "timestamp", "session", "skipped"):
        assert np.array_equal(getattr(a.events, f), getattr(b.events, f))
    d, av, aff = _world(skip_strength=0.0, skip_cause="aversion")
    assert abs(roc_auc_score(d.events.skipped, av) - 0.5) < 0.03
    assert abs(d.events.skipped.mean() - 0.25) < 0.02


def test_the_default_cause_leaves_the_config_unchanged():
    plain = SynthMSD(preset="tiny", skip_strength=1.0)
    assert "skip_cause" not in plain.config()
    assert plain.config() == SynthMSD(preset="tiny", skip_strength=1.0,
                                      skip_cause="taste").config()
    assert SynthMSD(preset="tiny", skip_strength=1.0,
                    skip_cause="aversion").config()["skip_cause"] == "aversion"
