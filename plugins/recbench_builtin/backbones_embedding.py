"""Backbones over pretrained song embeddings (``ctx.features("embedding")``).

The feature source (:mod:`recbench.features.pretrained`) gives one-step windows
(B, 1, D), or (B, T, D) for a song's sequence of frame embeddings; a song's vector is the
mean of the outputs over its steps (:func:`recbench_builtin._training.embed_songs`).

- ``embedding``: no learning: the (standardised) embedding itself, D dims, averaged over
  the window's steps. ``content-profile`` uses it as is; ``wmf`` trains a linear head on it
  (WMF + linear regression on pretrained embeddings); ``dcue`` trains a linear map.
- ``embedding-mlp``: a learnable MLP (mean over steps -> [Linear + ReLU] x len(hidden) ->
  Linear(out_dim)), e.g. DCUE's item tower on pretrained embeddings.

Both read the precomputed feature ``kind`` (default ``"embedding"``): their ``input_kind``.
Models that need audio windows of many frames (e.g. the ``conv1d-lee2018`` backbone's 128)
do not apply: those backbones ask for log-mel features, which embeddings do not provide.
"""

from __future__ import annotations

from typing import Any

from recbench import hookimpl
from recbench.components import Backbone
from recbench.params import Param

_KIND = Param("kind", str, "embedding",
              help="the precomputed feature read (dataset.features key; 'embedding' = "
                   "the folder loader's `embeddings`)")


class _KindFromOptions(Backbone):
    """A backbone whose `input_kind` is its ``kind`` option."""

    input_kind = "embedding"

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.input_kind = self.options["kind"]


class EmbeddingBackbone(_KindFromOptions):
    """The pretrained embedding as the song vector: (B, T, D) -> mean over T -> (B, D).

    No parameters (``learnable = False``); ``out_dim`` is ignored: D = channels.
    """

    name = "embedding"
    description = "No learning: the pretrained embedding itself (D dims; out_dim ignored)"
    learnable = False
    params = (_KIND,)

    def out_features(self, time_steps: int, channels: int, out_dim: int) -> int:
        """D = channels (the embedding size)."""
        return channels

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A parameter-free module mapping (B, time_steps, D) to (B, D)."""
        from torch import nn

        class MeanSteps(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.out_features = channels

            def forward(self, x):
                return x.mean(dim=1)

        return MeanSteps()


class EmbeddingMLPBackbone(_KindFromOptions):
    """A learnable MLP over the pretrained embedding: mean over T, then
    [Linear(h) + ReLU] for each h in ``hidden``, then Linear(out_dim) (no activation)."""

    name = "embedding-mlp"
    description = "Learnable MLP over the pretrained embedding (mean over steps, hidden ReLU layers, linear)"
    params = (
        _KIND,
        Param("hidden", list, [256], item_type=int, min=1,
              help="sizes of the hidden ReLU layers ([] = one linear map)"),
        Param("dropout", float, 0.0, min=0.0, max=0.9, help="dropout before each linear layer"),
    )

    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """A module mapping (B, time_steps, channels) to (B, out_dim)."""
        from torch import nn

        layers: list[nn.Module] = []
        c_in = channels
        for h in self.options["hidden"]:
            if self.options["dropout"]:
                layers.append(nn.Dropout(self.options["dropout"]))
            layers += [nn.Linear(c_in, h), nn.ReLU()]
            c_in = h
        if self.options["dropout"]:
            layers.append(nn.Dropout(self.options["dropout"]))
        layers.append(nn.Linear(c_in, out_dim))

        class EmbeddingMLP(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.mlp = nn.Sequential(*layers)
                self.out_features = out_dim

            def forward(self, x):
                return self.mlp(x.mean(dim=1))

        return EmbeddingMLP()


@hookimpl
def recbench_register_backbones(register):
    register(EmbeddingBackbone)
    register(EmbeddingMLPBackbone)
