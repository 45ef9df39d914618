"""The `sequential` task (issue 14): predict the next played track of a held-out session.

Needs a split that records event parts (``next-session``) and a sequential model (one with
``score_next``, see :mod:`recbench_builtin.sequential`). For each evaluated user (a seeded
sample of at most `max_users` test users), the history is every event before the held-out
session (training and validation sessions, skips flagged); then, for each of the first
`max_steps` tracks the user PLAYED (did not skip) in the held-out session, the model ranks
the candidates (every song, or only songs with training plays) after the history plus the
session's earlier events (skips included: the model may read them as it would live; the
history's third array flags the events of the held-out session, as a live player knows
which events belong to the session it continues).

Metrics per step, averaged per user, then over users (bootstrap intervals over users):
the suite's columns (e.g. ``hr@10``, ``ndcg@10``, ``mrr``: one positive, the played track)
and ``skip@K`` (K = `skip_k`): the share of the session's skipped tracks (skipped and never
played in that session: explicit negatives, ``SessionSplit.test_skips``) ranked in the top
K; lower is better; users whose session has no such track are undefined for it (the
column is left out when no evaluated session has one).
"""

from __future__ import annotations

import time

import numpy as np

from recbench import hookimpl
from recbench.components import CellContext, MetricInfo, MetricInput, Task, TaskOutput
from recbench.errors import ConfigError
from recbench.params import Param


class SequentialTask(Task):
    """Rank the candidates as the next played track of each held-out session, step by step."""

    name = "sequential"
    description = ("Next played track of the held-out session: HR@K, NDCG@K, MRR and the "
                   "share of skipped tracks in the top K")
    default_metrics = ("hr@10", "ndcg@10", "mrr")
    primary_metric = "mrr"
    params = (
        Param("max_users", int, 1000, "evaluate at most this many test users (seeded sample)",
              min=1),
        Param("max_steps", int, 5, "played tracks of the held-out session evaluated per user",
              min=1),
        Param("skip_k", int, 10, "cutoff of the skipped-tracks-in-top-K rate", min=1),
        Param("candidates", str, "all", "songs ranked: all, or those with training plays",
              choices=("all", "train")),
    )

    def applies_to(self, model) -> bool:
        """Only sequential models (with `score_next`)."""
        return bool(getattr(model, "sequential", False))

    def _cases(self, ctx: CellContext, users: np.ndarray):
        """Per user: the (history, target) steps and the session's skipped songs."""
        ev, part = ctx.dataset.events, ctx.split.event_part
        skips = ctx.split.test_skips.tocsr()
        for u in users:
            lo, hi = np.searchsorted(ev.user, [u, u + 1])
            idx = np.arange(lo, hi)
            before, test = idx[part[idx] < 2], idx[part[idx] == 2]
            steps = []
            for j, e in enumerate(test):
                if ev.skipped[e]:
                    continue
                h = np.r_[before, test[:j]]
                now = np.r_[np.zeros(len(before), bool), np.ones(j, bool)]
                steps.append(((ev.song[h], ev.skipped[h], now), int(ev.song[e])))
                if len(steps) == self.options["max_steps"]:
                    break
            yield u, steps, skips.indices[skips.indptr[u]:skips.indptr[u + 1]]

    def run(self, ctx: CellContext) -> TaskOutput:
        from recbench.metrics import ranking_of, stack_rows
        from recbench.uncertainty import bootstrap_ci

        split, model, o = ctx.split, ctx.model, self.options
        if getattr(split, "event_part", None) is None or ctx.dataset.events is None:
            raise ConfigError("task sequential: needs a split of sessions (split name = "
                              "'next-session') on a dataset with an event log",
                              key="tasks.sequential")
        users = np.asarray(split.test_users)
        if len(users) > o["max_users"]:
            rng = np.random.default_rng(split.seed)
            users = np.sort(rng.choice(users, o["max_users"], replace=False))
        songs = (np.arange(ctx.dataset.n_songs) if o["candidates"] == "all"
                 else np.asarray(split.train_songs))
        col_of = np.full(ctx.dataset.n_songs, -1)
        col_of[songs] = np.arange(len(songs))
        skip_col = f"skip@{o['skip_k']}"
        cols = [c for c, _, _ in ctx.metrics] + [skip_col]
        per_user: dict[str, list[float]] = {c: [] for c in cols}
        done_users, n_steps, score_s, t_eval = [], 0, 0.0, time.perf_counter()
        for u, steps, skipped in ctx.progress(list(self._cases(ctx, users)), desc="sequential"):
            steps = [(h, t) for h, t in steps if col_of[t] >= 0]
            if not steps:
                continue
            t0 = time.perf_counter()
            scores = np.asarray(model.score_next([h for h, _ in steps], songs), np.float64)
            score_s += time.perf_counter() - t0
            labels = np.zeros(scores.shape, bool)
            labels[np.arange(len(steps)), col_of[[t for _, t in steps]]] = True
            block = MetricInput(scores=scores, labels=labels, mask=None, k=None)
            for col, metric, k in ctx.metrics:
                block.k = k
                per_user[col].append(float(np.nanmean(metric.per_user(block))))
            neg = np.zeros(scores.shape, bool)
            sk = col_of[skipped]
            neg[:, sk[sk >= 0]] = True
            neg[labels] = False
            if neg.any(axis=1).any():
                r = ranking_of(MetricInput(scores=scores, labels=neg, mask=None, k=None))
                per_user[skip_col].append(float(np.nanmean(r.at_k("recall_at_k",
                                                                  o["skip_k"]))))
            else:
                per_user[skip_col].append(float("nan"))
            done_users.append(u)
            n_steps += len(steps)
        metrics, cis, info = {}, {}, {}
        specs = [(c, m) for c, m, _ in ctx.metrics]
        if not np.isnan(np.asarray(per_user[skip_col], dtype=float)).all():
            specs.append((skip_col, None))  # absent when no evaluated session has a skip
        else:
            per_user.pop(skip_col)
        for i, (col, metric) in enumerate(specs):
            values = stack_rows([np.asarray(per_user[col])]) if per_user[col] else np.array([])
            reduce = metric.reduce if metric is not None else _nanmean
            metrics[col] = reduce(values)
            cis[col] = list(bootstrap_ci(values, reduce=reduce, n_resamples=ctx.bootstrap,
                                         seed=ctx.seed * 1000 + i, level=ctx.confidence)
                            ) if ctx.bootstrap else [None, None]
            n_bad = int(np.isnan(values).sum()) if values.size else 0
            info[col] = MetricInfo(
                label=(metric.label or col) if metric is not None else
                f"Skipped tracks in top {o['skip_k']} (share; lower is better)",
                higher_is_better=metric.higher_is_better if metric is not None else False,
                n_users=int(len(values) - n_bad), excluded_users=n_bad,
                description=metric.description if metric is not None else
                "share of the held-out session's skipped tracks ranked in the top K",
                ci_over="users")
        eval_s = time.perf_counter() - t_eval
        pairs = n_steps * len(songs)
        return TaskOutput(
            metrics=metrics, metrics_ci=cis,
            throughput={"scoring_pairs_per_s": pairs / score_s if score_s > 0 else
                        float("nan")},
            timing={"eval_s": round(eval_s, 4)}, metric_info=info,
            per_user={"users": np.asarray(done_users, np.int64),
                      **{c: np.asarray(v, np.float64) for c, v in per_user.items()}},
            diagnostics={"n_users": len(done_users), "n_steps": n_steps,
                         "n_candidates": int(len(songs))})


def _nanmean(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


@hookimpl
def recbench_register_tasks(register):
    register(SequentialTask)
