"""The contracts of metrics and tasks."""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import CellContext, FitContext, MetricInput, Recommender, Task, TaskOutput
from recbench.testing import worlds

from .base import ComponentContract, _registry


# --------------------------------------------------------------------------- metric


def _tie_orders(scores: np.ndarray) -> list[np.ndarray]:
    """Every ranking (best first) consistent with `scores`: tied songs in every order."""
    groups = [np.flatnonzero(scores == v) for v in np.unique(scores)[::-1]]
    orders = [[list(p) for p in itertools.permutations(g)] for g in groups]
    return [np.concatenate(c) for c in itertools.product(*orders)]


class MetricContract(ComponentContract):
    """A metric's per-user values have the users on the first axis and (for label-based
    metrics) are NaN for users without a positive; reduced values lie in `bounds`; a
    perfect scorer beats a reversed one in the declared direction; the reduced value does
    not change when songs are permuted; `reduce_resamples`, when present, agrees with
    `reduce` on resampled rows; and, given `reference`, each user's value is the
    expectation of `reference` over the orders of tied scores (brute force).

    `reference(ranked_labels, ranked_popularity, k) -> float` scores one ranking of one
    user's candidates, best first. `uses_labels` False for diagnostics that ignore
    relevance (coverage, popularity).
    """

    kind = "metric"
    k: ClassVar[int] = 3
    bounds: ClassVar[tuple[float, float]] = (0.0, 1.0)
    uses_labels: ClassVar[bool] = True
    reference: ClassVar[Callable[..., float] | None] = None

    def _block(self, scores, labels, mask=None, popularity=None) -> MetricInput:
        metric = self.make_component()
        pop = np.arange(1.0, scores.shape[1] + 1) if popularity is None else popularity
        return MetricInput(scores=np.asarray(scores, dtype=float), labels=np.asarray(labels),
                           mask=mask, k=self.k if metric.needs_k else None, popularity=pop)

    @pytest.fixture(scope="class")
    @classmethod
    def case(cls):
        """6 users x 7 songs with ties; user 4 has no positive, user 5 no negative."""
        scores = np.array([[3, 1, 2, 2, 0, 5, 1], [1, 1, 1, 1, 1, 1, 1],
                           [0, 2, 2, 2, 1, 3, 3], [5, 4, 3, 2, 1, 0, -1],
                           [1, 2, 3, 4, 5, 6, 7], [2, 2, 1, 1, 0, 0, 3]], dtype=float)
        labels = np.array([[1, 0, 1, 0, 0, 0, 1], [0, 1, 0, 0, 1, 0, 0],
                           [0, 1, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 1, 1],
                           [0, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 1]], dtype=bool)
        return scores, labels

    def test_per_user_rows_and_bounds(self, case):
        metric = self.make_component()
        scores, labels = case
        values = np.asarray(metric.per_user(self._block(scores, labels)), dtype=float)
        assert values.shape[0] == len(scores)
        if self.uses_labels:
            assert np.isnan(values[4]).all(), "a user without positives is undefined (NaN)"
        value = metric.reduce(values)
        lo, hi = self.bounds
        assert isinstance(value, float) and lo <= value <= hi

    def test_direction(self):
        if not self.uses_labels:
            pytest.skip("the metric ignores relevance")
        metric = self.make_component()
        rng = np.random.default_rng(0)
        labels = rng.random((20, 12)) < 0.3
        labels[:, 0] = True
        labels[:, 1] = False
        perfect = labels + rng.random(labels.shape) * 0.1
        reversed_ = -perfect
        good = metric.reduce(np.asarray(metric.per_user(self._block(perfect, labels))))
        bad = metric.reduce(np.asarray(metric.per_user(self._block(reversed_, labels))))
        assert (good > bad) if metric.higher_is_better else (good < bad)

    def test_song_order_does_not_matter(self):
        metric = self.make_component()
        rng = np.random.default_rng(1)
        scores = rng.random((8, 10))
        labels = rng.random((8, 10)) < 0.4
        pop = rng.integers(1, 50, 10).astype(float)
        perm = rng.permutation(10)
        a = metric.reduce(np.asarray(metric.per_user(self._block(scores, labels, None, pop))))
        b = metric.reduce(np.asarray(metric.per_user(
            self._block(scores[:, perm], labels[:, perm], None, pop[perm]))))
        assert a == pytest.approx(b, rel=1e-12, nan_ok=True)

    def test_reduce_resamples_agrees(self, case):
        metric = self.make_component()
        batched = getattr(metric, "reduce_resamples", None)
        if batched is None:
            pytest.skip("the metric has no reduce_resamples")
        scores, labels = case
        values = np.asarray(metric.per_user(self._block(scores, labels)))
        counts = np.array([[1] * len(values), [2, 0, 1, 0, 3, 0][:len(values)]])
        got = np.asarray(batched(values, counts))
        want = [metric.reduce(np.repeat(values, c, axis=0)) for c in counts]
        np.testing.assert_allclose(got, want, rtol=1e-12)

    def test_brute_force_expectation_over_ties(self, case):
        if type(self).reference is None:
            pytest.skip("no reference declared")
        ref = type(self).reference
        metric = self.make_component()
        scores, labels = case
        pop = np.arange(1.0, scores.shape[1] + 1)
        got = np.asarray(metric.per_user(self._block(scores, labels, None, pop)), dtype=float)
        for u in range(len(scores)):
            if self.uses_labels and (not labels[u].any() or labels[u].all()) and \
                    math.isnan(got[u]):
                continue
            vals = [ref(labels[u][o], pop[o], self.k) for o in _tie_orders(scores[u])]
            assert got[u] == pytest.approx(np.mean(vals), rel=1e-9, abs=1e-12), u


