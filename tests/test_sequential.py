"""Sequential models and their parts: causal masking (perturbing future items), the skip
contrastive loss against a hand-computed case, MRR ties, the sequential task's numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from recbench_builtin.losses_sequential import SkipContrastiveLoss
from recbench_builtin.metrics_sequential import expected_reciprocal_rank
from recbench_builtin.sequential.sasrec import PARAMS, build_net
from users14_data import synth

from recbench.components import CellContext, FitContext
from recbench.registry import default_registry


@pytest.mark.parametrize("encoder", ["transformer", "gru"])
def test_no_position_sees_the_future(encoder):
    """Changing the items after position t leaves the representations up to t unchanged
    (and does change those after it: the check can fail)."""
    o = {p.name: p.default for p in PARAMS}
    o.update(dim=16, layers=2, heads=2, max_len=12, dropout=0.0)
    torch.manual_seed(0)
    net = build_net(50, o, encoder).eval()
    seq = torch.randint(0, 50, (3, 12))
    with torch.no_grad():
        base = net(seq)
        for t in range(11):
            other = seq.clone()
            other[:, t + 1:] = torch.randint(0, 50, (3, 11 - t))
            out = net(other)
            torch.testing.assert_close(out[:, :t + 1], base[:, :t + 1], rtol=0, atol=1e-5)
            assert (out[:, t + 1:] - base[:, t + 1:]).abs().max() > 1e-4


def test_right_padding_does_not_change_real_positions():
    o = {p.name: p.default for p in PARAMS}
    o.update(dim=8, layers=1, max_len=6, dropout=0.0)
    net = build_net(20, o, "transformer").eval()
    a = torch.tensor([[3, 4, 5, -1, -1, -1]])
    b = torch.tensor([[3, 4, 5, 7, 8, 9]])
    with torch.no_grad():
        torch.testing.assert_close(net(a)[:, :3], net(b)[:, :3], rtol=0, atol=1e-5)


def test_skip_contrastive_by_hand():
    loss = SkipContrastiveLoss()
    pos = torch.tensor([1.0, 0.5, 2.0])
    neg = torch.tensor([[0.0, -math.inf], [1.0, 2.0], [-math.inf, -math.inf]])
    # row 0: -log(e / (e + 1)) = log(1 + e^-1); row 1: -log(e^.5 / (e^.5 + e + e^2));
    # row 2 has no skipped track: left out of the mean
    r0 = math.log(1 + math.exp(-1.0))
    r1 = -math.log(math.exp(0.5) / (math.exp(0.5) + math.e + math.exp(2.0)))
    assert float(loss(pos, neg)) == pytest.approx((r0 + r1) / 2, abs=1e-6)
    hot = SkipContrastiveLoss(temperature=0.5)
    assert float(hot(pos[:1], neg[:1])) == pytest.approx(math.log(1 + math.exp(-2.0)),
                                                          abs=1e-6)
    none = loss(pos[2:], neg[2:])
    assert float(none) == 0.0


def test_expected_reciprocal_rank_ties_by_hand():
    # one positive tied with two negatives, one negative above: ranks 2, 3, 4 equally likely
    s = np.array([5.0, 3.0, 3.0, 3.0, 1.0])
    y = np.array([0, 1, 0, 0, 0], bool)
    assert expected_reciprocal_rank(s, y) == pytest.approx((1 / 2 + 1 / 3 + 1 / 4) / 3)
    assert expected_reciprocal_rank(s, np.array([1, 0, 0, 0, 0], bool)) == 1.0
    assert math.isnan(expected_reciprocal_rank(s, np.zeros(5, bool)))


@pytest.fixture(scope="module")
def session_world():
    from recbench_builtin.splits_users import NextSessionSplit

    ds = synth(skip_strength=1.0)
    return ds, NextSessionSplit().split(ds, 0)


def _run(ds, split, name, **opts):
    reg = default_registry()
    model = reg.create("recommender", name, **opts)
    fit = FitContext(dataset=ds, split=split, seed=0, create=reg.create)
    model.fit(fit)
    metrics = [(c, reg.create("metric", n), k) for c, n, k in
               (("hr@10", "hr", 10), ("mrr", "mrr", None))]
    task = reg.create("task", "sequential", max_steps=3)
    assert task.applies_to(model)
    return model, task.run(CellContext(dataset=ds, split=split, model=model,
                                       metrics=metrics, fit=fit, seed=0, bootstrap=50))


def test_sequential_task_popularity_by_hand(session_world):
    """seq-popularity's HR@10 is the share of evaluated next tracks among the 10 most
    played training songs (songs tied at the cutoff share its slots), computed by hand."""
    ds, split = session_world
    model, out = _run(ds, split, "seq-popularity")
    pop = model._pop
    v = np.sort(pop)[-10]  # the 10th largest: songs above are in, tied ones share slots
    p_in = np.where(pop > v, 1.0, 0.0)
    p_in[pop == v] = (10 - (pop > v).sum()) / (pop == v).sum()
    ev, part = ds.events, split.event_part
    hits = []
    for u in out.per_user["users"]:
        lo, hi = np.searchsorted(ev.user, [u, u + 1])
        test = [e for e in range(lo, hi) if part[e] == 2 and not ev.skipped[e]][:3]
        hits.append(np.mean([p_in[ev.song[e]] for e in test]))
    assert out.metrics["hr@10"] == pytest.approx(np.mean(hits), abs=1e-12)
    assert 0 <= out.metrics["skip@10"] <= 1
    assert out.metric_info["skip@10"]["higher_is_better"] is False


def test_sasrec_learns_beyond_popularity(session_world):
    ds, split = session_world
    _, pop = _run(ds, split, "seq-popularity")
    _, sas = _run(ds, split, "sasrec", dim=16, layers=1, max_len=20, max_epochs=6,
                  skip_loss="skip-contrastive")
    assert sas.metrics["mrr"] > pop.metrics["mrr"]


def test_fit_report_says_what_was_read(session_world):
    ds, split = session_world
    model, _ = _run(ds, split, "seq-popularity")
    assert model.fit_report()["uses"] == ["interactions", "events", "skips"]


def test_task_refuses_a_split_without_sessions():
    from recbench.errors import ConfigError
    from recbench_builtin.splits_users import ColdUserKSplit

    ds = synth(skip_strength=1.0)
    split = ColdUserKSplit().split(ds, 0)
    with pytest.raises(ConfigError, match="next-session"):
        _run(ds, split, "seq-popularity")


def test_training_windows_by_hand():
    """Skipped tracks are neither inputs nor targets; each position's negatives are the
    skips of its target's session (a song skipped, then played as the target: not one)."""
    model = default_registry().create("recommender", "sasrec", max_len=4, max_skips=2)
    songs = np.array([1, 9, 2, 3, 8, 3, 4])
    skipped = np.array([0, 1, 0, 0, 1, 0, 0], bool)
    sess = [np.array([0, 0, 0, 1, 1, 1, 1])]
    x, y, k, neg = model._windows([(songs, skipped)], sess)
    # played: 1 2 | 3 3 4 (sessions 0 | 1); one window of max_len + 1 = 5 tracks
    assert x.tolist() == [[1, 2, 3, 3]] and y.tolist() == [[2, 3, 3, 4]]
    assert not k.any()
    assert neg[0, :, 0].tolist() == [9, 8, 8, 8]  # session 0 skipped 9, session 1 skipped 8
    assert (neg[0, :, 1] == -1).all()
    again = model._windows([(np.array([1, 5, 5]), np.array([0, 1, 0], bool))],
                           [np.zeros(3, np.int64)])
    assert again[3][0, 0].tolist() == [-1, -1]  # 5 skipped, then played next: no negative
