"""Audio backbones: factories of torch modules mapping windows (B, T, C) to vectors (B, D).

- ``conv1d``: the DCUE / WMF+Regression audio model (Lee et al. 2018, section 3.1): five
  blocks of 1-D convolution over time (mel bins as input channels) + max-pooling, ReLU after
  every layer but the final (feature) one, then global pooling and a linear layer to D.
- ``conv1d-lee2018``: the authors' released audio model (``jongpillee/deep-content-user``
  ``model.py:model_basic``): kernels 4,4,4,2,1, widths
  128,256,256,256,256, "same" padding, max-pools 4,4,4,2, no batch norm, global average
  pool, linear Dense(256). 130 frames -> 32 -> 8 -> 2 -> 1 time steps.
- ``conv2d``: a small VGG-style 2-D CNN over the (time x mel) image.
- ``samplecnn``: a sample-level CNN over the raw waveform (Kim, Lee & Nam 2018): a strided
  3-sample "frame" convolution, then blocks of 3-sample convolution + max-pool of 3.
- ``mel-stats``: no learning: each band's mean and standard deviation over time (2C dims).

Every built module has an ``out_features`` attribute: the size D of its output, which
``Backbone.out_features(time_steps, channels, out_dim)`` declares before building. For the
learnable backbones it equals the ``out_dim`` passed to ``build``; ``mel-stats`` ignores
``out_dim`` and outputs ``2 * channels``. Song vectors from windows:
:func:`recbench_builtin._training.embed_songs`.

torch is imported inside ``build`` so that this module imports cheaply.
"""

from __future__ import annotations

import math
from typing import Any

from recbench import hookimpl
from recbench.components import Backbone
from recbench.errors import ConfigError
from recbench.params import Param


