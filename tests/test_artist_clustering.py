"""Artist clustering: ARI / NMI / verification AUC on hand-computed cases and against
scikit-learn, and the task on a world whose song vectors carry the artist."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recbench.components import CellContext, Recommender
from recbench.errors import DataError
from recbench.testing import worlds
from recbench_builtin.tasks.artist_clustering import (ArtistClusteringTask, clustering_scores,
                                                      verification_auc)


def test_clustering_scores_hand_computed():
    labels = np.array([0, 0, 1, 1])
    assert clustering_scores(labels, np.array([1, 1, 0, 0])) == pytest.approx((1.0, 1.0))
    # crossed: contingency all ones; ARI = (0 - 2/3) / (2 - 2/3) = -0.5, NMI = 0
    assert clustering_scores(labels, np.array([0, 1, 0, 1])) == pytest.approx((-0.5, 0.0))


def test_clustering_scores_match_a_direct_computation():
    """ARI from the pair-counting formula and NMI from entropies, written out here."""
    from math import comb

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 4, 60), rng.integers(0, 5, 60)
    cont = np.zeros((4, 5))
    np.add.at(cont, (a, b), 1)
    s_ij = sum(comb(int(v), 2) for v in cont.ravel())
    s_a = sum(comb(int(v), 2) for v in cont.sum(1))
    s_b = sum(comb(int(v), 2) for v in cont.sum(0))
    exp = s_a * s_b / comb(60, 2)
    ari = (s_ij - exp) / ((s_a + s_b) / 2 - exp)
    p = cont / 60
    pa, pb = p.sum(1), p.sum(0)
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / np.outer(pa, pb)[nz])).sum()
    h = lambda q: -(q[q > 0] * np.log(q[q > 0])).sum()  # noqa: E731
    nmi = mi / ((h(pa) + h(pb)) / 2)
    assert clustering_scores(a, b) == pytest.approx((ari, nmi))


def test_verification_auc_hand_computed():
    # unit vectors at angles 0, 10, 90, 100 degrees; artists [0, 0, 1, 1]
    ang = np.deg2rad([0, 10, 90, 100])
    x = np.stack([np.cos(ang), np.sin(ang)], 1)
    rng = np.random.default_rng(0)
    assert verification_auc(x, np.array([0, 0, 1, 1]), 100, rng) == 1.0
    # artists [0, 1, 0, 1]: same-artist pairs (0,2), (1,3) at 90 deg; the 4 others at 10,
    # 100, 80, 10 deg -> each same pair (cos 0) beats only the 100-deg pair: AUC 2/8
    assert verification_auc(x, np.array([0, 1, 0, 1]), 100, rng) == pytest.approx(0.25)


class _ArtistVectors(Recommender):
    """Song vectors = one-hot artist + small noise (a perfect artist embedding)."""

    name = "artist-vectors"
    has_item_vectors = True

    def __init__(self, artists, noise=0.05):
        super().__init__()
        self.v = np.eye(artists.max() + 1)[artists] + noise * np.random.default_rng(
            0).normal(size=(len(artists), artists.max() + 1))

    def fit(self, ctx):
        pass

    def score(self, users, songs):
        return np.zeros((len(users), len(songs)))

    def item_vectors(self, songs):
        return self.v[np.asarray(songs)]


def _world():
    w = worlds.audible_classes_world(users=30, songs=120)
    artists = np.arange(120) // 6  # 20 artists of 6 songs
    return replace(w, dataset=replace(w.dataset, song_categories={"artist": artists})), artists


def test_task_on_a_perfect_embedding_and_on_noise():
    w, artists = _world()

    def run(model):
        ctx = CellContext(dataset=w.dataset, split=w.split, model=model, metrics=[],
                          fit=None, seed=0, bootstrap=50)
        return ArtistClusteringTask().run(ctx)

    out = run(_ArtistVectors(artists))
    assert out.metrics["ari"] == pytest.approx(1.0)
    assert out.metrics["nmi"] == pytest.approx(1.0)
    assert out.metrics["verification_auc"] == pytest.approx(1.0)
    noise = run(_ArtistVectors(artists, noise=100.0))
    assert abs(noise.metrics["ari"]) < 0.2 and 0.3 < noise.metrics["verification_auc"] < 0.7
    for col, (lo, hi) in noise.metrics_ci.items():
        assert lo <= noise.metrics[col] <= hi


def test_task_needs_the_artist_category():
    w = worlds.audible_classes_world(users=30, songs=40)
    ctx = CellContext(dataset=w.dataset, split=w.split, model=_ArtistVectors(np.zeros(40, int)),
                      metrics=[], fit=None, seed=0)
    with pytest.raises(DataError, match="no song category 'artist'"):
        ArtistClusteringTask().run(ctx)


def test_genre_classification_hand_case_and_sklearn():
    from sklearn.metrics import accuracy_score, f1_score

    from recbench_builtin.tasks.artist_clustering import (classification_scores,
                                                          genre_predictions)

    # genre 0 around x = -1, genre 1 around x = +1: the boundary is x = 0
    x_train = np.array([[-1.2], [-1.0], [-0.8], [0.8], [1.0], [1.2]])
    y_train = np.array([0, 0, 0, 1, 1, 1])
    x_test = np.array([[-2.0], [-0.5], [0.5], [3.0]])
    y_test = np.array([0, 1, 1, 1])
    pred = genre_predictions(x_train, y_train, x_test)
    np.testing.assert_array_equal(pred, [0, 0, 1, 1])
    acc, f1 = classification_scores(y_test, pred)
    # accuracy 3/4; F1 genre 0: P 1/2, R 1 -> 2/3; genre 1: P 1, R 2/3 -> 4/5
    assert acc == pytest.approx(0.75) and f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert acc == pytest.approx(accuracy_score(y_test, pred))
    assert f1 == pytest.approx(f1_score(y_test, pred, average="macro"))


def test_task_genre_metrics_follow_the_vectors():
    w, artists = _world()
    genre = artists % 4  # 5 artists per genre: a perfect artist embedding knows the genre
    ds = replace(w.dataset, song_categories={"artist": artists, "genre": genre})

    def run(model, **opts):
        ctx = CellContext(dataset=ds, split=w.split, model=model, metrics=[], fit=None,
                          seed=0, bootstrap=50)
        return ArtistClusteringTask(**opts).run(ctx)

    out = run(_ArtistVectors(artists))
    assert out.metrics["genre_accuracy"] == pytest.approx(1.0)
    assert out.metrics["genre_macro_f1"] == pytest.approx(1.0)
    noise = run(_ArtistVectors(artists, noise=100.0))
    assert noise.metrics["genre_accuracy"] < 0.5  # chance 0.25
    lo, hi = noise.metrics_ci["genre_accuracy"]
    assert lo <= noise.metrics["genre_accuracy"] <= hi
    assert "genre_accuracy" not in run(_ArtistVectors(artists), genre_category="").metrics


def test_verification_auc_within_a_category_by_hand():
    from sklearn.metrics import roc_auc_score

    # artists [0, 0, 1, 1, 2, 2], genres [0, 0, 0, 0, 1, 1]; angles 0, 10, 25, 90, 45, 140:
    # within-genre pairs: same artist (0,1) cos 10, (2,3) cos 65, (4,5) cos 95; different
    # (0,2) cos 25, (0,3) cos 90, (1,2) cos 15, (1,3) cos 80 -> the positives beat 4, 2
    # and 0 of the 4 negatives: AUC 6 / 12
    ang = np.deg2rad([0, 10, 25, 90, 45, 140])
    x = np.stack([np.cos(ang), np.sin(ang)], 1)
    artists, genres = np.array([0, 0, 1, 1, 2, 2]), np.array([0, 0, 0, 0, 1, 1])
    rng = np.random.default_rng(0)
    assert verification_auc(x, artists, 100, rng, genres) == pytest.approx(0.5)
    i, j = np.array([0, 2, 4, 0, 0, 1, 1]), np.array([1, 3, 5, 2, 3, 2, 3])
    ref = roc_auc_score(artists[i] == artists[j], (x[i] * x[j]).sum(1))
    assert verification_auc(x, artists, 100, rng, genres) == pytest.approx(ref)
    # over every pair the cross-genre pairs count too
    assert verification_auc(x, artists, 100, rng) != pytest.approx(0.5)


def test_task_within_category_metric():
    w, artists = _world()
    ds = replace(w.dataset, song_categories={"artist": artists, "genre": artists % 4})
    ctx = CellContext(dataset=ds, split=w.split, model=_ArtistVectors(artists), metrics=[],
                      fit=None, seed=0, bootstrap=20)
    out = ArtistClusteringTask(within_category="genre").run(ctx)
    assert out.metrics["verification_auc_within"] == pytest.approx(1.0)
    lo, hi = out.metrics_ci["verification_auc_within"]
    assert lo <= 1.0 <= hi
    assert "verification_auc_within" not in ArtistClusteringTask().run(ctx).metrics
    with pytest.raises(DataError, match="within_category 'label'"):
        ArtistClusteringTask(within_category="label").run(ctx)


# ------------------------------------------------------------------ groups of artists


def test_artist_groups_partition_within_genres_and_mixed():
    from recbench_builtin.tasks.artist_groups import artist_groups

    artists = np.arange(10)
    genres = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2])  # 7, 2 and 1 artists
    rng = np.random.default_rng(0)
    same = artist_groups(artists, genres, 3, "same-genre", rng)
    # genre 0: 3 + 4 (the seventh joins the second group); genre 1: one group of 2;
    # genre 2: its single artist gives no group
    assert sorted(len(g) for g in same) == [2, 3, 4]
    for g in same:
        assert len(np.unique(genres[g])) == 1
    assert sorted(np.concatenate(same).tolist()) == list(range(9))
    mixed = artist_groups(artists, genres, 3, "mixed", rng)
    assert sorted(len(g) for g in mixed) == [3, 3, 4]
    assert sorted(np.concatenate(mixed).tolist()) == list(range(10))


def test_group_scores_match_sklearn_per_group():
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, roc_auc_score

    from recbench_builtin.tasks.artist_groups import group_intervals, group_scores

    # group A: artists 0, 1 far apart (perfect); group B: artists 2, 3 on the same spot
    # except one song of artist 3 (hand case below)
    ang = np.deg2rad([0, 5, 90, 95, 180, 184, 187, 270])
    x = np.stack([np.cos(ang), np.sin(ang)], 1)
    artists = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    per = group_scores(x, artists, [np.array([0, 1]), np.array([2, 3])], 10, 0)
    assert per[0] == pytest.approx([1.0, 1.0, 1.0])
    idx = np.arange(4, 8)
    clusters = KMeans(2, n_init=10, random_state=0).fit_predict(x[idx])
    np.testing.assert_array_equal(clusters == clusters[3], [False, False, False, True])
    i, j = np.triu_indices(4, k=1)
    lab = artists[idx]
    assert per[1] == pytest.approx([adjusted_rand_score(lab, clusters),
                                    normalized_mutual_info_score(lab, clusters),
                                    roc_auc_score(lab[i] == lab[j],
                                                  (x[idx][i] * x[idx][j]).sum(1))])
    # same-artist pairs at 4 and 83 degrees; different-artist pairs at 7, 3, 90 and 86:
    # the first beats 3 of the 4, the second 2 of them -> AUC 5/8
    assert per[1, 2] == pytest.approx(5 / 8)
    # bootstrap of the mean over groups: every resample mean lies between the two groups
    lo, hi = group_intervals(per, 200, 0.95, np.random.default_rng(0))[0]
    assert per[1, 0] <= lo <= per[:, 0].mean() <= hi <= 1.0
    assert group_intervals(per, 0, 0.95, np.random.default_rng(0))[0] == [None, None]


def test_task_groups_on_a_perfect_embedding_and_on_noise():
    w, artists = _world()
    genre = artists % 4
    ds = replace(w.dataset, song_categories={"artist": artists, "genre": genre})

    def run(model, **opts):
        ctx = CellContext(dataset=ds, split=w.split, model=model, metrics=[], fit=None,
                          seed=0, bootstrap=50)
        return ArtistClusteringTask(groups="same-genre", group_size=2, **opts).run(ctx)

    out = run(_ArtistVectors(artists))
    for m in ("ari", "nmi", "verification_auc", "ari_mixed", "verification_auc_mixed"):
        assert out.metrics[m] == pytest.approx(1.0)
    assert out.metric_info["ari"]["ci_over"] == "groups"
    assert out.diagnostics["n_groups"] >= 2
    noise = run(_ArtistVectors(artists, noise=100.0))
    assert noise.metrics["ari"] < 0.5 and noise.metrics["verification_auc"] < 0.8
    # per-genre values for paired claims: the same units (the groups' genres) for both
    # models of a seed; a perfect embedding is perfect in every genre
    genres_present = np.unique(genre)
    for o in (out, noise):
        assert o.per_user["users"].tolist() == genres_present.tolist()
    assert out.per_user["ari"] == pytest.approx(np.ones(len(genres_present)))
    assert noise.per_user["ari"].min() < 0.9
    assert out.metric_info["ari"]["paired_over"] == "genres"
    for col, (lo, hi) in noise.metrics_ci.items():
        assert lo <= noise.metrics[col] <= hi
    mixed = ArtistClusteringTask(groups="mixed").run(CellContext(
        dataset=ds, split=w.split, model=_ArtistVectors(artists), metrics=[], fit=None, seed=0))
    assert "ari_mixed" not in mixed.metrics and mixed.metrics["ari"] == pytest.approx(1.0)
    assert mixed.per_user is None  # mixed groups have no genre unit: claims not judged


def test_genre_units_by_hand():
    """Per-genre means of the groups' values, genres in ascending code order."""
    from recbench_builtin.tasks.artist_clustering import genre_units

    per = np.array([[0.2, 0.5, 0.6], [0.4, 0.7, 0.8], [1.0, 1.0, 1.0]])
    got = genre_units(per, np.array([3, 3, 1]))
    assert got["users"].tolist() == [1, 3]
    assert got["ari"] == pytest.approx([1.0, 0.3])
    assert got["nmi"] == pytest.approx([1.0, 0.6])
    assert got["verification_auc"] == pytest.approx([1.0, 0.7])
