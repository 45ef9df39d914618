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

        t_eval, score_s = time.perf_counter(), 0.0
        per_song: dict[str, list[np.ndarray]] = {col: [] for col, _, _ in ctx.metrics}
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
                                        f"{metric.description}"}
        pairs = len(users) * len(evaluated)
        return TaskOutput(
            metrics=metrics, metrics_ci=cis,
            throughput={"scoring_pairs_per_s": pairs / score_s if score_s > 0 else float("nan")},
            timing={"eval_s": round(time.perf_counter() - t_eval, 4)}, metric_info=info,
            diagnostics={"n_songs": int(len(evaluated)), "n_candidate_users": int(len(users)),
                         "songs_without_listener": int(len(songs) - len(evaluated)),
                         "candidates": self.options["candidates"]})


@hookimpl
def recbench_register_tasks(register):
    register(NewReleaseTask)