# --------------------------------------------------------------------------- task


class _ScriptedModel(Recommender):
    """Scores = the test labels plus a user-specific noise: near-perfect, deterministic."""

    name = "contract-scripted"
    description = "test double: scores from the held-out labels plus noise"
    has_item_vectors = True

    def __init__(self, world: worlds.World, noise: float = 0.5, **options: Any):
        super().__init__(**options)
        self.world, self.noise = world, noise

    def fit(self, ctx: FitContext) -> None:
        rng = np.random.default_rng(0)
        counts = self.world.dataset.counts.toarray() > 0
        self._s = counts + self.noise * rng.random(counts.shape)
        n_classes = int(self.world.classes.max()) + 1 if self.world.classes is not None else 2
        self._v = np.eye(n_classes)[self.world.classes] if self.world.classes is not None \
            else rng.random((counts.shape[1], 2))

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        return self._s[np.asarray(users)][:, np.asarray(songs)]

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        return self._v[np.asarray(songs)] + 0.1 * np.random.default_rng(1).random(
            (len(songs), self._v.shape[1]))


class TaskContract(ComponentContract):
    """A task run on a tiny world with a (fitted) scripted model gives a finite number for
    each of its metrics, a confidence interval containing it, metric info with a direction,
    JSON diagnostics, finite throughput and timing, and the same numbers when run twice.

    `metrics`: the (column, metric name, k) triples to ask for (default: the task's
    `default_metrics`, no cutoff). `known_metrics`: {column: value} the run must give (to
    1e-9) with the default scripted model, whose scores put every held-out positive above
    every negative and whose song vectors are the songs' classes (the world's tags).
    Override ``make_world()`` (default: the audible-classes world, with the songs' classes
    as tags) or ``make_model(world)``.
    """

    kind = "task"
    metrics: ClassVar[tuple[tuple[str, str, int | None], ...] | None] = None
    known_metrics: ClassVar[dict[str, float]] = {}
    bootstrap: ClassVar[int] = 200

    def make_world(self) -> worlds.World:
        w = worlds.audible_classes_world(users=60, songs=120)
        tags = sp.csr_matrix(np.eye(4, dtype=np.float32)[w.classes])
        from dataclasses import replace

        return replace(w, dataset=replace(w.dataset, tags=tags,
                                          tag_names=[f"class{i}" for i in range(4)]))

    def make_model(self, world: worlds.World) -> Recommender:
        return _ScriptedModel(world)

    def cell(self, world: worlds.World, task: Task, model: Recommender, **kw: Any
             ) -> CellContext:
        registry = _registry()
        specs = self.metrics if self.metrics is not None else tuple(
            (m, m, None) for m in type(task).default_metrics)
        metrics = [(col, registry.create("metric", name), k) for col, name, k in specs]
        fit = world.context(0)
        if not getattr(model, "_contract_fitted", False):  # tasks get a fitted model
            model.fit(fit)
            setattr(model, "_contract_fitted", True)  # a marker on the instance under test
        return CellContext(dataset=world.dataset, split=world.split, model=model,
                           metrics=metrics, fit=fit, seed=0, bootstrap=self.bootstrap, **kw)

    @pytest.fixture(scope="class")
    @classmethod
    def ran(cls):
        self = cls()
        world = self.make_world()
        task = self.make_component()
        model = self.make_model(world)
        assert task.applies_to(model)
        return world, task, task.run(self.cell(world, task, model))

    def test_numbers_finite_with_ci(self, ran):
        _, task, out = ran
        assert isinstance(out, TaskOutput) and out.metrics
        for col, value in out.metrics.items():
            assert np.isfinite(value), col
            low, high = out.metrics_ci[col]
            assert low <= value + 1e-12 and value - 1e-12 <= high, (col, low, value, high)
        for value in list(out.throughput.values()) + list(out.timing.values()):
            assert value is None or not np.isnan(value)
        primary = type(task).primary_metric
        assert not primary or primary in out.metrics or not out.metrics

    def test_typed_output(self, ran):
        """Every metric has its info (a direction at least); diagnostics and private extra
        are JSON; per-user values, when given, are aligned with their `users`."""
        import json

        _, _, out = ran
        for col in out.metrics:
            assert isinstance(out.metric_info.get(col, {}).get("higher_is_better"), bool), col
        json.dumps(out.diagnostics, allow_nan=True)
        json.dumps(out.extra, allow_nan=True)
        assert all(isinstance(m, str) for m in out.ignored_metrics)
        if out.per_user:
            n = len(out.per_user["users"])
            assert all(len(np.asarray(v)) == n for v in out.per_user.values())

    def test_known_metrics(self, ran):
        if not self.known_metrics:
            pytest.skip("no known answers declared (known_metrics)")
        _, _, out = ran
        for col, value in self.known_metrics.items():
            assert out.metrics[col] == pytest.approx(value, abs=1e-9), col

    def test_repeatable(self, ran):
        world, task, out = ran
        again = task.run(self.cell(world, task, self.make_model(world)))
        assert again.metrics == out.metrics and again.metrics_ci == out.metrics_ci
