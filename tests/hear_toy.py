"""A small module implementing the HEAR API (load_model, get_scene_embeddings, the model's
sample_rate and scene_embedding_size), for the tests of the ``hear`` backbone.

Scene embedding of a clip x: W [mean(x), mean(|x|), max(x), min(x)] + b, with W, b the
model's parameters (W = arange(12)/10 reshaped 3 x 4, b = 0 unless a file says otherwise).
"""

from __future__ import annotations

import torch


class ToyModel(torch.nn.Module):
    """Four clip statistics, a linear map to 3 dims."""

    sample_rate = 16000
    scene_embedding_size = 3

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        with torch.no_grad():
            self.lin.weight.copy_(torch.arange(12, dtype=torch.float32).reshape(3, 4) / 10)
            self.lin.bias.zero_()


def load_model(model_file_path: str = "") -> ToyModel:
    """The toy model; `model_file_path`: a state dict saved with torch.save, or ""."""
    model = ToyModel()
    if model_file_path:
        model.load_state_dict(torch.load(model_file_path))
    return model


def stats(audio: torch.Tensor) -> torch.Tensor:
    """(n_sounds, 4) clip statistics."""
    return torch.stack([audio.mean(1), audio.abs().mean(1), audio.amax(1), audio.amin(1)], 1)


def get_scene_embeddings(audio: torch.Tensor, model: ToyModel) -> torch.Tensor:
    """(n_sounds, 3) embeddings of (n_sounds, n_samples) audio at 16 kHz."""
    if audio.ndim != 2:
        raise ValueError("audio must be (n_sounds, n_samples)")
    return model.lin(stats(audio))
