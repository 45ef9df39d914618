"""synth-msd's artist_sound_scale (the within-genre deviation scaled by c, in closed form
against the unscaled world) and artist_timbre_strength; unset, both leave the data as it was."""

from __future__ import annotations

import numpy as np
import pytest
from recbench_builtin.datasets import synth_side
from recbench_builtin.datasets.synth_msd import SynthMSD, make_songs

from recbench.components import LoadContext


@pytest.mark.parametrize("s", [0.0, 0.5, 1.0])
def test_scale_multiplies_the_deviation_from_the_genre_centre(s):
    world = make_songs(3, 400)
    centre = world["centres"][world["genre"]]
    plain = synth_side.artist_sound(3, world, s)
    scaled = synth_side.artist_sound(3, world, s, 0.35)
    np.testing.assert_allclose(scaled["audible"] - centre,
                               0.35 * (plain["audible"] - centre), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(scaled["genre"], world["genre"])
    # the deviation's sd: 0.6 c (the mix keeps the unit variance of the song's own 0.6)
    assert np.std(scaled["audible"] - centre) == pytest.approx(0.6 * 0.35, rel=0.08)


def test_scale_with_full_artist_sound_leaves_only_the_artists_points():
    world, _, _ = synth_side.artist_style(0, make_songs(0, 400), 1.0)  # an artist, a genre
    out = synth_side.artist_sound(0, world, 1.0, 0.25)
    for a in np.unique(world["artist"])[:20]:
        rows = out["audible"][world["artist"] == a]
        np.testing.assert_allclose(rows - rows[0], 0.0, atol=1e-12)


def test_unset_scale_changes_nothing_and_set_scale_changes_the_audio():
    world = make_songs(0, 100)
    assert synth_side.artist_sound(0, world, 0.0) is world
    base = SynthMSD(preset="tiny", artist_style_strength=1.0, artist_sound_strength=1.0)
    assert "artist_sound_scale" not in base.config()
    scaled = SynthMSD(preset="tiny", artist_style_strength=1.0, artist_sound_strength=1.0,
                      artist_sound_scale=0.5)
    assert scaled.config()["artist_sound_scale"] == 0.5
    ctx = LoadContext(cache_dir="unused")
    b, c = base.load(ctx), scaled.load(ctx)
    assert b.audio.identity(0) != c.audio.identity(0)
    genre = b.song_categories["genre"]

    def within(x):  # pooled within-genre sd
        return np.sqrt(np.mean((x - np.bincount(genre, x)[genre] / np.bincount(genre)[genre])
                               ** 2))

    ratio = within(c.audio.acoustic["tempo_bpm"]) / within(b.audio.acoustic["tempo_bpm"])
    assert 0.3 < ratio < 0.7  # ~0.5 (tempo is a smooth map of the factor)


def test_timbre_strength_replaces_the_style_strength_in_the_timbre_only():
    world = make_songs(1, 300)
    styled, timbre, cats = synth_side.artist_style(1, world, 1.0)
    _, timbre_unset, _ = synth_side.artist_style(1, world, 1.0, None)
    off, timbre_off, cats_off = synth_side.artist_style(1, world, 1.0, 0.0)
    _, timbre_s0, _ = synth_side.artist_style(1, world, 0.0)
    for k in ("timbre", "detune"):
        np.testing.assert_array_equal(timbre_unset[k], timbre[k])
        np.testing.assert_array_equal(timbre_off[k], timbre_s0[k])  # per song, as at s = 0
        artist = cats["artist"]
        # at 1 an artist's songs share one timbre; at 0 they do not
        a = int(np.bincount(artist).argmax())
        assert np.ptp(timbre[k][artist == a]) < 1e-12 < np.ptp(timbre_off[k][artist == a])
    np.testing.assert_array_equal(cats_off["genre"], cats["genre"])  # genres still follow
    np.testing.assert_array_equal(off["audible"], styled["audible"])
