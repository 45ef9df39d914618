"""The audio side's contracts: Backbone, Loss and Sampler."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np

from .base import Component

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp


# --------------------------------------------------------------------------- audio side


class Backbone(Component, abc.ABC):
    """An audio backbone: a factory of torch modules over audio windows.

    `input_kind` names the feature kind the module reads: "logmel", "waveform", or a
    precomputed per-song kind such as "embedding" (pretrained vectors; what
    ``ctx.features(kind)`` returns). The built module maps a float tensor of shape
    (batch, time_steps, channels) (channels = mel bins, or 1 for waveforms) to
    (batch, D), D = :meth:`out_features` (the requested `out_dim` unless the backbone
    says otherwise), and has an ``out_features`` attribute equal to D. `learnable` False
    means the module must not be trained (models freeze it and add a head).
    """

    kind = "backbone"
    input_kind: ClassVar[str] = "logmel"
    learnable: ClassVar[bool] = True

    @abc.abstractmethod
    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """Return a `torch.nn.Module` for windows of `time_steps` x `channels`."""

    def out_features(self, time_steps: int, channels: int, out_dim: int) -> int:
        """The output size D of the module `build(time_steps, channels, out_dim)` returns
        (default: `out_dim`; e.g. ``mel-stats`` returns 2 * channels)."""
        return out_dim


class Loss(Component, abc.ABC):
    """A training loss. `ranking` losses take (pos (B,), neg (B, K)) scores;
    regression losses take (pred, target) of the same shape. Returns a scalar tensor."""

    kind = "loss"
    ranking: ClassVar[bool] = True

    @abc.abstractmethod
    def __call__(self, a: Any, b: Any) -> Any:
        """The mean loss over the batch."""


class Sampler(Component, abc.ABC):
    """Draws negative songs for users.

    `prepare(train, songs)` is called once with the training matrix and the song indices
    negatives may come from. `sample(users, n, rng, scorer)` returns an int array
    (len(users), n) of song indices; `scorer(users, candidates)` (scores of shape
    (len(users), n_candidates)) is given for model-aware samplers and may be None.
    """

    kind = "sampler"

    def prepare(self, train: sp.csr_matrix, songs: np.ndarray) -> None:
        self.songs = np.asarray(songs)

    @abc.abstractmethod
    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator,
               scorer: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
               ) -> np.ndarray:
        """Negative song indices of shape (len(users), n)."""
