"""`artist-clustering`: group the tracks of unseen artists by artist from a model's song
vectors (the evaluation of Royo-Letelier et al., ISMIR 2018, section 4: "unknown artist
clustering").

The tracks are the split's test songs whose ``song_categories[category]`` (default
``artist``) is known, restricted to artists with at least ``min_songs`` of them; no model
is given the artist labels. Their vectors (``item_vectors``, L2-normalised) are clustered
by k-means with k = the number of artists, and the clustering is scored against the
artists with the adjusted Rand index (``ari``) and normalised mutual information
(``nmi``, arithmetic mean normalisation), both as in scikit-learn. ``verification_auc``:
the ROC AUC of the cosine similarity of a pair of tracks for "same artist" against
"different artists", over every pair (at most ``max_pairs`` sampled);
``verification_auc_within`` (with ``within_category``, e.g. ``genre``) the same over the
pairs of tracks that share the category (telling apart the artists of one genre, what
same-genre negatives train for).

Genre classification of the same song vectors (issue 13 item 3: "audio embeddings also
evaluated on genre classification"), when the dataset has the song category
``genre_category`` (default ``genre``; synth-msd with ``artist_style_strength``; ``""``
switches it off): a multinomial logistic regression (scikit-learn, C = 1, on the
L2-normalised vectors standardised on the training songs) fitted on the split's training
songs' vectors and genres predicts the genre of every test song with a known genre;
``genre_accuracy`` and ``genre_macro_f1`` (scikit-learn's, over the classes present in the
test labels or predictions), intervals from a percentile bootstrap over test songs.

Groups (``groups = "same-genre"`` or ``"mixed"``; the paper's setting, section 4: small
sets of homonymous artists, in practice often of one genre, to be told apart): the
evaluated artists are partitioned at random (seeded) into groups of ``group_size`` (a
leftover artist joins the last group; sizes 2..group_size + 1), within each genre
(``genre_category``, an artist's majority genre among its evaluated songs) or regardless
of genre; each group's songs are clustered alone (k-means, k = the group's artists) and
``ari``, ``nmi`` and ``verification_auc`` (pairs inside the group) are means over groups,
their intervals a percentile bootstrap over groups (``ci_over = "groups"``). Same-genre
groups also report the mixed-genre control (``ari_mixed``, ``nmi_mixed``,
``verification_auc_mixed``, new groups of the same size). ``within_category`` is not used
with groups. Diagnostics count the groups and how many evaluated artists have training
songs (the cold-item split holds out songs, not artists).

Intervals (``groups = "all"``): percentile bootstrap over artists (the clustering is
computed once; each resample scores the songs of the resampled artists, an artist drawn
twice counting as two artists; widened to contain the point estimate if it falls
outside). The suite's ranking metrics are not used (`ignored_metrics`).
"""

from __future__ import annotations

import time

import numpy as np

from recbench import hookimpl
from recbench.components import CellContext, MetricInfo, Recommender, Task, TaskOutput
from recbench.errors import DataError
from recbench.params import Param

from .artist_groups import GROUP_METRICS, artist_groups, group_intervals, group_scores, majority
from .tagging import provides_item_vectors


