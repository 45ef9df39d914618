"""Contract tests: one mixin per plugin kind. Subclass one in a pytest test class, say
which component to test, and pytest runs every check on it::

    from recbench.testing import RecommenderContract

    class TestItemKNN(RecommenderContract):
        component = ItemKNN            # the class, or its registered name
        options = {"k": 10}            # parameters (default: the declared defaults)
        min_auc = 0.6                  # known answer on the audible-classes world

Each mixin needs one factory, ``make_component()``, which by default instantiates
`component` with `options` (a registered name is created through the installed plugins'
registry); override it when building the component takes more. Every check is a small
known-answer or invariant test that runs in seconds on one thread.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any, Callable, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import (CONSUMABLE, Backbone, CellContext, Component,
                                 DatasetLoader, FitContext, LoadContext, MetricInput,
                                 Recommender, Task, TaskOutput)
from recbench import defaults
from recbench.errors import ConfigError
from recbench.testing import worlds

PROTOCOLS = defaults.PROTOCOLS


def _registry() -> Any:
    from recbench.registry import default_registry

    return default_registry()


class ComponentContract:
    """Checks shared by every kind: identity, declared parameters, option validation."""

    kind: ClassVar[str] = ""
    component: ClassVar[type[Component] | str | None] = None
    options: ClassVar[dict[str, Any]] = {}

    @classmethod
    def component_class(cls) -> type[Component]:
        """The class under test (looked up in the registry when `component` is a name)."""
        if isinstance(cls.component, str):
            return _registry().get(cls.kind, cls.component).cls
        if cls.component is None:
            raise TypeError(f"{cls.__name__}: set `component` or override make_component()")
        return cls.component

    def make_component(self, **overrides: Any) -> Any:
        """The component under test, with `options` updated by `overrides`."""
        return self.component_class()(**{**self.options, **overrides})

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _one_torch_thread(cls):
        """Tiny models on shared machines: one intra-op thread is faster and reproducible."""
        try:
            import torch
        except ImportError:  # pragma: no cover
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)

    def test_identity(self):
        cls = self.component_class()
        assert cls.kind == self.kind, f"{cls.__name__} is a {cls.kind!r}, not a {self.kind!r}"
        assert cls.name and cls.name == cls.name.strip(), "a component needs a name"
        assert (cls.description or cls.__doc__ or "").strip(), "a component needs a description"
        assert len({p.name for p in cls.params}) == len(cls.params), "duplicate parameters"

    def test_unknown_option_is_rejected(self):
        with pytest.raises(ConfigError):
            self.make_component(no_such_option_for_contract_tests=1)


# --------------------------------------------------------------------------- recommender


class RecommenderContract(ComponentContract):
    """A recommender fits on a world, scores (users, songs) with finite numbers in the
    right shape independently of how users are chunked, is reproducible under its seed,
    provides item vectors as it declares, never depends on held-out test interactions
    unless it is a declared oracle, and (optionally) reaches a known AUC.

    Class attributes: `min_auc` (the test AUC must reach it on the world) and
    `expected_auc` (it must equal it to 1e-9), both None to skip;
    `song_chunk_invariant` False when a pair's score may depend on the other songs scored
    with it (chunking over users must never matter); `make_world()` builds the
    world (default: :func:`recbench.testing.worlds.audible_classes_world`, 60 users x 120
    songs).
    """

    kind = "recommender"
    min_auc: ClassVar[float | None] = None
    expected_auc: ClassVar[float | None] = None
    song_chunk_invariant: ClassVar[bool] = True
    seed: ClassVar[int] = 3

    def make_world(self) -> worlds.World:
        return worlds.audible_classes_world(users=60, songs=120)

    def fit(self, world: worlds.World, seed: int | None = None) -> Recommender:
        model = self.make_component()
        model.fit(world.context(self.seed if seed is None else seed,
                                oracle=type(model).uses_test_interactions))
        return model

    @pytest.fixture(scope="class")
    @classmethod
    def world(cls) -> worlds.World:
        return cls().make_world()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, world) -> Recommender:
        return cls().fit(world)

    def test_capabilities_are_consistent(self):
        cls = self.component_class()
        assert set(cls.consumes) <= set(CONSUMABLE), f"unknown consumes: {cls.consumes}"
        assert cls.uses_test_interactions == ("test_interactions" in cls.consumes), (
            "uses_test_interactions and 'test_interactions' in consumes must agree")
        assert isinstance(cls.provides_item_vectors(), bool)

    def test_scores_shape_dtype_finite(self, fitted, world):
        users = world.split.test_users[:7]
        songs = world.split.test_songs
        s = np.asarray(fitted.score(users, songs))
        assert s.shape == (len(users), len(songs))
        assert s.dtype.kind == "f" and np.isfinite(s).all()
        assert np.asarray(fitted.score(users[:0], songs)).shape == (0, len(songs))

    def test_scores_do_not_depend_on_chunking(self, fitted, world):
        users, songs = world.split.test_users, world.split.test_songs
        whole = np.asarray(fitted.score(users, songs))
        k = max(1, len(users) // 3)
        parts = np.vstack([fitted.score(users[:k], songs), fitted.score(users[k:], songs)])
        np.testing.assert_allclose(parts, whole, rtol=1e-6, atol=1e-7)
        if not self.song_chunk_invariant:
            return
        half = len(songs) // 2
        cols = np.hstack([fitted.score(users, songs[:half]), fitted.score(users, songs[half:])])
        np.testing.assert_allclose(cols, whole, rtol=1e-6, atol=1e-7)

    def test_item_vectors_as_declared(self, fitted, world):
        songs = world.split.test_songs[:5]
        vecs = fitted.item_vectors(songs)
        if not type(fitted).provides_item_vectors():
            assert vecs is None
            return
        vecs = np.asarray(vecs)
        assert vecs.ndim == 2 and vecs.shape[0] == len(songs) and vecs.shape[1] >= 1
        assert np.isfinite(vecs).all()

    def test_same_seed_same_scores(self, fitted, world):
        again = self.fit(world)
        users, songs = world.split.test_users, world.split.test_songs
        np.testing.assert_array_equal(again.score(users, songs), fitted.score(users, songs))

    def test_held_out_interactions_are_not_read(self, fitted, world):
        """An honest model fitted on a world whose test interactions are replaced by random
        ones scores identically; an oracle is refused `all_interactions` without leave."""
        model_cls = type(fitted)
        if model_cls.uses_test_interactions:
            with pytest.raises(PermissionError):
                self.make_component().fit(world.context(self.seed, oracle=False))
            return
        poisoned = self.fit(world.with_poisoned_test())
        users, songs = world.split.test_users, world.split.test_songs
        np.testing.assert_array_equal(poisoned.score(users, songs), fitted.score(users, songs))

    def test_known_answer(self, fitted, world):
        if self.min_auc is None and self.expected_auc is None:
            pytest.skip("no known answer declared (min_auc / expected_auc)")
        auc = world.test_auc(fitted)
        if self.expected_auc is not None:
            assert auc == pytest.approx(self.expected_auc, abs=1e-9)
        if self.min_auc is not None:
            assert auc >= self.min_auc, f"test AUC {auc:.4f} < {self.min_auc}"


# --------------------------------------------------------------------------- backbone


class BackboneContract(ComponentContract):
    """A backbone's module maps (B, T, C) to (B, out_features(T, C, out_dim)) for several
    T, says its size in ``out_features``, is finite, gives each window the same output in
    a batch as alone (eval mode), and passes gradients to every parameter when learnable.
    """

    kind = "backbone"
    out_dim: ClassVar[int] = 12
    time_steps: ClassVar[tuple[int, ...]] = (16, 33)
    channels: ClassVar[int] = 8

    def _shape(self, backbone: Backbone) -> tuple[tuple[int, ...], int]:
        if backbone.input_kind == "waveform":
            return tuple(t * 27 for t in self.time_steps), 1
        return self.time_steps, self.channels

    def test_input_kind_declared(self):
        assert self.component_class().input_kind in ("logmel", "waveform")

    def test_output_shape_and_size(self):
        import torch

        backbone = self.make_component()
        steps, c = self._shape(backbone)
        torch.manual_seed(0)
        for t in steps:
            module = backbone.build(t, c, self.out_dim)
            size = backbone.out_features(t, c, self.out_dim)
            assert getattr(module, "out_features", size) == size
            y = module(torch.randn(3, t, c))
            assert tuple(y.shape) == (3, size) and torch.isfinite(y).all()

    def test_batch_independent_in_eval_mode(self):
        import torch

        backbone = self.make_component()
        steps, c = self._shape(backbone)
        torch.manual_seed(0)
        module = backbone.build(steps[0], c, self.out_dim)
        module.train()
        module(torch.randn(4, steps[0], c))  # move any running statistics
        module.eval()
        x = torch.randn(4, steps[0], c)
        with torch.no_grad():
            np.testing.assert_allclose(module(x[:1]).numpy(), module(x)[:1].numpy(),
                                       rtol=1e-4, atol=1e-5)

    def test_gradients_flow(self):
        import torch

        backbone = self.make_component()
        steps, c = self._shape(backbone)
        torch.manual_seed(0)
        module = backbone.build(steps[0], c, self.out_dim)
        params = [p for p in module.parameters() if p.requires_grad]
        if not backbone.learnable:
            return  # models freeze it and train a head (recbench_builtin._training.with_head)
        assert params, "a learnable backbone needs trainable parameters"
        module.train()
        module(torch.randn(4, steps[0], c)).pow(2).sum().backward()
        for p in params:
            assert p.grad is not None and torch.isfinite(p.grad).all()
        assert any(float(p.grad.abs().sum()) > 0 for p in params)


# --------------------------------------------------------------------------- loss


class LossContract(ComponentContract):
    """A loss returns a finite scalar with gradients; a ranking loss (pos (B,), neg (B, K))
    is lower when positives beat negatives, decreases in pos and increases in neg; a
    regression loss (pred, target) is 0 at pred == target and positive elsewhere. Both
    reject inputs of the wrong shape with ValueError.

    `known_answers`: (a, b, value) triples computed by hand, checked to 1e-6.
    `zero_when_separated`: the ranking loss is exactly 0 once every positive beats every
    negative by 1 (e.g. a hinge with margin < 1).
    """

    kind = "loss"
    known_answers: ClassVar[tuple[tuple[Any, Any, float], ...]] = ()
    zero_when_separated: ClassVar[bool] = False

    @staticmethod
    def _t(x: Any, grad: bool = False) -> Any:
        import torch

        return torch.tensor(np.asarray(x, dtype=np.float32), requires_grad=grad)

    def test_scalar_finite_with_gradients(self):
        loss = self.make_component()
        rng = np.random.default_rng(0)
        if loss.ranking:
            a, b = self._t(rng.normal(size=5), True), self._t(rng.normal(size=(5, 3)), True)
        else:
            a, b = self._t(rng.normal(size=(5, 3)), True), self._t(rng.normal(size=(5, 3)))
        out = loss(a, b)
        assert out.dim() == 0 and bool(out.isfinite())
        out.backward()
        assert a.grad is not None and bool(a.grad.isfinite().all())

    def test_direction(self):
        loss = self.make_component()
        if not loss.ranking:
            t = self._t([[0.5, -1.0], [2.0, 0.0]])
            assert float(loss(t.clone(), t)) == 0.0
            assert float(loss(t + 0.5, t)) > 0.0
            return
        good = float(loss(self._t([1.0, 1.0]), self._t([[-1.0, -1.0], [-1.0, -1.0]])))
        bad = float(loss(self._t([-1.0, -1.0]), self._t([[1.0, 1.0], [1.0, 1.0]])))
        assert good < bad
        if self.zero_when_separated:
            assert good == 0.0
        pos, neg = self._t([0.1, -0.2], True), self._t([[0.0, 0.3], [0.2, -0.1]], True)
        loss(pos, neg).backward()
        assert (pos.grad <= 0).all() and (neg.grad >= 0).all()

    def test_rejects_wrong_shapes(self):
        loss = self.make_component()
        a, b = (self._t(np.zeros((3, 2))), self._t(np.zeros((3, 2)))) if loss.ranking else \
            (self._t(np.zeros((3, 2))), self._t(np.zeros((2, 3))))
        with pytest.raises(ValueError):
            loss(a, b)

    def test_known_answers(self):
        if not self.known_answers:
            pytest.skip("no hand-computed values declared (known_answers)")
        loss = self.make_component()
        for a, b, value in self.known_answers:
            assert float(loss(self._t(a), self._t(b))) == pytest.approx(value, abs=1e-6)


# --------------------------------------------------------------------------- sampler


class SamplerContract(ComponentContract):
    """A sampler draws int song indices of shape (len(users), n) from the songs given to
    `prepare`, the same ones under the same seed, with or without a scorer; when
    `excludes_positives` is declared, never a song the user played in training (unless the
    user played every candidate).
    """

    kind = "sampler"
    excludes_positives: ClassVar[bool] = False

    @pytest.fixture(scope="class")
    @classmethod
    def prepared(cls):
        ds = worlds.random_counts(seed=4, users=30, songs=40, density=0.2)
        songs = np.arange(0, 40, 2)
        sampler = cls().make_component()
        sampler.prepare(ds.counts, songs)
        return sampler, ds.counts.tocsr(), songs

    @staticmethod
    def _scorer(users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        return np.asarray(songs, dtype=float)[None, :] * np.ones((len(users), 1))

    @pytest.mark.parametrize("with_scorer", [False, True])
    def test_shape_range_determinism(self, prepared, with_scorer):
        sampler, _, songs = prepared
        users = np.array([0, 3, 3, 7, 29])
        scorer = self._scorer if with_scorer else None
        a = sampler.sample(users, 6, np.random.default_rng(1), scorer)
        b = sampler.sample(users, 6, np.random.default_rng(1), scorer)
        assert a.shape == (len(users), 6) and a.dtype.kind in "iu"
        assert np.isin(a, songs).all()
        np.testing.assert_array_equal(a, b)

    def test_positives(self, prepared):
        if not self.excludes_positives:
            pytest.skip("the sampler does not declare excluding positives")
        sampler, train, _ = prepared
        users = np.arange(train.shape[0])
        drawn = sampler.sample(users, 8, np.random.default_rng(2), None)
        dense = train.toarray() > 0
        assert not dense[users[:, None], drawn].any()


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


# --------------------------------------------------------------------------- split


class SplitterContract(ComponentContract):
    """A split of a small dataset is disjoint and covers every interaction, names a known
    protocol, keeps song index sets consistent with its matrices (cold-item: test songs
    have no training interaction), and is deterministic: the same seed gives the same
    fingerprint, another seed another one."""

    kind = "split"

    def make_dataset(self):
        return worlds.random_counts(seed=2, users=60, songs=50)

    @pytest.fixture(scope="class")
    @classmethod
    def dataset(cls):
        return cls().make_dataset()

    @pytest.fixture(scope="class")
    @classmethod
    def split(cls, dataset):
        return cls().make_component().split(dataset, 7)

    def test_protocol(self, split):
        cls = self.component_class()
        assert cls.protocol in PROTOCOLS and split.protocol == cls.protocol

    def test_disjoint_and_covering(self, split, dataset):
        parts = [sp.csr_matrix(m) for m in (split.train, split.valid, split.test)]
        for m in parts:
            assert m.shape == dataset.counts.shape and m.dtype.kind == "f"
        assert parts[2].nnz > 0, "no test interactions"
        played = [(m > 0).astype(np.int64) for m in parts]
        assert (played[0] + played[1] + played[2]).max() <= 1, "parts overlap"
        total = (parts[0] + parts[1] + parts[2]) - dataset.counts
        assert abs(total).sum() == 0, "parts do not add up to the dataset"

    def test_song_and_user_sets(self, split):
        for name in ("train_songs", "valid_songs", "test_songs", "train_users", "test_users"):
            v = np.asarray(getattr(split, name))
            assert v.dtype.kind in "iu" and len(np.unique(v)) == len(v), name
        test_cols = np.unique(sp.csr_matrix(split.test).indices)
        assert np.isin(test_cols, split.test_songs).all()
        test_rows = np.flatnonzero(np.asarray((split.test > 0).sum(axis=1)).ravel())
        assert np.isin(test_rows, split.test_users).all()
        if split.protocol == defaults.COLD_ITEM:
            assert not np.intersect1d(split.train_songs, split.test_songs).size
            assert not (split.train[:, split.test_songs] > 0).nnz

    def test_deterministic_fingerprint(self, split, dataset):
        again = self.make_component().split(dataset, 7)
        assert again.fingerprint == split.fingerprint == split.fingerprint
        assert self.make_component().split(dataset, 8).fingerprint != split.fingerprint


# --------------------------------------------------------------------------- dataset


class DatasetLoaderContract(ComponentContract):
    """Loading validates, gives the same fingerprint twice, canonical CSR counts (sorted
    indices, no stored zeros, positive values), unique ids of the right lengths, audio and
    tags sized to the songs, the declared `synthetic` flag, and a JSON manifest whose
    counts of dropped or repaired input are non-negative integers.

    Override ``make_loader(tmp_path)`` for loaders that need files on disk.
    """

    kind = "dataset"

    def make_loader(self, tmp_path) -> DatasetLoader:
        return self.make_component()

    @pytest.fixture(scope="class")
    @classmethod
    def loaded(cls, tmp_path_factory):
        tmp = tmp_path_factory.mktemp("dataset-contract")
        loader = cls().make_loader(tmp)
        loader.validate(str(tmp))
        ctx = LoadContext(cache_dir=str(tmp / "cache"), suite_dir=str(tmp))
        return loader, loader.load(ctx), loader.load(ctx)

    def test_stable_fingerprint(self, loaded):
        _, a, b = loaded
        assert a.fingerprint == b.fingerprint

    def test_canonical_counts_and_ids(self, loaded):
        loader, ds, _ = loaded
        c = ds.counts
        assert sp.isspmatrix_csr(c) and c.has_sorted_indices
        assert (c.data > 0).all(), "store no zeros or negative counts"
        assert len(ds.user_ids) == ds.n_users and len(ds.song_ids) == ds.n_songs
        assert len(set(map(str, ds.user_ids))) == ds.n_users
        assert len(set(map(str, ds.song_ids))) == ds.n_songs
        assert ds.synthetic == type(loader).synthetic or ds.synthetic
        if ds.audio is not None:
            assert len(ds.audio) == ds.n_songs
        if ds.tags is not None:
            assert ds.tags.shape == (ds.n_songs, len(ds.tag_names))

    def test_manifest(self, loaded):
        _, ds, _ = loaded
        json.dumps(ds.manifest, default=str)

        def leaves(d: dict, path: str = ""):
            for key, value in d.items():
                if isinstance(value, dict):
                    yield from leaves(value, f"{path}{key}.")
                else:
                    yield f"{path}{key}", value

        words = ("malformed", "skipped", "dropped", "duplicate", "repaired", "bad")
        for key, value in leaves(ds.manifest):
            if any(w in key for w in words) and isinstance(value, (int, np.integer)) \
                    and not isinstance(value, bool):
                assert value >= 0, key


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
            model._contract_fitted = True
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


# --------------------------------------------------------------------------- executor


def _square(x: int) -> tuple[int, int]:
    return x, x * x


class ExecutorContract(ComponentContract):
    """`map(fn, items)` yields every position exactly once with fn's result for that item
    (in any order), handles no items, and `close()` may be called after."""

    kind = "executor"

    @pytest.fixture(scope="class")
    @classmethod
    def executor(cls):
        ex = cls().make_component()
        yield ex
        ex.close()

    def test_every_index_once_results_kept(self, executor):
        items = [3, 1, 4, 1, 5, 9, 2]
        out = list(executor.map(_square, items))
        assert sorted(i for i, _ in out) == list(range(len(items)))
        assert {i: r for i, r in out} == {i: (x, x * x) for i, x in enumerate(items)}

    def test_no_items(self, executor):
        assert list(executor.map(_square, [])) == []


CONTRACTS: dict[str, type[ComponentContract]] = {
    "recommender": RecommenderContract,
    "backbone": BackboneContract,
    "loss": LossContract,
    "sampler": SamplerContract,
    "dataset": DatasetLoaderContract,
    "split": SplitterContract,
    "metric": MetricContract,
    "executor": ExecutorContract,
    "task": TaskContract,
}
"""The contract mixin of each plugin kind."""


def contract_subclasses() -> list[type[ComponentContract]]:
    """Every imported concrete contract test class (a subclass of one of the mixins that
    names its component), for checking that each registered plugin has one."""
    out, todo = [], list(CONTRACTS.values())
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.component is not None or "make_component" in vars(sub):
                out.append(sub)
    return out


def covered(classes: list[type[ComponentContract]] | None = None) -> set[tuple[str, str]]:
    """(kind, name) of the components the given (default: all imported) contract test
    classes test."""
    got = set()
    for cls in classes if classes is not None else contract_subclasses():
        try:
            comp = cls.component_class() if cls.component is not None else None
        except Exception:  # an unknown name: that test class fails on its own
            continue
        if comp is not None:
            got.add((cls.kind, comp.name))
    return got
