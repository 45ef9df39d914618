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


def test_conv1d_lee2018_stage_sizes_and_parameter_count(registry):
    """The authors' model_basic: hand-computed (channels, time) after every stage on their
    (130, 128) input, and the exact parameter count."""
    module = registry.create("backbone", "conv1d-lee2018").build(130, 128, 256)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in module.modules())
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (128, 128, 4), (128, 256, 4), (256, 256, 4), (256, 256, 2), (256, 256, 1)]
    sizes = []
    h = torch.randn(2, 130, 128).transpose(1, 2)
    with torch.no_grad():
        for layer in module.features:
            h = layer(h)
            if isinstance(layer, (torch.nn.Conv1d, torch.nn.MaxPool1d)):
                sizes.append(tuple(h.shape[1:]))
    # conv keeps the length ("same"); pools 4, 4, 4, 2 floor it: 130 -> 32 -> 8 -> 2 -> 1
    assert sizes == [(128, 130), (128, 32), (256, 32), (256, 8), (256, 8), (256, 2),
                     (256, 2), (256, 1), (256, 1)]
    # conv: in * out * k + out; dense 256 * 256 + 256
    expected = (128 * 128 * 4 + 128) + (128 * 256 * 4 + 256) + (256 * 256 * 4 + 256) \
        + (256 * 256 * 2 + 256) + (256 * 256 * 1 + 256) + (256 * 256 + 256)
    assert expected == 722_304
    assert sum(p.numel() for p in module.parameters()) == expected
    with torch.no_grad():
        out = module.eval()(torch.randn(4, 130, 128))
    assert out.shape == (4, 256) and (out < 0).any()  # linear feature layer


def test_conv1d_lee2018_same_padding_is_keras_like(registry):
    """An even kernel pads one step before and two after (TensorFlow "SAME"): with all-ones
    weights, the first output of a k=4 conv sums x[0..2], the last sums x[T-2..T-1]."""
    module = registry.create("backbone", "conv1d-lee2018").build(128, 1, 1)
    pad, conv = module.features[0], module.features[1]
    x = torch.arange(1.0, 9.0).view(1, 1, 8)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
        y = conv(pad(x))[0, 0]
    assert y.shape == (8,)
    assert y[0].item() == 1 + 2 + 3 and y[-1].item() == 7 + 8 and y[1].item() == 1 + 2 + 3 + 4


def test_conv1d_lee2018_global_average_not_max(registry):
    """The last stage averages over time: two time steps left -> their mean feeds the fc."""
    module = registry.create("backbone", "conv1d-lee2018").build(256, 128, 8).eval()
    x = torch.randn(1, 256, 128)
    with torch.no_grad():
        h = module.features(x.transpose(1, 2))
        assert h.shape == (1, 256, 2)
        torch.testing.assert_close(module(x), module.fc(h.mean(dim=2)))


def test_conv1d_lee2018_width_and_short_window(registry):
    from recbench.errors import ConfigError

    module = registry.create("backbone", "conv1d-lee2018", width=0.25).build(130, 128, 16)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 64, 64]
    with pytest.raises(ConfigError, match="at least 128 time steps"):
        registry.create("backbone", "conv1d-lee2018").build(127, 128, 16)
