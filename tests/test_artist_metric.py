"""artist-triplet / artist-classifier: the triplet loss on a hand-computed case, the
same-genre and random negative samplers, and a fit that separates artists."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recbench.errors import DataError
from recbench.testing import worlds
from recbench_builtin.recommenders.artist_metric import (ArtistClassifier, ArtistTriplet,
                                                         ArtistTriplets, triplet_loss)
from recbench_builtin.tasks.artist_clustering import verification_auc


def test_triplet_loss_hand_computed():
    torch = pytest.importorskip("torch")
    # unit vectors: a = (1, 0); p at 60 deg: ||a - p||^2 = 2 - 2 cos 60 = 1;
    # n at 90 deg: ||a - n||^2 = 2. Row 1: max(0, 1 - 2 + 0.5) = 0.
    # Row 2: p at 90 deg (2), n at 0 deg, scaled by 3 (normalised: 0): max(0, 2 - 0 + 0.5) = 2.5
    c, s = np.cos(np.pi / 3), np.sin(np.pi / 3)
    a = torch.tensor([[1.0, 0.0], [2.0, 0.0]])
    p = torch.tensor([[c, s], [0.0, 1.0]])
    n = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    assert float(triplet_loss(a, p, n, 0.5)) == pytest.approx((0.0 + 2.5) / 2, abs=1e-6)
    assert float(triplet_loss(a, p, n, 0.0)) == pytest.approx((0.0 + 2.0) / 2, abs=1e-6)


def _labels():
    # 12 songs; artists 0..5 (2 songs each); genres: artists 0,1,2 -> genre 0, 3,4 -> 1,
    # 5 -> genre 2 (alone in its genre: falls back to any other artist)
    artist = np.repeat(np.arange(6), 2)
    genre = np.array([0, 0, 0, 1, 1, 2])[artist]
    return np.arange(12), artist, genre


def test_same_genre_negatives_share_the_anchors_genre_never_its_artist():
    songs, artist, genre = _labels()
    t = ArtistTriplets(songs, artist, genre, "same-genre")
    rng = np.random.default_rng(0)
    a, p, n = t.sample(2000, rng)
    assert (artist[p] == artist[a]).all() and (p != a).all()
    assert (artist[n] != artist[a]).all()
    alone = genre[a] == 2
    assert (genre[n][~alone] == genre[a][~alone]).all()
    assert alone.any() and set(n[alone]) == set(range(10))  # fallback: every other song
    # genre 0 anchors of artist 0 draw from artists 1 and 2 only, all four songs
    assert set(n[artist[a] == 0]) == {2, 3, 4, 5}


def test_random_negatives_cover_other_artists_of_every_genre():
    songs, artist, genre = _labels()
    t = ArtistTriplets(songs, artist, None, "random")
    a, _, n = t.sample(3000, np.random.default_rng(1))
    assert (artist[n] != artist[a]).all()
    assert set(n[artist[a] == 0]) == set(range(2, 12))


def test_sampler_refuses_unusable_labels():
    with pytest.raises(ValueError):
        ArtistTriplets(np.arange(3), np.arange(3), None, "random")  # no artist with 2 songs
    with pytest.raises(ValueError):
        ArtistTriplets(np.arange(4), np.zeros(4, int), None, "sideways")


def _world(n_artists=8):
    w = worlds.audible_classes_world(users=40, songs=160, classes=n_artists, channels=16)
    cats = {"artist": w.classes.copy(), "genre": w.classes // 2}
    return replace(w, dataset=replace(w.dataset, song_categories=cats))


SMALL = {"backbone_params": {"channels": [8, 8, 8], "width": 0.5}, "dim": 8,
         "batch_size": 32, "steps_per_epoch": 30, "max_epochs": 3, "patience": 3}


@pytest.mark.parametrize("cls,extra", [(ArtistTriplet, {"negatives": "same-genre",
                                                        "same_genre_share": 0.5}),
                                       (ArtistTriplet, {"negatives": "random"}),
                                       (ArtistClassifier, {})])
def test_fit_separates_unseen_songs_by_artist(cls, extra):
    """Training beats the same seeded network left untrained (lr 0). Pure same-genre
    negatives never push genres apart (here genres are audible, so they fall below the
    untrained net: see results/metric_learning/parts/artist_metric_learning); half of them are random here."""
    w = _world()
    model = cls(**SMALL, **extra)
    model.fit(w.context(0))
    test = np.asarray(w.split.test_songs)
    x = model.item_vectors(test).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    auc = verification_auc(x, w.classes[test], 10_000, np.random.default_rng(0))
    untrained = cls(**SMALL, **extra, lr=0.0)  # the same seeded network, never updated
    untrained.fit(w.context(0))
    y = untrained.item_vectors(test).astype(np.float64)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    base = verification_auc(y, w.classes[test], 10_000, np.random.default_rng(0))
    assert auc > 0.8 and auc > base + 0.02, (auc, base)
    rep = model.fit_report()
    assert rep["train_artists"] == 8 and len(rep["history"]) >= 1
    assert set(model.throughput()) == {"train_examples_per_s", "songs_embedded_per_s"}


def test_missing_artist_category_is_a_one_line_data_error():
    w = worlds.audible_classes_world(users=20, songs=40)
    with pytest.raises(DataError, match="no song category 'artist'"):
        ArtistClassifier(**SMALL).fit(w.context(0))


def test_same_genre_share_mixes_in_random_negatives():
    songs, artist, genre = _labels()
    half = ArtistTriplets(songs, artist, genre, "same-genre", same_genre_share=0.5)
    a, _, n = half.sample(4000, np.random.default_rng(2))
    assert (artist[n] != artist[a]).all()
    # artist-0 anchors: genre-0 pool {2..5} half the time, all 10 others the other half,
    # so out-of-genre songs 6..11 take 0.5 * 6/10 = 0.3 of their negatives
    out = ~np.isin(n[artist[a] == 0], [2, 3, 4, 5])
    assert out.mean() == pytest.approx(0.3, abs=0.05)


def test_valid_pairs_same_genre_stops_on_the_within_genre_auc():
    """The recorded validation AUC of the restored (best) epoch is the verification AUC of
    the final validation vectors over same-genre pairs only, not over all pairs."""
    w = _world()
    model = ArtistTriplet(**{**SMALL, "max_epochs": 2}, negatives="random",
                          valid_pairs="same-genre")
    model.fit(w.context(0))
    rep = model.fit_report()
    best = rep["history"][rep["best_epoch"] - 1]["valid_verification_auc"]
    valid = np.asarray(w.split.valid_songs)
    x = model.item_vectors(valid).astype(np.float64)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    genre = w.dataset.song_categories["genre"][valid]
    rng = np.random.default_rng(0)
    within = verification_auc(x, w.classes[valid], 20_000, rng, genre)
    assert best == pytest.approx(within, abs=1e-6)
    assert within != pytest.approx(verification_auc(x, w.classes[valid], 20_000, rng))
