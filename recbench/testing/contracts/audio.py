"""The contracts of the audio side: backbone, loss and sampler."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from recbench.components import Backbone
from recbench.testing import worlds

from .base import ComponentContract


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
        # "logmel", "waveform", or a precomputed feature kind such as "embedding"
        kind = self.component_class().input_kind
        assert isinstance(kind, str) and kind.replace("-", "_").isidentifier(), kind

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
