"""Built-in losses against hand-computed cases and torch references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from recbench.registry import build_registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def test_hinge_hand_computed(registry):
    pos = torch.tensor([0.5, 0.1])
    neg = torch.tensor([[0.4, 0.2, -1.0], [0.3, 0.0, 0.1]])
    # row 0: max(0, .2-.5+.4)=.1, max(0,.2-.5+.2)=0, 0  -> sum .1
    # row 1: max(0, .2-.1+.3)=.4, .1, .2                 -> sum .7
    loss = registry.create("loss", "hinge")
    assert loss.ranking and loss.options["margin"] == 0.2
    assert loss(pos, neg).item() == pytest.approx((0.1 + 0.7) / 2, abs=1e-6)
    mean = registry.create("loss", "hinge", negatives="mean", margin=0.2)
    assert mean(pos, neg).item() == pytest.approx((0.1 / 3 + 0.7 / 3) / 2, abs=1e-6)
    zero = registry.create("loss", "hinge", margin=0.0)
    assert zero(pos, neg).item() == pytest.approx((0.0 + 0.2 + 0.0) / 2, abs=1e-6)


@pytest.mark.parametrize("name,temperature", [("softmax", 1.0), ("softmax", 0.5),
                                              ("infonce", 0.07)])
def test_softmax_matches_cross_entropy(registry, name, temperature):
    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, 4, generator=g)
    loss = registry.create("loss", name, temperature=temperature)
    logits = torch.cat([pos[:, None], neg], dim=1) / temperature
    ref = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    assert loss(pos, neg).item() == pytest.approx(ref.item(), rel=1e-5)


def test_infonce_default_temperature(registry):
    loss = registry.create("loss", "infonce")
    pos, neg = torch.tensor([0.1]), torch.tensor([[0.0, 0.05]])
    t = 0.07
    e = [math.exp(v / t) for v in (0.1, 0.0, 0.05)]
    ref = -math.log(e[0] / sum(e))
    assert loss(pos, neg).item() == pytest.approx(ref, rel=1e-4)


def test_bpr_closed_form(registry):
    pos = np.array([1.0, -0.5])
    neg = np.array([[0.0, 2.0], [-0.5, -3.0]])
    ref = np.mean(-np.log(1 / (1 + np.exp(-(pos[:, None] - neg)))))
    loss = registry.create("loss", "bpr")
    assert loss(torch.tensor(pos), torch.tensor(neg)).item() == pytest.approx(ref, rel=1e-9)


def test_mse(registry):
    loss = registry.create("loss", "mse")
    assert loss.ranking is False
    pred, target = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 2.0], [2.0, 0.0]])
    assert loss(pred, target).item() == pytest.approx((1 + 0 + 4 + 0) / 4)
    with pytest.raises(ValueError):
        loss(pred, target[:, :1])


# Shape checks, scalar output and gradient directions of every loss: LossContract in
# tests/contracts/test_contract_audio.py.
