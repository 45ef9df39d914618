"""`tagging`: the DCUE paper's Task 2, music auto-tagging from each model's song vectors.

A 2-layer MLP (Linear -> ReLU -> Linear, one sigmoid output per tag) is trained on the
frozen song vectors that a fitted model returns from ``item_vectors`` (Lee et al. 2018,
section 4.2: "we then trained a 2-layer MLP on top of the feature to predict the tags").
Songs are split exactly as the recommendation task splits them: the MLP trains on
``split.train_songs``, early-stops on ``split.valid_songs`` and is scored on
``split.test_songs``; only songs with at least one tag take part (the paper keeps the songs
that have at least one of the 50 most used tags: choosing the tags is the dataset's job).

The metric is fixed: ROC AUC per tag, averaged over the tags that have both classes among
the test songs (macro average), reported as ``tag_auc_macro``. The suite's metric list is
not used (its metrics are per-user ranking metrics); names given there are returned as
`TaskOutput.ignored_metrics` (the row's ``extra["ignored_metrics"]``). The confidence
interval is ``recbench.uncertainty``'s
percentile bootstrap, resampling test songs: each resample recomputes every tag's AUC on
the resampled songs (an AUC is not a mean of per-song values), exactly, with tie-aware
weighted ranks vectorised over resamples (`MacroTagAUC.reduce_resamples`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import CellContext, MetricInfo, Recommender, Task, TaskOutput
from recbench.errors import DataError, RecbenchError
from recbench.params import Param
from recbench_builtin._training import EarlyStopping


def provides_item_vectors(model: Recommender) -> bool:
    """Whether `model` can give song vectors, decided before fitting.

    A model class may say so with a boolean class attribute ``has_item_vectors``; otherwise
    it counts as providing them when its class overrides ``Recommender.item_vectors``.
    """
    flag = getattr(type(model), "has_item_vectors", None)
    if isinstance(flag, bool):
        return flag
    return getattr(type(model), "item_vectors", None) is not Recommender.item_vectors


def weighted_auc(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray
                 ) -> np.ndarray:
    """ROC AUC of one score column under several weightings of its examples.

    scores (n,) float, positive (n,) bool, weights (B, n) non-negative (a bootstrap
    resample is a vector of counts; all ones gives the plain AUC). Returns (B,) AUCs:
    the Mann-Whitney statistic with ties counted one half, i.e. exactly sklearn's
    ``roc_auc_score`` on the resampled data; NaN where a weighting leaves one class empty.
    """
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    pos = positive[order]
    w = np.asarray(weights, dtype=np.float64)[:, order]
    neg_w = w * ~pos
    pos_w = w * pos
    cum = np.zeros((w.shape[0], w.shape[1] + 1))
    np.cumsum(neg_w, axis=1, out=cum[:, 1:])
    lo = np.searchsorted(s, s, side="left")   # first example tied with each
    hi = np.searchsorted(s, s, side="right")  # one past the last tied example
    below = cum[:, lo]
    tied = cum[:, hi] - below
    u = (pos_w * (below + 0.5 * tied)).sum(axis=1)
    n_pos = pos_w.sum(axis=1)
    n_neg = neg_w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = u / (n_pos * n_neg)
    auc[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc


def tag_aucs(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
             max_cells: int = 4_000_000) -> np.ndarray:
    """Per-tag ROC AUC: scores (n, T) float, labels (n, T) bool -> (B, T) (NaN where a tag
    lacks a class). `weights` (B, n) weights the songs (bootstrap counts); None = (1, n) ones.
    Resamples are processed in chunks of at most `max_cells` weights to bound memory."""
    n, t = scores.shape
    if weights is None:
        weights = np.ones((1, n))
    out = np.empty((weights.shape[0], t))
    step = max(1, max_cells // max(n, 1))
    for b0 in range(0, weights.shape[0], step):
        w = weights[b0:b0 + step]
        for j in range(t):
            out[b0:b0 + step, j] = weighted_auc(scores[:, j], labels[:, j], w)
    return out


def macro(aucs: np.ndarray) -> np.ndarray:
    """Mean over the last axis ignoring NaN (tags without both classes); NaN if none."""
    ok = ~np.isnan(aucs)
    n = ok.sum(axis=-1)
    total = np.where(ok, aucs, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


class MacroTagAUC:
    """The bootstrap statistic for `recbench.uncertainty.bootstrap_ci`: rows are test songs,
    values (n, 2, T) stack each song's scores ([:, 0]) and 0/1 labels ([:, 1]).

    Calling it gives the macro tag AUC of the rows; `reduce_resamples(values, counts)` gives
    it for every resample at once from (B, n) song multiplicities (exact weighted ranks).
    """

    def __call__(self, values: np.ndarray) -> float:
        return float(macro(tag_aucs(values[:, 0], values[:, 1] > 0.5))[0])

    def reduce_resamples(self, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
        return macro(tag_aucs(values[:, 0], values[:, 1] > 0.5, counts))


class TaggingTask(Task):
    """Auto-tagging from a model's song vectors with a 2-layer MLP (the paper's Task 2).

    Applies to models that provide song vectors (see `provides_item_vectors`); a fitted
    model whose ``item_vectors`` returns None fails the cell with a clear error. Needs a
    dataset with tags (``dataset.tags``, songs x tags).
    """

    name = "tagging"
    description = "Auto-tagging AUC (macro over tags) of a 2-layer MLP on the model's song vectors"
    default_metrics = ()
    primary_metric = "tag_auc_macro"
    needs = ("tags",)  # checked against the dataset's `provides` before work starts
    params = (
        Param("hidden", int, 256, min=1,
              help="hidden units of the 2-layer MLP (the paper gives no size; our choice)"),
        Param("lr", float, 1e-3, min=0.0, help="Adam learning rate"),
        Param("weight_decay", float, 1e-4, min=0.0, help="Adam weight decay (L2)"),
        Param("dropout", float, 0.0, min=0.0, max=0.95, help="dropout before the output layer"),
        Param("batch_size", int, 128, min=1, help="songs per MLP step"),
        Param("max_epochs", int, 200, min=1, help="most passes over the training songs"),
        Param("patience", int, 10, min=1,
              help="epochs without a better validation AUC before stopping"),
        Param("standardize", bool, True,
              help="z-score each vector dimension with the training songs' mean and std "
                   "(model vectors differ in scale)"),
    )

    def applies_to(self, model: Recommender) -> bool:
        """True for models that provide song vectors (decided before fitting)."""
        return provides_item_vectors(model)

    def run(self, ctx: CellContext) -> TaskOutput:
        """Embed the tagged songs with the fitted model, train the MLP on the training
        songs, early-stop on the valid songs, score the test songs."""
        ds, split, model = ctx.dataset, ctx.split, ctx.model
        if ds.tags is None:
            raise DataError(f"tagging: dataset {ds.name!r} has no tags "
                            "(dataset.tags is None); drop the tagging task for it")
        tags = ds.tags.tocsr()
        if tags.shape[0] != ds.n_songs:
            raise DataError(f"tagging: dataset {ds.name!r} has tags for {tags.shape[0]} songs "
                            f"but {ds.n_songs} songs")
        t_start = time.perf_counter()

        tagged = np.asarray(tags.getnnz(axis=1) > 0)
        parts = {k: np.asarray(v, dtype=np.int64)[tagged[np.asarray(v, dtype=np.int64)]]
                 for k, v in (("train", split.train_songs), ("valid", split.valid_songs),
                              ("test", split.test_songs))}
        songs = np.concatenate([parts["train"], parts["valid"], parts["test"]])
        if len(parts["train"]) == 0 or len(parts["test"]) == 0:
            raise DataError(f"tagging: dataset {ds.name!r} has no tagged "
                            f"{'training' if len(parts['train']) == 0 else 'test'} songs")

        t0 = time.perf_counter()
        vectors = model.item_vectors(songs)
        embed_s = time.perf_counter() - t0
        if vectors is None:
            raise RecbenchError(f"tagging: model {model.name!r} returned no song vectors "
                                "(item_vectors() is None); it cannot be evaluated on tagging")
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != len(songs):
            raise RecbenchError(f"tagging: model {model.name!r} returned song vectors of shape "
                                f"{x.shape}, expected ({len(songs)}, D)")
        y = tags[songs].toarray() > 0

        # Songs whose vector is not finite (e.g. audio missing) cannot be classified: drop
        # and count them rather than let a NaN poison the MLP.
        finite = np.isfinite(x).all(axis=1)
        bounds = np.cumsum([0, len(parts["train"]), len(parts["valid"]), len(parts["test"])])
        idx = {k: np.flatnonzero(finite[bounds[i]:bounds[i + 1]]) + bounds[i]
               for i, k in enumerate(("train", "valid", "test"))}
        if len(idx["train"]) == 0 or len(idx["test"]) == 0:
            raise RecbenchError(f"tagging: model {model.name!r} gave no finite vectors for the "
                                "training or test songs")
        if self.options["standardize"]:
            mu = x[idx["train"]].mean(axis=0)
            sd = x[idx["train"]].std(axis=0)
            x = (x - mu) / np.where(sd > 1e-8, sd, 1.0)
            x[~finite] = 0.0

        scores_test, fit_info = self._train_mlp(x, y, idx, ctx)
        mlp_rate = fit_info.pop("examples_per_s")
        labels_test = y[idx["test"]]
        per_tag = tag_aucs(scores_test, labels_test)[0]
        value = float(macro(per_tag))

        metrics_ci: dict[str, list[float]] = {}
        if ctx.bootstrap and ctx.bootstrap > 0:
            from recbench.uncertainty import bootstrap_ci

            values = np.stack([scores_test, labels_test.astype(np.float64)], axis=1)
            low, high = bootstrap_ci(values, reduce=MacroTagAUC(),
                                     n_resamples=int(ctx.bootstrap), seed=int(ctx.seed) * 1000,
                                     level=ctx.confidence)
            if np.isfinite(low) and np.isfinite(high):
                metrics_ci["tag_auc_macro"] = [low, high]
        eval_s = time.perf_counter() - t_start

        # Kept for tests and diagnostics: (test songs, MLP scores (n, T), labels (n, T)).
        self.last_predictions = (songs[idx["test"]], scores_test, labels_test)
        # the direction `recbench compare` needs (it never assumes one)
        info: dict[str, MetricInfo] = {"tag_auc_macro": {
            "label": "macro tag AUC", "higher_is_better": True,
            "n_tags": int((~np.isnan(per_tag)).sum()),
            "description": "ROC AUC per tag over the test songs, averaged over tags "
                           "with a positive and a negative", "ci_over": "songs"}}
        diagnostics: dict[str, Any] = {
            "n_tags": int(tags.shape[1]),
            "n_tags_evaluated": int((~np.isnan(per_tag)).sum()),
            "n_songs": {k: len(v) for k, v in idx.items()},
            "n_songs_dropped": {"untagged": int((~tagged).sum()),
                                "non_finite_vector": int((~finite).sum())},
            "vector_dim": int(x.shape[1]),
            **fit_info,
        }
        return TaskOutput(
            metrics={"tag_auc_macro": value},
            metrics_ci=metrics_ci,
            throughput={
                "songs_embedded_per_s": len(songs) / embed_s if embed_s > 0 else float("inf"),
                "mlp_train_examples_per_s": mlp_rate,
            },
            timing={"eval_s": eval_s},
            metric_info=info,
            diagnostics=diagnostics,
            ignored_metrics=[m[0] for m in ctx.metrics],
        )

    def _train_mlp(self, x: np.ndarray, y: np.ndarray, idx: dict[str, np.ndarray],
                   ctx: CellContext) -> tuple[np.ndarray, dict[str, Any]]:
        """Train the MLP on idx["train"] rows, early-stop on idx["valid"] by macro tag AUC.
        Returns the test rows' scores (n_test, T) and facts about the training."""
        import torch
        from torch import nn

        o = self.options
        device = torch.device(ctx.fit.device if ctx.fit is not None else "cpu")
        torch.manual_seed(int(ctx.seed))
        gen = torch.Generator().manual_seed(int(ctx.seed))
        n_tags = y.shape[1]
        net = nn.Sequential(nn.Linear(x.shape[1], o["hidden"]), nn.ReLU(),
                            nn.Dropout(o["dropout"]), nn.Linear(o["hidden"], n_tags)).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
        loss_fn = nn.BCEWithLogitsLoss()
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        yt = torch.from_numpy(y.astype(np.float32)).to(device)
        tr = torch.from_numpy(idx["train"]).to(device)
        valid_labels = y[idx["valid"]]
        can_validate = len(idx["valid"]) > 0 and bool(
            (valid_labels.any(axis=0) & ~valid_labels.all(axis=0)).any())

        def predict(rows: np.ndarray) -> np.ndarray:
            net.eval()
            with torch.no_grad():
                out = net(xt[torch.from_numpy(rows).to(device)]).float().cpu().numpy()
            net.train()
            return out

        stopper = EarlyStopping(o["patience"])
        train_s, examples, epoch = 0.0, 0, 0
        for epoch in ctx.progress(range(1, o["max_epochs"] + 1), total=o["max_epochs"],
                                  desc="tagging mlp"):
            t0 = time.perf_counter()
            net.train()
            perm = tr[torch.randperm(len(tr), generator=gen).to(device)]
            for b in range(0, len(perm), o["batch_size"]):
                rows = perm[b:b + o["batch_size"]]
                loss = loss_fn(net(xt[rows]), yt[rows])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            train_s += time.perf_counter() - t0
            examples += len(perm)
            if not can_validate:
                continue
            auc = float(macro(tag_aucs(predict(idx["valid"]), valid_labels)[0]))
            stopper.update(epoch, auc, net.state_dict)
            if stopper.should_stop:
                break
        stopper.restore(net.load_state_dict)
        info = {
            "mlp_epochs": int(epoch),
            "mlp_best_epoch": int(stopper.best_epoch if can_validate else epoch),
            "mlp_valid_auc": float(stopper.best) if can_validate else None,
            "mlp_early_stopping": bool(can_validate),
            "examples_per_s": examples / train_s if train_s > 0 else float("inf"),
        }
        return predict(idx["test"]), info


@hookimpl
def recbench_register_tasks(register):
    register(TaggingTask)