class _PooledNet:
    """The learnable backbones' module: convolutional `layers`, a global pool over what is
    left of time (and mel bins), a linear layer to `out_dim`."""

    @staticmethod
    def build(layers: list, c_in: int, out_dim: int, view: str, pool: str) -> Any:
        """`view` "time": convolve over time, (B, T, C) -> (B, C, T); "image": a 1-channel
        (B, 1, T, C) image. `pool`: "max" or "avg" over the remaining positions."""
        import torch
        from torch import nn

        class PooledNet(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = nn.Sequential(*layers)
                self.fc = nn.Linear(c_in, out_dim)
                self.out_features = out_dim

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                h = self.features(x.transpose(1, 2) if view == "time" else x.unsqueeze(1))
                dims = 2 if h.dim() == 3 else (2, 3)
                return self.fc(h.amax(dim=dims) if pool == "max" else h.mean(dim=dims))

        return PooledNet()


def _scaled(widths: list[int], width: float, where: str) -> list[int]:
    """Channel widths multiplied by `width` (at least 1 channel each)."""
    if not widths:
        raise ConfigError("expected at least one channel width", key=where)
    return [max(1, round(w * width)) for w in widths]


class Conv1DBackbone(Backbone):
    """DCUE's audio model: 5 x (Conv1d over time + BatchNorm + ReLU + MaxPool) -> global
    pool -> Linear(out_dim).

    Input (B, T, C) log-mel windows (C = mel bins, 128 in the paper; T = 129 frames for 3 s
    at 22,050 Hz, hop 512). The DCUE paper gives the layer count and activations but no
    widths or kernel sizes; the defaults (kernel 3, pool 3, widths 128-128-256-256-256)
    follow the artist-label model it adopts its audio settings from (Park et al. 2018).
    Pools use ``ceil_mode`` so any T >= 1 keeps at least one step (129 -> 43 -> 15 -> 5 ->
    2 -> 1). Output (B, out_dim), no activation on the last layer (paper, section 3.1).
    """

    name = "conv1d"
    description = "DCUE audio model: 5 x (1-D conv over time + max-pool), global pool, linear"
    input_kind = "logmel"
    params = (
        Param("channels", list, [128, 128, 256, 256, 256], item_type=int, min=1,
              help="output channels of each conv block (paper-size defaults)"),
        Param("kernel", int, 3, min=1, help="conv kernel size in time steps"),
        Param("pool", int, 3, min=1, help="max-pool size after each conv block"),
        Param("width", float, 1.0, min=0.01,
              help="multiplier on every channel width (e.g. 0.125 for cheap CI runs)"),
        Param("batch_norm", bool, True, help="BatchNorm after each convolution"),
        Param("global_pool", str, "max", choices=("max", "avg"),
              help="pooling over the remaining time steps"),
    )

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A module mapping (B, time_steps, channels) to (B, out_dim)."""
        from torch import nn

        o = self.options
        widths = _scaled(o["channels"], o["width"], "backbone.conv1d.channels")
        layers: list[nn.Module] = []
        c_in = channels
        for w in widths:
            layers.append(nn.Conv1d(c_in, w, o["kernel"], padding=o["kernel"] // 2))
            if o["batch_norm"]:
                layers.append(nn.BatchNorm1d(w))
            layers.append(nn.ReLU())
            layers.append(nn.MaxPool1d(o["pool"], ceil_mode=True))
            c_in = w
        return _PooledNet.build(layers, c_in, out_dim, "time", o["global_pool"])


class Conv1DLee2018Backbone(Backbone):
    """The authors' audio model (``model.py:model_basic`` of jongpillee/deep-content-user).

    Input (B, T, C) mel windows (the authors: T = 130 frames, C = 128 bins), convolved over
    time with "same" padding (for an even kernel the extra padded step goes after the end,
    as in Keras), no batch norm::

        Conv(128, k=4)-ReLU-MaxPool(4) -> Conv(256, k=4)-ReLU-MaxPool(4)
        -> Conv(256, k=4)-ReLU-MaxPool(4) -> Conv(256, k=2)-ReLU-MaxPool(2)
        -> Conv(256, k=1)-ReLU -> global average over time -> Linear(out_dim), no activation

    Pools drop the remainder (Keras "valid" pooling): 130 -> 32 -> 8 -> 2 -> 1 steps, so a
    window needs at least 4 * 4 * 4 * 2 = 128 steps (fewer is a ConfigError). Weights start
    as the authors' Keras defaults: he_uniform convolutions, glorot_uniform dense layer,
    zero biases. `width` scales every channel count (1.0 = the authors' model).
    """

    name = "conv1d-lee2018"
    description = ("Authors' DCUE audio model: 1-D convs k4,4,4,2,1 (128-256-256-256-256), "
                   "pools 4,4,4,2, no BN, global avg, linear")
    input_kind = "logmel"
    KERNELS = (4, 4, 4, 2, 1)
    WIDTHS = (128, 256, 256, 256, 256)
    POOLS = (4, 4, 4, 2, 1)  # 1 = no pooling after the last convolution
    params = (
        Param("width", float, 1.0, min=0.01,
              help="multiplier on every channel width (1.0 = the authors' model)"),
    )

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A module mapping (B, time_steps, channels) to (B, out_dim)."""
        import torch
        from torch import nn

        need = math.prod(self.POOLS)
        if time_steps < need:
            raise ConfigError(f"needs windows of at least {need} time steps (the authors "
                              f"use 130 frames), got {time_steps}",
                              key="backbone.conv1d-lee2018")
        widths = _scaled(list(self.WIDTHS), self.options["width"],
                         "backbone.conv1d-lee2018.width")
        layers: list[nn.Module] = []
        c_in = channels
        for w, k, p in zip(widths, self.KERNELS, self.POOLS):
            conv = nn.Conv1d(c_in, w, k)
            nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")  # Keras he_uniform
            nn.init.zeros_(conv.bias)
            if k > 1:  # "same": (k - 1) // 2 zeros before, the rest after (Keras / TF)
                layers.append(nn.ConstantPad1d(((k - 1) // 2, k - 1 - (k - 1) // 2), 0.0))
            layers += [conv, nn.ReLU()]
            if p > 1:
                layers.append(nn.MaxPool1d(p))  # floor, as Keras "valid" pooling
            c_in = w
        fc = nn.Linear(c_in, out_dim)
        nn.init.xavier_uniform_(fc.weight)  # Keras glorot_uniform
        nn.init.zeros_(fc.bias)

        class Lee2018Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.features = nn.Sequential(*layers)
                self.fc = fc
                self.out_features = out_dim

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.fc(self.features(x.transpose(1, 2)).mean(dim=2))

        return Lee2018Net()


class Conv2DBackbone(Backbone):
    """A small VGG-style CNN over the log-mel image: blocks of (3x3 Conv2d + BatchNorm +
    ReLU + 2x2 MaxPool) -> global max pool -> Linear(out_dim).

    Input (B, T, C) windows seen as a 1-channel T x C image; output (B, out_dim).
    """

    name = "conv2d"
    description = "VGG-style 2-D CNN over the mel image (3x3 convs, 2x2 pools), linear head"
    input_kind = "logmel"
    params = (
        Param("channels", list, [32, 64, 128, 128], item_type=int, min=1,
              help="output channels of each 3x3 conv block"),
        Param("width", float, 1.0, min=0.01, help="multiplier on every channel width"),
        Param("batch_norm", bool, True, help="BatchNorm after each convolution"),
    )

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A module mapping (B, time_steps, channels) to (B, out_dim)."""
        from torch import nn

        o = self.options
        widths = _scaled(o["channels"], o["width"], "backbone.conv2d.channels")
        layers: list[nn.Module] = []
        c_in = 1
        for w in widths:
            layers.append(nn.Conv2d(c_in, w, 3, padding=1))
            if o["batch_norm"]:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.ReLU())
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = w

        return _PooledNet.build(layers, c_in, out_dim, "image", "max")


class SampleCNNBackbone(Backbone):
    """Sample-level CNN over raw waveforms (Kim, Lee & Nam, ICASSP 2018).

    A strided "frame" convolution (kernel = stride = 3) followed by blocks of (3-sample
    Conv1d + BatchNorm + ReLU + MaxPool 3), then global max pool and Linear(out_dim). With
    the defaults (9 blocks) a 59,049-sample input (3^10, 2.7 s at 22,050 Hz) is reduced to
    one step as in the paper; other lengths work (pools use ``ceil_mode``).

    Input (B, T, 1) waveform windows; output (B, out_dim).
    """

    name = "samplecnn"
    description = "Sample-level CNN on raw waveform: strided 3-sample frame conv, 3-sample convs + pools"
    input_kind = "waveform"
    params = (
        Param("frame_channels", int, 128, min=1, help="channels of the strided frame conv"),
        Param("channels", list, [128, 128, 256, 256, 256, 256, 256, 256, 512], item_type=int, min=1,
              help="output channels of each 3-sample conv + pool block"),
        Param("width", float, 1.0, min=0.01, help="multiplier on every channel width"),
    )

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A module mapping (B, time_steps, channels) to (B, out_dim)."""
        from torch import nn

        o = self.options
        frame = max(1, round(o["frame_channels"] * o["width"]))
        widths = _scaled(o["channels"], o["width"], "backbone.samplecnn.channels")
        layers: list[nn.Module] = [nn.Conv1d(channels, frame, 3, stride=3),
                                   nn.BatchNorm1d(frame), nn.ReLU()]
        c_in = frame
        for w in widths:
            layers += [nn.Conv1d(c_in, w, 3, padding=1), nn.BatchNorm1d(w), nn.ReLU(),
                       nn.MaxPool1d(3, ceil_mode=True)]
            c_in = w

        return _PooledNet.build(layers, c_in, out_dim, "time", "max")


class MelStatsBackbone(Backbone):
    """No learning: each band's mean and standard deviation over time.

    Input (B, T, C); output (B, 2C) = [mean_1..mean_C, std_1..std_C] (population std,
    ddof = 0). ``out_dim`` is ignored: read the size from the module's ``out_features``.
    The module has no parameters (``learnable = False``): models must not train it.
    """

    name = "mel-stats"
    description = "No learning: per-band mean and std over time (2C dims; out_dim ignored)"
    input_kind = "logmel"
    learnable = False

    def out_features(self, time_steps: int, channels: int, out_dim: int) -> int:
        """2 * channels: the means then the standard deviations (`out_dim` is ignored)."""
        return 2 * channels

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A parameter-free module mapping (B, time_steps, channels) to (B, 2 * channels)."""
        import torch
        from torch import nn

        class MelStats(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.out_features = 2 * channels

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.cat([x.mean(dim=1), x.std(dim=1, unbiased=False)], dim=1)

        return MelStats()


@hookimpl
def recbench_register_backbones(register):
    register(Conv1DBackbone)
    register(Conv1DLee2018Backbone)
    register(Conv2DBackbone)
    register(SampleCNNBackbone)
    register(MelStatsBackbone)
