"""synth-msd's metric-learning knobs: niche listeners (niche_share, the 2-stage sampling
premise) and artist loyalty (artist_loyalty, HCML's item-item structure)."""

from __future__ import annotations

import numpy as np
from recbench_builtin.datasets.synth_msd import SynthMSD, add_loyalty, make_counts, make_songs

from recbench.components import LoadContext

CTX = LoadContext(cache_dir="unused")


def test_knobs_unset_or_zero_leave_the_data_bit_for_bit():
    base = SynthMSD(preset="tiny").load(CTX)
    for knob in ("niche_share", "artist_loyalty"):
        zero = SynthMSD(preset="tiny", **{knob: 0.0}).load(CTX)
        assert (zero.counts != base.counts).nnz == 0
        np.testing.assert_array_equal(zero.counts.data, base.counts.data)
        on = SynthMSD(preset="tiny", **{knob: 0.5}).load(CTX)
        assert (on.counts != base.counts).nnz > 0 and on.manifest[knob] == 0.5
    assert "niche_share" not in base.manifest and "artist_loyalty" not in base.manifest


def _popularity_corr(counts, world):
    listeners = np.asarray((counts > 0).sum(axis=0)).ravel()
    return float(np.corrcoef(listeners, world["log_pop"])[0, 1])


def test_niche_users_ignore_popularity():
    """Without taste (taste_scale 0) plays follow popularity only: at niche_share 1 no user
    follows it, so listeners are uncorrelated with log_pop; unset, strongly correlated."""
    world = make_songs(2, 400)
    mainstream = make_counts(2, 1500, world, 0.5, 20, taste_scale=0.0)
    niche = make_counts(2, 1500, world, 0.5, 20, taste_scale=0.0, niche_share=1.0)
    assert _popularity_corr(mainstream, world) > 0.8
    assert abs(_popularity_corr(niche, world)) < 0.1
    half = make_counts(2, 1500, world, 0.5, 20, taste_scale=0.0, niche_share=0.5)
    assert 0.3 < _popularity_corr(half, world) < _popularity_corr(mainstream, world)
    assert niche.nnz == mainstream.nnz  # the number of songs per user is unchanged


def test_loyalty_follow_ups_come_from_a_kept_songs_artist():
    world = make_songs(4, 300)
    artist = world["artist"]
    counts = make_counts(4, 200, world, 0.5, 12)
    out = add_loyalty(4, counts, artist, 0.4)
    assert out.shape == counts.shape and out.dtype == np.float32
    np.testing.assert_array_equal(np.diff(out.indptr), np.diff(counts.indptr))
    np.testing.assert_array_equal(np.sort(out.data), np.sort(counts.data))
    changed = 0
    for u in range(counts.shape[0]):
        before = set(counts.indices[counts.indptr[u]:counts.indptr[u + 1]].tolist())
        after = set(out.indices[out.indptr[u]:out.indptr[u + 1]].tolist())
        new, kept = after - before, after & before
        changed += len(new)
        assert {int(artist[s]) for s in new} <= {int(artist[s]) for s in kept}
    assert changed > 0.2 * counts.nnz  # ~40 % drawn, most artists have another song


def test_loyalty_raises_same_artist_co_listening():
    world = make_songs(5, 600)
    counts = make_counts(5, 600, world, 0.5, 20)

    def same_artist_share(m):
        hits = pairs = 0
        for u in range(m.shape[0]):
            a = world["artist"][m.indices[m.indptr[u]:m.indptr[u + 1]]]
            _, c = np.unique(a, return_counts=True)
            hits += (c * (c - 1)).sum() / 2
            pairs += len(a) * (len(a) - 1) / 2
        return hits / pairs

    base = same_artist_share(counts)
    assert same_artist_share(add_loyalty(5, counts, world["artist"], 0.5)) > 3 * base
