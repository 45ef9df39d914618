"""The new-release task against `recbench.testing.TaskContract` (the scripted model ranks
every held-out listener first, so each song's AUC and nDCG are 1)."""

from __future__ import annotations

from recbench.testing import TaskContract
from recbench_builtin.tasks.artist_clustering import ArtistClusteringTask
from recbench_builtin.tasks.new_release import NewReleaseTask


class TestNewRelease(TaskContract):
    component = NewReleaseTask
    metrics = (("auc", "auc", None), ("ndcg@5", "ndcg", 5), ("recall@10", "recall", 10))
    known_metrics = {"auc": 1.0, "ndcg@5": 1.0}


class TestArtistClustering(TaskContract):
    """The scripted model's song vectors are the songs' classes: with the class as the
    artist, k-means recovers the artists exactly."""

    component = ArtistClusteringTask
    known_metrics = {"ari": 1.0, "nmi": 1.0, "verification_auc": 1.0}

    def make_world(self):
        from dataclasses import replace

        w = super().make_world()
        return replace(w, dataset=replace(w.dataset, song_categories={"artist": w.classes}))
