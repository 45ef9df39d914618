"""Built-in audio backbones: output shapes per input kind, registry wiring, mel-stats values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recbench.registry import build_registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.mark.parametrize("name,params,T,C", [
    ("conv1d", {"width": 0.125}, 129, 128),   # paper window: 3 s at 22,050 Hz, hop 512
    ("conv1d", {"width": 0.125}, 7, 16),      # short windows still pool to >= 1 step
    ("conv1d", {"width": 0.125, "global_pool": "avg", "batch_norm": False}, 40, 8),
    ("conv2d", {"width": 0.25}, 64, 32),
    ("samplecnn", {"width": 0.0625}, 59049, 1),  # 3^10 samples: the paper's input
    ("samplecnn", {"width": 0.0625, "channels": [16, 16, 16]}, 1000, 1),
])
def test_output_shape(registry, name, params, T, C):
    backbone = registry.create("backbone", name, **params)
    expected_kind = "waveform" if name == "samplecnn" else "logmel"
    assert backbone.input_kind == expected_kind
    assert backbone.learnable
    torch.manual_seed(0)
    module = backbone.build(T, C, 24)
    module.eval()
    with torch.no_grad():
        out = module(torch.randn(3, T, C))
    assert out.shape == (3, 24)
    assert module.out_features == 24
    assert torch.isfinite(out).all()


def test_conv1d_paper_layout(registry):
    """Five conv blocks with the paper-size widths; no ReLU after the final linear."""
    module = registry.create("backbone", "conv1d").build(129, 128, 256)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv1d)]
    pools = [m for m in module.modules() if isinstance(m, torch.nn.MaxPool1d)]
    assert [c.out_channels for c in convs] == [128, 128, 256, 256, 256]
    assert convs[0].in_channels == 128 and len(pools) == 5
    with torch.no_grad():
        out = module.eval()(torch.randn(4, 129, 128))
    assert (out < 0).any()  # the feature layer is linear, not rectified


def test_width_multiplier_scales_channels(registry):
    module = registry.create("backbone", "conv1d", width=0.25).build(129, 128, 8)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 64]


def test_mel_stats_matches_numpy(registry):
    backbone = registry.create("backbone", "mel-stats")
    assert backbone.learnable is False
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 50, 12)).astype(np.float32) * 3 + 1
    module = backbone.build(50, 12, 999)  # out_dim ignored
    assert module.out_features == 24
    assert len(list(module.parameters())) == 0
    out = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out[:, :12], x.mean(axis=1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 12:], x.std(axis=1), rtol=1e-5, atol=1e-5)


def test_deterministic_under_seed(registry):
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        module = registry.create("backbone", "conv2d", width=0.25).build(32, 16, 4).eval()
        with torch.no_grad():
            outs.append(module(torch.ones(2, 32, 16)))
    assert torch.equal(outs[0], outs[1])
