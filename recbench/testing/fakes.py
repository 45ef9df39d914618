"""Stand-ins for what the runner gives a model: song features over an in-memory array and a
:class:`recbench.components.FitContext` built from a registry."""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench.components import FitContext, SongFeaturesLike
from recbench.data import Dataset, Split
from recbench.features import SongFeatures


class FakeSongFeatures(SongFeatures):
    """:class:`recbench.features.SongFeatures` over an in-memory array that is already
    standardised (mean 0, std 1): crops and windows behave exactly as in a run.

    array: (n_songs, n_steps, n_channels) float; lengths: (n_songs,) valid steps per song
    (0 = no audio; steps past a song's length read as 0); window: steps per model input.
    """

    def __init__(self, array: np.ndarray, lengths: np.ndarray, window: int,
                 kind: str = "logmel"):
        array = np.asarray(array, dtype=np.float32)
        c = array.shape[2]
        super().__init__(kind=kind, array=array, lengths=np.asarray(lengths, dtype=np.int64),
                         mean=np.zeros(c, np.float32), std=np.ones(c, np.float32),
                         window=int(window))


def fit_context(dataset: Dataset, split: Split, seed: int = 0, *,
                features: SongFeaturesLike | None = None, registry: Any = None,
                oracle: bool = False, device: str = "cpu") -> FitContext:
    """A FitContext as the runner builds it: `create` from `registry` (default: the
    installed plugins' :func:`recbench.registry.default_registry`), `features` returning
    `features` for any kind (or raising, as for a dataset without audio, when None)."""
    if registry is None:
        from recbench.registry import default_registry

        registry = default_registry()
    kw: dict[str, Any] = {}
    if features is not None:
        kw["features"] = lambda kind, *args: features
    return FitContext(dataset=dataset, split=split, seed=seed, device=device,
                      create=registry.create, oracle=oracle, **kw)
