"""The sequential models' losses by hand: SASRec's sampled-negative BCE (Sec. III-E) and
its negatives, and seed 004's skip term with cosine similarity (InfoNCE)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from recbench_builtin.sequential._train import bce_loss, sample_negatives, skip_scores

from recbench.registry import default_registry


def test_bce_loss_by_hand():
    """Row 1: -log s(2) - log(1 - s(0)) - log(1 - s(-1)); row 2: -log s(-1) - log(1 -
    s(3)) - log(1 - s(0.5)); the mean of both (s: the logistic function)."""
    s = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    r1 = -math.log(s(2)) - math.log(1 - s(0)) - math.log(1 - s(-1))
    r2 = -math.log(s(-1)) - math.log(1 - s(3)) - math.log(1 - s(0.5))
    got = bce_loss(torch.tensor([2.0, -1.0], dtype=torch.float64),
                   torch.tensor([[0.0, -1.0], [3.0, 0.5]], dtype=torch.float64))
    assert float(got) == pytest.approx((r1 + r2) / 2, abs=1e-12)


def test_sampled_negatives_never_the_target_and_uniform_over_the_rest():
    torch.manual_seed(0)
    n = 7
    targets = torch.arange(n).repeat_interleave(2000)
    neg = sample_negatives(targets, n, 3)
    assert neg.shape == (len(targets), 3)
    assert not (neg == targets[:, None]).any()
    assert int(neg.min()) >= 0 and int(neg.max()) <= n - 1
    for t in range(n):  # each other song 1/6 of the time
        counts = np.bincount(neg[targets == t].ravel().numpy(), minlength=n)
        assert counts[t] == 0
        others = np.delete(counts, t) / counts.sum()
        assert np.abs(others - 1 / (n - 1)).max() < 0.02
    two = sample_negatives(torch.tensor([0, 1, 1, 0]), 2, 5)  # only one other song
    assert two.tolist() == [[1] * 5, [0] * 5, [0] * 5, [1] * 5]


def test_cosine_infonce_by_hand():
    """h = (1, 0); played (1, 1): cos 1/sqrt 2; skipped (0, 2): 0, (-3, 0): -1 (and a -inf
    pad); t = 0.5: -log(e^{sqrt 2} / (e^{sqrt 2} + e^0 + e^{-2})). Biases are ignored; with
    dot the scores are the dot products plus the biases."""
    loss = default_registry().create("loss", "skip-contrastive", temperature=0.5,
                                     similarity="cosine")
    h = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    vecs = torch.tensor([[1.0, 1.0], [0.0, 2.0], [-3.0, 0.0]], dtype=torch.float64)
    bias = torch.tensor([5.0, -1.0, 2.0], dtype=torch.float64)
    pos, neg = skip_scores(loss, h, vecs, bias, torch.tensor([0]), torch.tensor([[1, 2, 2]]))
    assert pos.tolist() == pytest.approx([2 ** -0.5])
    assert neg.tolist()[0] == pytest.approx([0.0, -1.0, -1.0])
    neg = neg.masked_fill(torch.tensor([[False, False, True]]), float("-inf"))
    want = -math.log(math.exp(2 ** 0.5) / (math.exp(2 ** 0.5) + 1 + math.exp(-2)))
    assert float(loss(pos, neg)) == pytest.approx(want, abs=1e-12)
    dot = default_registry().create("loss", "skip-contrastive")
    pos, neg = skip_scores(dot, h, vecs, bias, torch.tensor([0]), torch.tensor([[1, 2]]))
    assert pos.tolist() == [6.0] and neg.tolist() == [[-1.0, -1.0]]


@pytest.mark.parametrize("name", ["sasrec", "gru4rec"])
def test_bce_step_trains_and_draws_no_target(name):
    """One bce step with the cosine skip term on a tiny window: finite losses, and the
    song vectors of sampled negatives get gradient (the softmax gives every song some)."""
    from recbench_builtin.sequential._net import build_net

    reg = default_registry()
    model = reg.create("recommender", name, max_len=4, max_skips=2, dim=8, dropout=0.0,
                       next_loss="bce", sampled_negatives=3, skip_loss="skip-contrastive",
                       skip_loss_params={"similarity": "cosine", "temperature": 0.1})
    torch.manual_seed(0)
    model.net, model._device = build_net(40, model.options, model.encoder), "cpu"
    songs = np.array([1, 9, 2, 3, 8, 3, 4])
    skipped = np.array([0, 1, 0, 0, 1, 0, 0], bool)
    windows = model._windows([(songs, skipped)], [np.array([0, 0, 0, 1, 1, 1, 1])])
    grads = []

    class Keep:
        def zero_grad(self):
            model.net.zero_grad()

        def step(self):
            grads.append(model.net.item.weight.grad.clone())

    nxt, skip = model._step(windows, np.array([0]), reg.create(
        "loss", "skip-contrastive", similarity="cosine", temperature=0.1), Keep())
    assert math.isfinite(nxt) and nxt > 0 and skip > 0
    touched = set(np.flatnonzero(grads[0].abs().sum(1).numpy() > 0).tolist())
    # inputs 1 2 3 3, targets 2 3 3 4, skips 9 8: the rest only as sampled negatives
    assert touched - {1, 2, 3, 4, 8, 9}
    assert len(touched) <= 6 + 4 * 3
