"""The artist metric-learning recommenders against `recbench.testing.RecommenderContract`
(and the `cold-artist` split against `SplitterContract`, on 25 artists of 2 songs).

The recommenders' world is the audible-classes world with song categories: the artist is
the song's audible class and the genre pairs classes (class // 2), so a triplet's
same-genre negative is the other class of the pair.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from recbench.testing import RecommenderContract, SplitterContract, worlds
from recbench_builtin.recommenders.artist_metric import ArtistClassifier, ArtistTriplet
from recbench_builtin.tasks.artist_split import ColdArtistSplit

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


class TestColdArtistSplit(SplitterContract):
    component = ColdArtistSplit

    def make_dataset(self):
        ds = worlds.random_counts(seed=2, users=60, songs=50)
        return replace(ds, song_categories={"artist": np.arange(50) // 2})
