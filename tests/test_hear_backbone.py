"""The ``hear`` backbone: any HEAR-API module, frozen or fine-tuned (tests/hear_toy.py; the
published ``hearbaseline`` package's naive model when it is installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recbench_builtin._training import with_head
from recbench_builtin.backbones_hear import HearBackbone

from recbench.errors import ConfigError

TOY = str(Path(__file__).with_name("hear_toy.py"))


def _toy_expected(x: torch.Tensor, gain: float) -> np.ndarray:
    a = (x[..., 0] * gain).double().numpy()
    s = np.stack([a.mean(1), np.abs(a).mean(1), a.max(1), a.min(1)], 1)
    w = np.arange(12).reshape(3, 4) / 10
    return s @ w.T


def test_frozen_gives_the_modules_scene_embeddings_and_trains_nothing():
    bb = HearBackbone(module=TOY, input_rate=16000, gain=0.5)
    assert bb.learnable is False and bb.out_features(100, 1, 7) == 3
    net = bb.build(100, 1, 7)
    torch.manual_seed(0)
    x = torch.randn(4, 100, 1)
    y = net(x)
    np.testing.assert_allclose(y.numpy(), _toy_expected(x, 0.5), rtol=1e-5, atol=1e-6)
    assert not y.requires_grad
    assert not [p for p in net.parameters() if p.requires_grad]
    net.train()  # stays frozen: the wrapped model is kept in eval mode
    assert not net.model.training
    # models add a trained head on a frozen backbone (with_head), the backbone stays fixed
    head = with_head(bb, 100, 1, 5, head="trainable")
    trainable = [p for p in head.parameters() if p.requires_grad]
    assert [tuple(p.shape) for p in trainable] == [(5, 3), (5,)]


def test_resamples_from_the_feature_rate_to_the_models():
    bb = HearBackbone(module=TOY, input_rate=8000, gain=1.0)
    net = bb.build(800, 1, 3)
    t = np.arange(800) / 8000
    x = torch.from_numpy(np.sin(2 * np.pi * 200 * t).astype(np.float32))[None, :, None]
    y = net(x).numpy()[0]
    # 200 Hz sine at 16 kHz: mean ~0, mean |x| ~ 2/pi, max ~1, min ~-1
    s = np.array([0.0, 2 / np.pi, 1.0, -1.0])
    np.testing.assert_allclose(y, np.arange(12).reshape(3, 4) / 10 @ s, atol=0.03)


def test_fine_tune_trains_the_model_parameters():
    bb = HearBackbone(module=TOY, input_rate=16000, fine_tune=True)
    assert bb.learnable is True
    net = bb.build(50, 1, 3)
    before = net.model.lin.weight.detach().clone()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    torch.manual_seed(1)
    loss = net(torch.randn(8, 50, 1)).pow(2).sum()
    loss.backward()
    assert net.model.lin.weight.grad is not None and net.model.lin.weight.grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(before, net.model.lin.weight)


def test_model_file_is_passed_to_load_model(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("hear_toy_copy", TOY)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.load_model()
    with torch.no_grad():
        m.lin.bias.fill_(2.0)
    torch.save(m.state_dict(), tmp_path / "w.pt")
    net = HearBackbone(module=TOY, input_rate=16000, gain=1.0,
                       model_file=str(tmp_path / "w.pt")).build(10, 1, 3)
    y = net(torch.zeros(1, 10, 1))
    np.testing.assert_allclose(y.numpy(), [[2.0, 2.0, 2.0]])


def test_bad_modules_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot import HEAR module") as e:
        HearBackbone(module="no_such_hear_module_xyz").build(10, 1, 3)
    assert "\n" not in str(e.value)
    (tmp_path / "half.py").write_text("def load_model(model_file_path=''):\n    return 1\n")
    with pytest.raises(ConfigError, match="no get_scene_embeddings"):
        HearBackbone(module=str(tmp_path / "half.py")).build(10, 1, 3)
    (tmp_path / "plain.py").write_text(
        "import numpy as np\n"
        "class M:\n    sample_rate = 100\n    scene_embedding_size = 2\n"
        "def load_model(model_file_path=''):\n    return M()\n"
        "def get_scene_embeddings(audio, model):\n"
        "    return np.stack([audio.numpy().mean(1), audio.numpy().std(1)], 1)\n")
    with pytest.raises(ConfigError, match="fine_tune needs a torch.nn.Module"):
        HearBackbone(module=str(tmp_path / "plain.py"), fine_tune=True).build(10, 1, 3)
    # a non-torch model (e.g. numpy / TensorFlow) still works frozen
    net = HearBackbone(module=str(tmp_path / "plain.py"), input_rate=100, gain=1.0).build(
        10, 1, 3)
    x = torch.arange(20, dtype=torch.float32).reshape(2, 10, 1)
    np.testing.assert_allclose(net(x).numpy(), [[4.5, np.std(np.arange(10))],
                                                [14.5, np.std(np.arange(10))]], rtol=1e-6)


def test_published_hearbaseline_naive_model(monkeypatch):
    """hearbaseline 2021.1.1 (installed with --no-deps; not a recbench dependency) calls
    librosa.filters.mel(sr, ...) positionally, which librosa >= 0.10 refuses: the test
    passes sr by keyword for it."""
    naive = pytest.importorskip("hearbaseline.naive")
    import librosa

    orig = librosa.filters.mel

    def mel(*args, **kw):
        if args:
            kw["sr"] = args[0]
        return orig(**kw)

    monkeypatch.setattr(librosa.filters, "mel", mel)
    bb = HearBackbone(module="hearbaseline.naive", input_rate=22050)
    assert bb.out_features(100, 1, 8) == 4096
    net = bb.build(22050, 1, 8)
    torch.manual_seed(0)
    x = torch.randn(2, 22050, 1)
    y = net(x)
    assert tuple(y.shape) == (2, 4096) and torch.isfinite(y).all()
    # the same as calling the package directly on the resampled, scaled audio
    import soxr

    a = soxr.resample((x[..., 0] * 0.1).numpy().T, 22050, 44100).T
    ref = naive.get_scene_embeddings(torch.from_numpy(np.ascontiguousarray(a)),
                                     naive.load_model())
    np.testing.assert_allclose(y.numpy(), ref.numpy(), rtol=1e-4, atol=1e-3)
