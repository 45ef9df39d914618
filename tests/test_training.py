"""`recbench_builtin._training`: early stopping, optimiser + Keras decay, heads, embedding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from recbench_builtin._training import (EarlyStopping, autocast, embed_songs, make_optimizer,
                                        with_head)
from recbench_builtin.backbones import Conv1DBackbone, MelStatsBackbone


def test_early_stopping_keeps_best_state_and_stops_after_patience():
    state = {"w": [0]}
    stopper = EarlyStopping(patience=2)
    for epoch, value in enumerate([0.5, 0.7, float("nan"), 0.6, 0.9], start=1):
        state["w"][0] = epoch
        stopper.update(epoch, value, lambda: state)
        if stopper.should_stop:
            break
    assert (epoch, stopper.best, stopper.best_epoch, stopper.stop_reason) == (
        4, 0.7, 2, "patience")
    assert stopper.best_state == {"w": [2]}  # a deep copy, not the live object
    got = []
    assert stopper.restore(got.append) and got == [{"w": [2]}]


def test_early_stopping_other_reason_wins_and_nothing_to_restore():
    stopper = EarlyStopping(patience=1)
    stopper.stop("max_minutes")
    stopper.update(1, float("nan"), dict)
    assert stopper.stop_reason == "max_minutes" and not stopper.improved_once
    assert not stopper.restore(lambda s: pytest.fail("nothing to restore"))
    with pytest.raises(ValueError):
        EarlyStopping(0)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_keras_style_decay(kind):
    w = torch.nn.Parameter(torch.zeros(2))
    opt, sched = make_optimizer(kind, [{"params": [w], "lr": 0.5}], lr=0.1, decay=0.25)
    for t in range(4):
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5 / (1 + 0.25 * t))
        opt.step()
        sched.step()
    if kind == "sgd":
        assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError):
        make_optimizer("rmsprop", [w], lr=0.1)


def test_with_head_modes():
    stats = MelStatsBackbone()
    assert with_head(stats, 8, 4, 8).out_features == 8  # 2C == out_dim: no head needed
    net = with_head(stats, 8, 4, 8, head="trainable")  # frozen stats + a trained head
    assert net.out_features == 8 and isinstance(net[1], torch.nn.Linear)
    assert with_head(stats, 8, 4, 3, head="never").out_features == 8
    conv = with_head(Conv1DBackbone(channels=[4]), 8, 4, 5)
    assert conv.out_features == 5 and conv(torch.zeros(2, 8, 4)).shape == (2, 5)


def test_embed_songs_means_windows_and_restores_mode():
    from recbench.testing import FakeSongFeatures

    rng = np.random.default_rng(0)
    feats = FakeSongFeatures(rng.normal(size=(4, 12, 3)).astype(np.float32),
                             np.array([12, 0, 7, 12]), window=4)
    net = with_head(MelStatsBackbone(), 4, 3, 6, head="never")
    net.train()
    out = embed_songs(net, feats, np.array([0, 1, 2, 3]), "cpu", batch=2)
    assert net.training and out.shape == (4, 6) and not out[1].any()
    with torch.no_grad():
        want = net(torch.from_numpy(feats.array[0].reshape(3, 4, 3))).mean(0).numpy()
    np.testing.assert_allclose(out[0], want, rtol=1e-6)
    silent = embed_songs(net, feats, np.array([1]), "cpu", include_silent=True)
    assert silent.shape == (1, 6)  # the one zero window's output: all zeros for stats
    with autocast("cpu", False):
        pass
