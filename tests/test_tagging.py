"""The `tagging` task: per-tag AUC against sklearn, bootstrap, MLP on linearly tagged vectors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from recbench_builtin.recommenders.baselines import PopularityRecommender
from recbench_builtin.splits import ColdItemSplit
from recbench_builtin.tasks.tagging import (
    MacroTagAUC,
    TaggingTask,
    macro,
    tag_aucs,
    weighted_auc,
)
from sklearn.metrics import roc_auc_score

from recbench.components import CellContext, FitContext, Recommender
from recbench.data import Dataset
from recbench.errors import DataError, RecbenchError


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny MLP on a shared 2-core machine: one intra-op thread avoids OpenMP spin-waits
    that made it ~15x slower under load."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class VectorModel(Recommender):
    """Returns fixed song vectors (the test's stand-in for a fitted model)."""

    name = "vectors"

    def __init__(self, vectors: np.ndarray | None, **kw):
        super().__init__(**kw)
        self.vectors = vectors
        self.fitted = 0

    def fit(self, ctx: FitContext) -> None:
        self.fitted += 1

    def score(self, users, songs):
        return np.zeros((len(users), len(songs)), dtype=np.float32)

    def item_vectors(self, songs):
        return None if self.vectors is None else self.vectors[songs]


def _linear_tags(n_songs=600, dim=8, n_tags=6, seed=0):
    """Song vectors and tags that a linear function of the vectors decides (top 25 %)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_songs, dim)).astype(np.float32)
    logits = x @ rng.normal(size=(dim, n_tags))
    tags = logits > np.quantile(logits, 0.75, axis=0)
    return x, sp.csr_matrix(tags.astype(np.float32))


def _cell(x, tags, model=None, bootstrap=200, seed=0):
    n_songs = tags.shape[0]
    rng = np.random.default_rng(1)
    counts = sp.csr_matrix((rng.random((30, n_songs)) < 0.2).astype(np.float32))
    ds = Dataset("synthetic-tags", counts, np.array([f"u{i}" for i in range(30)]),
                 np.array([f"s{i}" for i in range(n_songs)]), tags=tags,
                 tag_names=[f"t{j}" for j in range(tags.shape[1])], synthetic=True)
    split = ColdItemSplit().split(ds, seed=3)
    model = model if model is not None else VectorModel(x)
    fit = FitContext(ds, split, seed)
    model.fit(fit)  # tasks get a fitted model
    return CellContext(ds, split, model, metrics=[], fit=fit, seed=seed, fit_s=0.25,
                       bootstrap=bootstrap)


def test_tagging_learns_linear_tags_and_matches_sklearn():
    x, tags = _linear_tags()
    task = TaggingTask()
    ctx = _cell(x, tags)
    out = task.run(ctx)
    auc = out.metrics["tag_auc_macro"]
    assert auc > 0.9
    songs, scores, labels = task.last_predictions
    assert set(songs) <= set(ctx.split.test_songs.tolist())
    both = labels.any(axis=0) & ~labels.all(axis=0)
    ref = roc_auc_score(labels[:, both], scores[:, both], average="macro")
    assert auc == pytest.approx(ref, abs=1e-12)
    lo, hi = out.metrics_ci["tag_auc_macro"]
    assert lo <= auc <= hi and hi - lo < 0.2
    # the batched bootstrap statistic equals the plain one on explicit resamples
    values = np.stack([scores, labels.astype(float)], axis=1)
    counts = np.stack([np.bincount(np.random.default_rng(i).integers(0, len(songs), len(songs)),
                                   minlength=len(songs)) for i in range(3)])
    stat = MacroTagAUC()
    batched = stat.reduce_resamples(values, counts)
    for b in range(3):
        rows = np.repeat(np.arange(len(songs)), counts[b])
        assert batched[b] == pytest.approx(stat(values[rows]), abs=1e-12)
    assert out.timing["eval_s"] > 0 and "fit_s" not in out.timing  # the runner times the fit
    assert out.throughput["songs_embedded_per_s"] > 0
    assert out.throughput["mlp_train_examples_per_s"] > 0
    assert out.diagnostics["n_tags_evaluated"] == int(both.sum())
    assert ctx.model.fitted == 1


def test_tagging_is_deterministic_under_the_seed():
    x, tags = _linear_tags(n_songs=300)
    a = TaggingTask(max_epochs=20).run(_cell(x, tags, bootstrap=50))
    b = TaggingTask(max_epochs=20).run(_cell(x, tags, bootstrap=50))
    assert a.metrics == b.metrics and a.metrics_ci == b.metrics_ci


def test_uninformative_vectors_score_near_chance():
    x, tags = _linear_tags()
    noise = np.random.default_rng(9).normal(size=x.shape).astype(np.float32)
    out = TaggingTask().run(_cell(noise, tags, bootstrap=0))
    assert abs(out.metrics["tag_auc_macro"] - 0.5) < 0.1
    assert out.metrics_ci == {}


def test_weighted_auc_equals_sklearn_on_the_resampled_songs():
    rng = np.random.default_rng(4)
    n = 80
    scores = rng.integers(0, 10, size=n).astype(float)  # many ties
    pos = rng.random(n) < 0.3
    w = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(25)])
    got = weighted_auc(scores, pos, w)
    for b in range(25):
        rows = np.repeat(np.arange(n), w[b].astype(int))
        assert got[b] == pytest.approx(roc_auc_score(pos[rows], scores[rows]), abs=1e-12)
    assert w.sum(axis=1).tolist() == [n] * 25


def test_tag_aucs_undefined_tags_and_macro():
    scores = np.array([[0.1, 0.9], [0.4, 0.2], [0.8, 0.3]])
    labels = np.array([[False, True], [True, True], [True, True]])  # tag 1: one class only
    per_tag = tag_aucs(scores, labels)[0]
    assert per_tag[0] == pytest.approx(1.0) and np.isnan(per_tag[1])
    assert macro(per_tag) == pytest.approx(1.0)
    assert np.isnan(macro(np.array([np.nan, np.nan])))


def test_applies_to_models_with_item_vectors_only():
    task = TaggingTask()
    assert task.applies_to(VectorModel(None))
    assert not task.applies_to(PopularityRecommender())

    class Flagged(VectorModel):
        has_item_vectors = False

    assert not task.applies_to(Flagged(None))


def test_clear_errors_without_vectors_or_tags():
    x, tags = _linear_tags(n_songs=100)
    with pytest.raises(RecbenchError, match="returned no song vectors"):
        TaggingTask().run(_cell(x, tags, model=VectorModel(None)))
    ctx = _cell(x, tags)
    ctx.dataset.tags = None
    with pytest.raises(DataError, match="has no tags"):
        TaggingTask().run(ctx)


def test_non_finite_vectors_are_dropped_and_counted():
    x, tags = _linear_tags(n_songs=300)
    x = x.copy()
    x[:10] = np.nan
    out = TaggingTask(max_epochs=5).run(_cell(x, tags, bootstrap=0))
    tagged_first_10 = int((tags[:10].getnnz(axis=1) > 0).sum())
    assert out.diagnostics["n_songs_dropped"]["non_finite_vector"] == tagged_first_10 > 0
    assert np.isfinite(out.metrics["tag_auc_macro"])


def test_registered_as_a_task():
    from recbench.registry import build_registry

    reg = build_registry()
    assert reg.get("task", "tagging").cls is TaggingTask
