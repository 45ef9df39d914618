"""The `recommendation` task: rank each test user's candidate songs and measure it.

Candidates are the split's test songs (for a cold-item split: songs no model saw
interactions for); the user's own training and validation interactions are excluded from
the ranking. Users are scored in blocks of `chunk_users`, so memory stays bounded
whatever their number. Each metric's per-user values give its mean and a bootstrap
confidence interval over users.

The model arrives fitted. Diagnostics (`TaskOutput.diagnostics`, the row's `extra`):
- `popularity_buckets`: per-user AUC with the positives restricted to each tercile of
  song popularity (listeners over the whole dataset: a measuring stick only, never shown
  to a model) against all the user's negatives, so a model that only finds hits shows it;
  derived from the block's one ranking (:class:`recbench.metrics.Ranking`), as are the
  built-in metrics;
- `mixed` (when enabled): warm and cold songs ranked together; the share of each user's
  top K that are cold songs (new-release exposure) against their share of candidates.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import (CellContext, DiagnosticsChart, DiagnosticsTable, MetricInfo,
                                 MetricInput, Task, TaskOutput)
from recbench.params import Param


def _block(matrix, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
    return (matrix[users][:, songs] > 0).toarray()


class RecommendationTask(Task):
    """Rank held-out songs per user; per-user metrics averaged, with bootstrap CIs."""

    name = "recommendation"
    description = "Rank each test user's held-out candidate songs (per-user metrics, bootstrap CIs)"
    default_metrics = ("auc",)
    primary_metric = "auc"
    params = (
        Param("max_users", int, None, "Evaluate at most this many test users (a seeded sample)",
              min=1),
        Param("buckets", int, 3, "Song-popularity buckets for the stratified AUC (0 = off)",
              min=0, max=10),
        Param("mixed", bool, False, "Also rank warm and cold songs together (exposure)"),
        Param("mixed_k", int, 10, "Top-K cutoff of the mixed-candidates exposure", min=1),
    )

    def run(self, ctx: CellContext) -> TaskOutput:
        from recbench.metrics import ranking_of, stack_rows
        from recbench.uncertainty import bootstrap_ci

        split, model = ctx.split, ctx.model
        users = np.asarray(split.test_users)
        if self.options["max_users"] and len(users) > self.options["max_users"]:
            rng = np.random.default_rng(split.seed)
            users = np.sort(rng.choice(users, self.options["max_users"], replace=False))
        songs = np.asarray(split.test_songs)
        seen = (split.train + split.valid).tocsr()
        listeners = np.asarray((ctx.dataset.counts > 0).sum(axis=0)).ravel().astype(float)
        pop = listeners[songs]
        bucket_of = None
        if self.options["buckets"]:
            edges = np.quantile(pop, np.linspace(0, 1, self.options["buckets"] + 1)[1:-1])
            bucket_of = np.searchsorted(edges, pop, side="right")

        ks = [k for _, _, k in ctx.metrics if k is not None]
        k_max = max(ks) if ks else None

        t_eval = time.perf_counter()
        score_s = 0.0
        per_user: dict[str, list[np.ndarray]] = {col: [] for col, _, _ in ctx.metrics}
        bucket_vals: list[list[np.ndarray]] = [[] for _ in range(self.options["buckets"])]
        blocks = range(0, len(users), ctx.chunk_users)
        for start in ctx.progress(blocks, desc="scoring", unit="block"):
            u = users[start:start + ctx.chunk_users]
            t0 = time.perf_counter()
            scores = np.asarray(model.score(u, songs))
            score_s += time.perf_counter() - t0
            if scores.shape != (len(u), len(songs)):
                raise ValueError(f"{model.name}.score returned shape {scores.shape}, expected "
                                 f"{(len(u), len(songs))}")
            labels = _block(split.test, u, songs)
            excluded = _block(seen, u, songs)
            mask = ~excluded if excluded.any() else None
            block = MetricInput(scores=scores, labels=labels, mask=mask, k=None, popularity=pop)
            # the block is ranked once: every built-in metric and the bucket AUCs share it
            ranking = ranking_of(block, k_max=k_max, with_groups=bucket_of is not None)
            for col, metric, k in ctx.metrics:
                block.k = k
                per_user[col].append(np.asarray(metric.per_user(block)))
            if bucket_of is not None:
                by_bucket = ranking.auc_by_group(bucket_of, len(bucket_vals))
                for b in range(len(bucket_vals)):
                    bucket_vals[b].append(by_bucket[:, b])
        metrics: dict[str, float] = {}
        cis: dict[str, list[float | None]] = {}
        info: dict[str, MetricInfo] = {}
        for i, (col, metric, _k) in enumerate(ctx.metrics):
            values = stack_rows(per_user[col]) if per_user[col] else np.array([])
            metrics[col] = metric.reduce(values)
            low, high = bootstrap_ci(values, reduce=metric.reduce, n_resamples=ctx.bootstrap,
                                     seed=ctx.seed * 1000 + i, level=ctx.confidence
                                     ) if ctx.bootstrap else (None, None)
            cis[col] = [low, high]
            defined = values if values.ndim == 1 else values[:, 0]
            n_undefined = int(np.isnan(defined).sum()) if defined.dtype.kind == "f" else 0
            info[col] = {"label": metric.label or col, "higher_is_better": metric.higher_is_better,
                         "n_users": int(len(values) - n_undefined), "excluded_users": n_undefined,
                         "description": metric.description, "ci_over": "users"}
        diagnostics: dict[str, Any] = {"n_candidates": int(len(songs)),
                                       "n_users": int(len(users))}
        if bucket_of is not None:
            diagnostics["popularity_buckets"] = {
                "edges_listeners": [float(e) for e in edges],
                "auc": [float(np.nanmean(np.concatenate(v))) if v else None
                        for v in bucket_vals],
                "n_songs": [int((bucket_of == b).sum()) for b in range(len(bucket_vals))]}
        if self.options["mixed"]:
            diagnostics["mixed"] = self._mixed(ctx, users)
        eval_s = time.perf_counter() - t_eval
        pairs = len(users) * len(songs)
        return TaskOutput(
            metrics=metrics, metrics_ci=cis,
            throughput={"scoring_pairs_per_s": pairs / score_s if score_s > 0 else float("nan")},
            timing={"eval_s": round(eval_s, 4)}, metric_info=info,
            # per-user values (users in `users` order) for paired comparisons
            per_user={"users": users, **{col: np.concatenate(v) for col, v in per_user.items()
                                         if v and v[0].ndim == 1}},
            diagnostics=diagnostics)

    @staticmethod
    def _bucket_names(n: int, prefix: str) -> list[str]:
        return ([f"{prefix}least played", f"{prefix}middle", f"{prefix}most played"] if n == 3
                else [f"{prefix}bucket {b + 1}" for b in range(n)])

    @classmethod
    def diagnostics_table(cls, entries: list[dict[str, Any]]) -> DiagnosticsTable | None:
        """Cold-start diagnostics per model: AUC by song-popularity bucket (`buckets`) and,
        with `mixed`, the cold share of the top K against the cold share of candidates."""
        rows = [e for e in entries if (e.get("extra") or {}).get("popularity_buckets")
                or (e.get("extra") or {}).get("mixed")]
        if not rows:
            return None
        n = max(len((e["extra"].get("popularity_buckets") or {}).get("auc", [])) for e in rows)
        k = next((e["extra"]["mixed"]["k"] for e in rows if e["extra"].get("mixed")), None)
        header = ["model"] + cls._bucket_names(n, "AUC ")
        if k is not None:
            header += [f"cold share of top {k}", "cold share of candidates"]
        out: list[list[Any]] = []
        for e in rows:
            b = list((e["extra"].get("popularity_buckets") or {}).get("auc", []))
            line: list[Any] = [e["label"]] + b + ["–"] * (n - len(b))
            if k is not None:
                mixed = e["extra"].get("mixed") or {}
                line += [mixed.get("cold_share_of_top_k"), mixed.get("cold_share_of_candidates")]
            out.append(line)
        caption = ("**Cold-start diagnostics.** AUC with the held-out positives restricted "
                   "to each popularity bucket of songs (listeners over the whole dataset); "
                   "with warm and cold songs ranked together, the share of each user's "
                   "top K that are cold (new) songs, against their share of candidates.")
        return DiagnosticsTable(caption, header, out)

    @classmethod
    def diagnostics_chart(cls, entries: list[dict[str, Any]]) -> DiagnosticsChart | None:
        """AUC by held-out song popularity bucket, one bar per model and bucket."""
        bucketed = [e for e in entries if (e.get("extra") or {}).get("popularity_buckets")]
        if not bucketed:
            return None
        n = len(bucketed[0]["extra"]["popularity_buckets"]["auc"])
        series = {e["label"]: list(e["extra"]["popularity_buckets"]["auc"]) for e in bucketed}
        return DiagnosticsChart("AUC by held-out song popularity",
                                "AUC of held-out songs in the bucket",
                                cls._bucket_names(n, ""), series, baseline=0.5,
                                ylim=(0.0, 1.0))

    def _mixed(self, ctx: CellContext, users: np.ndarray) -> dict:
        """Warm (training) and cold (test) songs ranked together: cold share of each top K."""
        split, k = ctx.split, self.options["mixed_k"]
        songs = np.concatenate([split.train_songs, split.test_songs])
        cold = np.zeros(len(songs), dtype=bool)
        cold[len(split.train_songs):] = True
        shares = []
        for start in range(0, len(users), ctx.chunk_users):
            u = users[start:start + ctx.chunk_users]
            scores = np.array(ctx.model.score(u, songs), dtype=np.float64)
            scores[_block(split.train + split.valid, u, songs)] = -np.inf
            # Ties broken by song position (deterministic); -inf never reaches the top K.
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            shares.append(cold[top].mean(axis=1))
        share = np.concatenate(shares) if shares else np.array([])
        return {"k": k, "cold_share_of_top_k": float(share.mean()) if share.size else None,
                "cold_share_of_candidates": float(cold.mean())}


@hookimpl
def recbench_register_tasks(register):
    register(RecommendationTask)
