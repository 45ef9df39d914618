"""The artist metric-learning recommenders against `recbench.testing.RecommenderContract`.

Their world is the audible-classes world with song categories: the artist is the song's
audible class and the genre pairs classes (class // 2), so a triplet's same-genre
negative is the other class of the pair.
"""

from __future__ import annotations

from dataclasses import replace

from recbench.testing import RecommenderContract, worlds
from recbench_builtin.recommenders.artist_metric import ArtistClassifier, ArtistTriplet

SMALL = {"backbone_params": {"channels": [8, 8, 8], "width": 0.5}, "dim": 8,
         "batch_size": 16, "steps_per_epoch": 10, "max_epochs": 2, "patience": 2}


def artist_world() -> worlds.World:
    """audible_classes_world (60 users x 120 songs) with artist = class, genre = class // 2."""
    w = worlds.audible_classes_world(users=60, songs=120)
    cats = {"artist": w.classes.copy(), "genre": w.classes // 2}
    return replace(w, dataset=replace(w.dataset, song_categories=cats))


class TestArtistTriplet(RecommenderContract):
    component = ArtistTriplet
    options = SMALL
    min_auc = 0.6

    def make_world(self) -> worlds.World:
        return artist_world()


class TestArtistTripletRandom(TestArtistTriplet):
    options = {**SMALL, "negatives": "random"}


class TestArtistClassifier(TestArtistTriplet):
    component = ArtistClassifier
    options = SMALL
