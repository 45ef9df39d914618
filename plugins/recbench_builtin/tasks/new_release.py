"""The `new-release` task (issue 12 item 2, issue 13 item 3): for each new song, rank the
users.

A new release has no listener yet; the question a streaming service asks is whom to show it
to. On a cold-item split (the test songs have no training or validation interaction), each
test song ranks the candidate users, by default every user with a training interaction
(the users the service knows); the users who played the song in the held-out data are its
positives. Metrics are the usual metric plugins applied to the transposed block (songs as
rows, users as columns), so every value is per song: AUC is the chance that a listener of
the song is ranked above a non-listener, ndcg@10 / recall@50 ask whether the song's
audience is at the top. Means over songs with bootstrap confidence intervals over songs.
The "popularity" stick handed to the metrics is each candidate user's number of training
plays (popularity@K = how heavy the users a model targets are).

User groups (``user_groups``, issue 13 item 3: "rank users and user groups"): the candidate
users are also partitioned into segments, a user category of the dataset (e.g.
``age_band``; unknown codes left out) or ``"kmeans"`` (k-means with ``n_groups`` clusters
of the standardised ``user_features``: demographic segments); groups with fewer than
``min_group_size`` candidates are left out. For each new song a group's score is the mean
of its members' scores and its relevance the share of its members who play the song;
``group_ndcg@K`` is the NDCG of the groups ranked by score with gain = relevance (ties in
score share their gains: the expectation over tie orders, so a model that scores every
user alike gets chance), and ``group_spearman`` the Spearman correlation of the group
scores with the relevances (0 when either is constant). Per song, bootstrap CIs over
songs as the other metrics.

Leak guard: before scoring, the task checks that no interaction with a test song is in
the split's training or validation part (a new release has none) and stops with a
one-line error naming the split otherwise; the model must not read held-out interactions
(the recommender contract's poisoned-test check covers that side).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import CellContext, MetricInfo, MetricInput, Task, TaskOutput
from recbench.errors import ConfigError, DataError
from recbench.params import Param


def check_no_leak(split: Any) -> None:
    """DataError unless the split's train and valid parts hold no interaction with a test
    song (the new-release protocol's premise)."""
    songs = np.asarray(split.test_songs, dtype=np.int64)
    for part in ("train", "valid"):
        m = getattr(split, part)
        if m is None:
            continue
        n = int((m.tocsc()[:, songs] > 0).sum())
        if n:
            raise DataError(f"new-release: split {split.name!r} has {n} {part} interactions "
                            f"with test songs; the protocol needs a cold-item split")


class NewReleaseTask(Task):
    """Cold songs rank users: per-song metrics, bootstrap CIs over songs."""

    name = "new-release"
    description = "Each cold (new) song ranks the known users; per-song metrics"
    default_metrics = ("auc",)
    primary_metric = "auc"
    params = (
        Param("candidates", str, "train-users", choices=("train-users", "all-users"),
              help="users ranked for each song: those with training plays, or everyone"),
        Param("max_songs", int, None, min=1,
              help="evaluate at most this many test songs (a seeded sample)"),
        Param("chunk_songs", int, 256, min=1, help="songs scored per block"),
        Param("user_groups", str, None,
              help="also rank user groups: a user category (e.g. age_band) or 'kmeans' "
                   "(clusters of the standardised user_features)"),
        Param("n_groups", int, 8, min=2, help="k-means groups (user_groups = 'kmeans')"),
        Param("min_group_size", int, 5, min=1, help="smaller groups are left out"),
        Param("group_k", int, 3, min=1, help="cutoff of group_ndcg@K"),
    )

    def run(self, ctx: CellContext) -> TaskOutput:
        from recbench.metrics import stack_rows
        from recbench.uncertainty import bootstrap_ci

        split, model = ctx.split, ctx.model
        if split.protocol != "cold-item":
            raise ConfigError(f"task new-release needs a cold-item split, got protocol "
                              f"{split.protocol!r}", key="split.name")
        check_no_leak(split)
        songs = np.asarray(split.test_songs, dtype=np.int64)
        if self.options["max_songs"] and len(songs) > self.options["max_songs"]:
            rng = np.random.default_rng(split.seed)
            songs = np.sort(rng.choice(songs, self.options["max_songs"], replace=False))
        n_users = split.train.shape[0]
        users = (np.asarray(split.train_users, dtype=np.int64)
                 if self.options["candidates"] == "train-users" else np.arange(n_users))
        test = split.test.tocsc()
        activity = np.asarray((split.train > 0).sum(axis=1)).ravel().astype(float)[users]

        groups = self._groups(ctx, users)
        gcols = ([f"group_ndcg@{self.options['group_k']}", "group_spearman"]
                 if groups is not None else [])
        t_eval, score_s = time.perf_counter(), 0.0
        per_song: dict[str, list[np.ndarray]] = {col: [] for col, _, _ in ctx.metrics}
        per_song.update({col: [] for col in gcols})
        kept: list[np.ndarray] = []
        step = self.options["chunk_songs"]
        for start in ctx.progress(range(0, len(songs), step), desc="songs", unit="block"):
            s = songs[start:start + step]
            labels = (test[:, s][users] > 0).toarray().T          # (songs, users)
            has = labels.any(axis=1)                               # songs with a listener
            if not has.any():
                continue
            s, labels = s[has], labels[has]
            t0 = time.perf_counter()
            scores = np.asarray(model.score(users, s))
            score_s += time.perf_counter() - t0
            if scores.shape != (len(users), len(s)):
                raise ValueError(f"{model.name}.score returned shape {scores.shape}, expected "
                                 f"{(len(users), len(s))}")
            block = MetricInput(scores=scores.T, labels=labels, mask=None, k=None,
                                popularity=activity)
            for col, metric, k in ctx.metrics:
                block.k = k
                per_song[col].append(np.asarray(metric.per_user(block)))
            if groups is not None:
                g_scores = group_means(scores.T, groups)
                g_rel = group_means(labels.astype(np.float64), groups)
                per_song[gcols[0]].append(tie_ndcg(g_scores, g_rel, self.options["group_k"]))
                per_song[gcols[1]].append(spearman_rows(g_scores, g_rel))
            kept.append(s)
        evaluated = np.concatenate(kept) if kept else np.zeros(0, np.int64)
        metrics: dict[str, float] = {}
        cis: dict[str, list[float | None]] = {}
        info: dict[str, MetricInfo] = {}
        for i, (col, metric, _k) in enumerate(ctx.metrics):
            values = stack_rows(per_song[col]) if per_song[col] else np.array([])
            metrics[col] = metric.reduce(values) if len(values) else float("nan")
            low, high = (bootstrap_ci(values, reduce=metric.reduce, n_resamples=ctx.bootstrap,
                                      seed=ctx.seed * 1000 + i, level=ctx.confidence)
                         if ctx.bootstrap and len(values) else (None, None))
            cis[col] = [low, high]
            defined = values if values.ndim == 1 else values[:, 0]
            n_undefined = int(np.isnan(defined).sum()) if defined.dtype.kind == "f" else 0
            info[col] = {"label": f"{metric.label or col} per song",
                         "higher_is_better": metric.higher_is_better,
                         "n_users": int(len(values) - n_undefined),
                         "excluded_users": n_undefined,
                         "description": f"per new song, over the candidate users: "
                                        f"{metric.description}", "ci_over": "songs"}
        for j, col in enumerate(gcols):
            values = np.concatenate(per_song[col]) if per_song[col] else np.array([])
            metrics[col] = float(np.nanmean(values)) if len(values) else float("nan")
            cis[col] = (list(bootstrap_ci(values, n_resamples=ctx.bootstrap,
                                          seed=ctx.seed * 1000 + 500 + j,
                                          level=ctx.confidence))
                        if ctx.bootstrap and len(values) else [None, None])
            info[col] = {"label": ("Group NDCG@" + str(self.options["group_k"]) if j == 0
                                   else "Group Spearman") + " per song",
                         "higher_is_better": True, "n_users": int(len(values)),
                         "excluded_users": 0,
                         "description": f"per new song, the {int(groups.max()) + 1} "
                                        f"{self.options['user_groups']} groups ranked by "
                                        f"mean member score vs their share of listeners",
                         "ci_over": "songs"}
        pairs = len(users) * len(evaluated)
        return TaskOutput(
            metrics=metrics, metrics_ci=cis,
            throughput={"scoring_pairs_per_s": pairs / score_s if score_s > 0 else float("nan")},
            timing={"eval_s": round(time.perf_counter() - t_eval, 4)}, metric_info=info,
            # per-song values (songs in `evaluated` order) for paired comparisons (claims)
            per_user={"users": evaluated, **{col: np.concatenate(v)
                                             for col, v in per_song.items()
                                             if v and np.asarray(v[0]).ndim == 1}},
            diagnostics={"n_songs": int(len(evaluated)), "n_candidate_users": int(len(users)),
                         "songs_without_listener": int(len(songs) - len(evaluated)),
                         "candidates": self.options["candidates"],
                         "n_groups": None if groups is None else int(groups.max()) + 1})

    def _groups(self, ctx: CellContext, users: np.ndarray) -> np.ndarray | None:
        """Group code (0..G-1) per candidate user, -1 = in no group; None without groups."""
        spec, ds = self.options["user_groups"], ctx.dataset
        if not spec:
            return None
        if spec == "kmeans":
            from sklearn.cluster import KMeans

            uf = getattr(ds, "user_features", None)
            if uf is None:
                raise DataError(f"task new-release: user_groups = 'kmeans' needs "
                                f"user_features; dataset {ds.name!r} has none")
            x = np.asarray(uf, dtype=np.float64)[users]
            x = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
            codes = KMeans(self.options["n_groups"], n_init=10,
                           random_state=ctx.split.seed).fit_predict(x)
        else:
            cats = getattr(ds, "user_categories", None) or {}
            if spec not in cats:
                raise DataError(f"task new-release: user_groups = {spec!r}: dataset "
                                f"{ds.name!r} has no such user category (has "
                                f"{sorted(cats) or 'none'})")
            codes = np.asarray(cats[spec], dtype=np.int64)[users]
        return compact_groups(codes, self.options["min_group_size"])


def compact_groups(codes: np.ndarray, min_size: int) -> np.ndarray:
    """Codes renumbered 0..G-1 over the groups with >= `min_size` members (-1 = unknown
    codes and smaller groups); DataError when fewer than 2 groups remain."""
    codes = np.asarray(codes, dtype=np.int64)
    uniq, counts = np.unique(codes[codes >= 0], return_counts=True)
    keep = uniq[counts >= min_size]
    if len(keep) < 2:
        raise DataError(f"task new-release: fewer than 2 user groups with {min_size}+ "
                        f"candidate users")
    out = np.full(len(codes), -1, dtype=np.int64)
    ok = np.isin(codes, keep)
    out[ok] = np.searchsorted(keep, codes[ok])
    return out


def group_means(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """(rows, G): the mean of each row's values over each group's columns (-1 ignored)."""
    g = int(groups.max()) + 1
    ok = groups >= 0
    member = np.zeros((int(ok.sum()), g))
    member[np.arange(int(ok.sum())), groups[ok]] = 1.0
    return (np.asarray(x, dtype=np.float64)[:, ok] @ member) / member.sum(0)


def tie_ndcg(scores: np.ndarray, gains: np.ndarray, k: int) -> np.ndarray:
    """Per row NDCG@k of the columns ranked by score (gain = `gains`, discount
    1/log2(1 + rank)); tied scores share the mean gain of their tie (the expectation over
    tie orders). NaN for a row without gain."""
    out = np.full(len(scores), np.nan)
    disc = 1.0 / np.log2(np.arange(2, scores.shape[1] + 2))[:k]
    for r, (s, g) in enumerate(zip(np.asarray(scores, float), np.asarray(gains, float))):
        order = np.argsort(-s, kind="stable")
        _, start, size = np.unique(-s[order], return_index=True, return_counts=True)
        mean_gain = np.add.reduceat(g[order], start) / size
        ranked = np.repeat(mean_gain, size)[:k]
        ideal = np.sort(g)[::-1][:k] @ disc[:len(ranked)]
        if ideal > 0:
            out[r] = ranked @ disc[:len(ranked)] / ideal
    return out


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per row Spearman correlation (average ranks for ties); 0 where a row is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(1, keepdims=True)
    rb -= rb.mean(1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(1) * (rb ** 2).sum(1))
    return np.where(den > 0, (ra * rb).sum(1) / np.where(den > 0, den, 1.0), 0.0)


@hookimpl
def recbench_register_tasks(register):
    register(NewReleaseTask)