def clustering_scores(labels: np.ndarray, clusters: np.ndarray) -> tuple[float, float]:
    """(adjusted Rand index, NMI) of a clustering against labels (scikit-learn's)."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return (float(adjusted_rand_score(labels, clusters)),
            float(normalized_mutual_info_score(labels, clusters)))


def genre_units(per_group: np.ndarray, genres: np.ndarray) -> dict[str, np.ndarray]:
    """Per-genre values for paired comparisons (claims): {"users": genre codes, metric:
    mean over the genre's groups}. The unit is the genre, not the group: every seed
    regroups the same held-out artists (a fixed split), so groups of different seeds share
    artists and are not independent units, while a genre's artists are the same on every
    seed (the claims average a unit over seeds). per_group: (groups, len(GROUP_METRICS));
    genres: (groups,) each group's genre (same-genre groups)."""
    codes, inv = np.unique(genres, return_inverse=True)
    n = np.bincount(inv, minlength=len(codes))
    return {"users": codes.astype(np.int64),
            **{m: np.bincount(inv, weights=per_group[:, j], minlength=len(codes)) / n
               for j, m in enumerate(GROUP_METRICS)}}


def genre_predictions(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                      seed: int = 0) -> np.ndarray:
    """Logistic regression (C = 1) on standardised `x_train` -> predicted labels of
    `x_test`."""
    from sklearn.linear_model import LogisticRegression

    mean, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
    clf.fit((x_train - mean) / sd, y_train)
    return np.asarray(clf.predict((x_test - mean) / sd))


def classification_scores(labels: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(accuracy, macro F1) of predictions against labels (scikit-learn's)."""
    from sklearn.metrics import f1_score

    return (float(np.mean(labels == pred)),
            float(f1_score(labels, pred, average="macro", zero_division=0)))


def verification_auc(x: np.ndarray, labels: np.ndarray, max_pairs: int,
                     rng: np.random.Generator, groups: np.ndarray | None = None) -> float:
    """ROC AUC of the cosine similarity of track pairs, same label = positive (only the
    pairs whose two tracks share a `groups` code, when given)."""
    from sklearn.metrics import roc_auc_score

    n = len(labels)
    i, j = np.triu_indices(n, k=1)
    if groups is not None:
        same_group = groups[i] == groups[j]
        i, j = i[same_group], j[same_group]
    if len(i) > max_pairs:
        pick = rng.choice(len(i), max_pairs, replace=False)
        i, j = i[pick], j[pick]
    same = labels[i] == labels[j]
    if same.all() or not same.any():
        return float("nan")
    return float(roc_auc_score(same, (x[i] * x[j]).sum(1)))


WITHIN = "verification_auc_within"


class ArtistClusteringTask(Task):
    """Cluster the test songs' vectors by artist: ARI, NMI, verification AUC."""

    name = "artist-clustering"
    description = "Cluster unseen artists' tracks from song vectors (ARI, NMI, verification AUC)"
    default_metrics = ()
    primary_metric = "ari"
    needs = ("song_categories",)
    params = (
        Param("category", str, "artist", help="song category holding the artist"),
        Param("min_songs", int, 2, min=2, help="artists with fewer test songs are left out"),
        Param("max_pairs", int, 200_000, min=1, help="verification pairs (sampled above)"),
        Param("n_init", int, 10, min=1, help="k-means restarts"),
        Param("within_category", str, "",
              help="also the verification AUC over the pairs of tracks sharing this song "
                   "category (e.g. genre: telling apart artists of one genre); '' = off"),
        Param("genre_category", str, "genre",
              help="song category for the genre classification (used when the dataset "
                   "has it; '' = off)"),
        Param("groups", str, "all", choices=("all", "same-genre", "mixed"),
              help="all: one clustering of every evaluated artist; same-genre / mixed: "
                   "small groups of artists (of one genre / of any), each clustered alone"),
        Param("group_size", int, 3, min=2, help="artists per group (a leftover artist "
                                                "joins the last group)"),
    )

    def applies_to(self, model: Recommender) -> bool:
        """True for models that provide song vectors."""
        return provides_item_vectors(model)

    def _songs(self, ctx: CellContext) -> tuple[np.ndarray, np.ndarray]:
        cats = getattr(ctx.dataset, "song_categories", None) or {}
        key = self.options["category"]
        if key not in cats:
            raise DataError(f"task artist-clustering: dataset {ctx.dataset.name!r} has no song "
                            f"category {key!r} (synth-msd: set artist_style_strength)")
        songs = np.asarray(ctx.split.test_songs, dtype=np.int64)
        codes = np.asarray(cats[key], dtype=np.int64)[songs]
        songs, codes = songs[codes >= 0], codes[codes >= 0]
        uniq, counts = np.unique(codes, return_counts=True)
        keep = np.isin(codes, uniq[counts >= self.options["min_songs"]])
        if len(np.unique(codes[keep])) < 2:
            raise DataError(f"task artist-clustering: fewer than 2 artists with "
                            f"{self.options['min_songs']} test songs")
        return songs[keep], codes[keep]

    def run(self, ctx: CellContext) -> TaskOutput:
        t0 = time.perf_counter()
        songs, artists = self._songs(ctx)
        x = np.asarray(ctx.model.item_vectors(songs), dtype=np.float64)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        rng = np.random.default_rng(ctx.seed)
        per_unit = None
        if self.options["groups"] == "all":
            metrics, cis, diag = self._all(ctx, songs, x, artists, rng)
        else:
            metrics, cis, diag, per_unit = self._grouped(ctx, songs, x, artists, rng)
        train_artists = self._artist_codes(ctx)[np.asarray(ctx.split.train_songs, np.int64)]
        diag["n_artists_in_training"] = int(np.isin(np.unique(artists), train_artists).sum())
        genre = self._genres(ctx, rng)
        metrics.update(genre[0])
        cis.update(genre[1])
        over = "artists" if self.options["groups"] == "all" else "groups"
        scope = {"all": "k-means, k = artists",
                 "same-genre": "mean over same-genre groups, k = artists of the group",
                 "mixed": "mean over mixed-genre groups, k = artists of the group"}
        info: dict[str, MetricInfo] = {
            "ari": {"label": f"Adjusted Rand index ({scope[self.options['groups']]})",
                    "higher_is_better": True, "description": "clustering vs artists",
                    "ci_over": over},
            "nmi": {"label": "Normalised mutual information", "higher_is_better": True,
                    "description": "clustering vs artists (arithmetic normalisation)",
                    "ci_over": over},
            "verification_auc": {"label": "Verification AUC (same artist, cosine)",
                                 "higher_is_better": True,
                                 "description": "pairs of tracks: same artist vs not",
                                 "ci_over": over},
            **{f"{m}_mixed": {"label": f"{m} over mixed-genre groups (control)",
                              "higher_is_better": True,
                              "description": "the same over groups of artists of any genre",
                              "ci_over": "groups"} for m in GROUP_METRICS},
            WITHIN: {"label": f"Verification AUC within {self.options['within_category']}",
                     "higher_is_better": True,
                     "description": f"pairs of tracks sharing a "
                                    f"{self.options['within_category']}: same artist vs not",
                     "ci_over": "artists"},
            "genre_accuracy": {"label": "Genre accuracy (logistic regression)",
                               "higher_is_better": True,
                               "description": "genre of test songs from train songs' vectors",
                               "ci_over": "songs"},
            "genre_macro_f1": {"label": "Genre macro F1 (logistic regression)",
                               "higher_is_better": True,
                               "description": "genre of test songs, macro-averaged F1",
                               "ci_over": "songs"}}
        if per_unit is not None:  # claims pair on genres (see genre_units)
            for m in GROUP_METRICS:
                info[m]["paired_over"] = "genres"
        info = {k: v for k, v in info.items() if k in metrics}
        return TaskOutput(metrics=metrics, metrics_ci=cis, throughput={},
                          timing={"eval_s": round(time.perf_counter() - t0, 4)},
                          metric_info=info, per_user=per_unit,
                          diagnostics=diag, ignored_metrics=[m[0] for m in ctx.metrics])

    def _all(self, ctx: CellContext, songs: np.ndarray, x: np.ndarray, artists: np.ndarray,
             rng: np.random.Generator) -> tuple[dict[str, float],
                                                dict[str, list[float | None]], dict]:
        """One k-means over every evaluated artist (intervals over artists)."""
        from sklearn.cluster import KMeans

        k = len(np.unique(artists))
        clusters = KMeans(n_clusters=k, n_init=self.options["n_init"],
                          random_state=ctx.seed).fit_predict(x)
        ari, nmi = clustering_scores(artists, clusters)
        auc = verification_auc(x, artists, self.options["max_pairs"], rng)
        metrics = {"ari": ari, "nmi": nmi, "verification_auc": auc}
        within = self._within(ctx, songs)
        if within is not None:
            metrics[WITHIN] = verification_auc(x, artists, self.options["max_pairs"], rng,
                                               within)
        cis = self._bootstrap(ctx, x, artists, clusters, rng, metrics, within)
        return metrics, cis, {"n_songs": int(len(songs)), "n_artists": int(k)}

    def _grouped(self, ctx: CellContext, songs: np.ndarray, x: np.ndarray,
                 artists: np.ndarray, rng: np.random.Generator
                 ) -> tuple[dict[str, float], dict[str, list[float | None]], dict,
                            dict | None]:
        """Means over small groups of artists, each clustered alone (intervals over
        groups); with same-genre groups also the mixed-genre control (``*_mixed``). Also
        for paired comparisons, with same-genre groups, per-genre values (see
        :func:`genre_units`; None otherwise)."""
        key = self.options["genre_category"] or "genre"
        cats = getattr(ctx.dataset, "song_categories", None) or {}
        if key not in cats:
            raise DataError(f"task artist-clustering: groups = "
                            f"{self.options['groups']!r} needs the song category {key!r} "
                            f"(genre_category); dataset {ctx.dataset.name!r} has none")
        uniq = np.unique(artists)
        genre_of = majority(np.asarray(cats[key], dtype=np.int64)[songs], artists, uniq)
        per_unit = None
        modes = [self.options["groups"]] + (["mixed"] if self.options["groups"] ==
                                            "same-genre" else [])
        metrics: dict[str, float] = {}
        cis: dict[str, list[float | None]] = {}
        diag: dict = {"n_songs": int(len(songs)), "n_artists": int(len(uniq))}
        for mode in modes:
            groups = artist_groups(uniq, genre_of, self.options["group_size"], mode, rng)
            if not groups:
                raise DataError(f"task artist-clustering: no {mode} group of 2+ artists "
                                f"among the {len(uniq)} evaluated artists")
            per = group_scores(x, artists, groups, self.options["n_init"], ctx.seed)
            suffix = "" if mode == self.options["groups"] else "_mixed"
            bounds = group_intervals(per, min(ctx.bootstrap, 1000), ctx.confidence, rng)
            for j, m in enumerate(GROUP_METRICS):
                metrics[m + suffix] = float(per[:, j].mean())
                cis[m + suffix] = bounds[j]
            if mode == "same-genre":
                per_unit = genre_units(per, genre_of[[np.searchsorted(uniq, g[0])
                                                      for g in groups]])
            diag[f"n_groups{suffix}"] = len(groups)
            diag[f"group_artists{suffix}"] = float(np.mean([len(g) for g in groups]))
        return metrics, cis, diag, per_unit

    def _artist_codes(self, ctx: CellContext) -> np.ndarray:
        cats = getattr(ctx.dataset, "song_categories", None) or {}
        return np.asarray(cats[self.options["category"]], dtype=np.int64)

    def _within(self, ctx: CellContext, songs: np.ndarray) -> np.ndarray | None:
        """The `within_category` code of each evaluated song (None when off)."""
        key = self.options["within_category"]
        if not key:
            return None
        cats = getattr(ctx.dataset, "song_categories", None) or {}
        if key not in cats:
            raise DataError(f"task artist-clustering: within_category {key!r}: dataset "
                            f"{ctx.dataset.name!r} has no such song category")
        return np.asarray(cats[key], dtype=np.int64)[songs]

    def _genres(self, ctx: CellContext, rng: np.random.Generator
                ) -> tuple[dict[str, float], dict[str, list[float | None]]]:
        """Genre accuracy / macro F1 and their bootstrap intervals over test songs ({}
        when the dataset has no genre category)."""
        key = self.options["genre_category"]
        cats = getattr(ctx.dataset, "song_categories", None) or {}
        if not key or key not in cats:
            return {}, {}
        codes = np.asarray(cats[key], dtype=np.int64)
        parts = []
        for songs in (ctx.split.train_songs, ctx.split.test_songs):
            songs = np.asarray(songs, dtype=np.int64)
            songs = songs[codes[songs] >= 0]
            x = np.asarray(ctx.model.item_vectors(songs), dtype=np.float64)
            parts.append((x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12),
                          codes[songs]))
        (xa, ya), (xb, yb) = parts
        if len(np.unique(ya)) < 2 or not len(yb):
            raise DataError(f"task artist-clustering: genre classification needs 2+ genres "
                            f"among the training songs and a test song with a genre")
        pred = genre_predictions(xa, ya, xb, ctx.seed)
        acc, f1 = classification_scores(yb, pred)
        point = {"genre_accuracy": acc, "genre_macro_f1": f1}
        n = min(ctx.bootstrap, 200)
        if not n:
            return point, {m: [None, None] for m in point}
        boot = np.array([classification_scores(yb[i], pred[i]) for i in
                         (rng.integers(0, len(yb), len(yb)) for _ in range(n))])
        alpha = (1 - ctx.confidence) / 2
        cis: dict[str, list[float | None]] = {
            m: [float(np.quantile(boot[:, j], alpha)), float(np.quantile(boot[:, j], 1 - alpha))]
            for j, m in enumerate(point)}
        return point, cis

    def _bootstrap(self, ctx: CellContext, x: np.ndarray, artists: np.ndarray,
                   clusters: np.ndarray, rng: np.random.Generator, point: dict[str, float],
                   within: np.ndarray | None = None) -> dict[str, list[float | None]]:
        """Percentile intervals from resampling artists (clusters fixed), widened to
        contain the point estimate when they miss it (duplicated artists bias ARI)."""
        n = min(ctx.bootstrap, 200)
        if not n:
            return {m: [None, None] for m in point}
        uniq = np.unique(artists)
        members = [np.flatnonzero(artists == a) for a in uniq]
        vals: dict[str, list[float]] = {m: [] for m in point}
        for _ in range(n):
            pick = rng.integers(0, len(uniq), len(uniq))
            idx = np.concatenate([members[p] for p in pick])
            lab = np.repeat(np.arange(len(pick)), [len(members[p]) for p in pick])
            a, b = clustering_scores(lab, clusters[idx])
            vals["ari"].append(a)
            vals["nmi"].append(b)
            vals["verification_auc"].append(
                verification_auc(x[idx], lab, min(self.options["max_pairs"], 20_000), rng))
            if within is not None:
                vals[WITHIN].append(verification_auc(
                    x[idx], lab, min(self.options["max_pairs"], 20_000), rng, within[idx]))
        alpha = (1 - ctx.confidence) / 2
        out: dict[str, list[float | None]] = {}
        for m, v in vals.items():
            arr = np.asarray(v, dtype=float)
            arr = arr[np.isfinite(arr)]
            if not arr.size or not np.isfinite(point[m]):
                out[m] = [None, None]
                continue
            out[m] = [min(float(np.quantile(arr, alpha)), point[m]),
                      max(float(np.quantile(arr, 1 - alpha)), point[m])]
        return out


@hookimpl
def recbench_register_tasks(register):
    register(ArtistClusteringTask)


@hookimpl
def recbench_register_splits(register):
    from .artist_split import ColdArtistSplit

    register(ColdArtistSplit)
