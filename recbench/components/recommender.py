"""The recommender contract: Recommender, the song-features protocol and FitContext."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import ConfigError
from .base import Component

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

    from ..io.dataset import Dataset, Split


# --------------------------------------------------------------------------- recommender


CONSUMABLE = ("interactions", "audio", "test_interactions")
"""What a recommender may declare in `consumes`."""


class Recommender(Component, abc.ABC):
    """A recommender: fit on a split, then score (user, song) pairs.

    Capabilities, declared as class attributes:

    - `consumes`: the information the model reads, any of :data:`CONSUMABLE`:
      "interactions" (training interactions), "audio" (song audio through
      ``ctx.features``: the model needs a dataset with audio), "test_interactions" (the
      held-out interactions: an oracle). Recorded in every result row.
    - `uses_test_interactions`: True for oracles, and then "test_interactions" must be in
      `consumes` (the contract tests check that both agree). Only such models get
      ``ctx.all_interactions``; the leaderboard ranks their rows apart.
    - `has_item_vectors`: whether `item_vectors` returns song vectors (used by the
      auto-tagging task); None (the default) means "when the class overrides
      `item_vectors`". Read it through :meth:`provides_item_vectors`.
    """

    kind = "recommender"
    consumes: ClassVar[tuple[str, ...]] = ("interactions",)
    uses_test_interactions: ClassVar[bool] = False
    has_item_vectors: ClassVar[bool | None] = None

    @classmethod
    def provides_item_vectors(cls) -> bool:
        """Whether fitted instances return song vectors from `item_vectors`."""
        if cls.has_item_vectors is not None:
            return bool(cls.has_item_vectors)
        return cls.item_vectors is not Recommender.item_vectors

    @classmethod
    def needs_audio(cls) -> bool:
        """Whether the model reads song audio (``"audio" in consumes``)."""
        return "audio" in cls.consumes

    @abc.abstractmethod
    def fit(self, ctx: FitContext) -> None:
        """Train on `ctx.train` (and `ctx.all_interactions` only for oracles)."""

    @abc.abstractmethod
    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """Relevance of each song for each user: float array of shape (len(users), len(songs))."""

    def item_vectors(self, songs: np.ndarray) -> np.ndarray | None:
        """Song vectors (len(songs), D) for downstream tasks, or None if the model has none."""
        return None

    def throughput(self) -> dict[str, float]:
        """Extra throughput figures measured during `fit` (e.g. train_examples_per_s)."""
        return dict(getattr(self, "_throughput", {}))

    def fit_report(self) -> dict[str, Any]:
        """Facts about the last `fit` for the row's ``model.fit`` block (JSON-able: epochs
        run, best epoch, why training stopped, loss history...). Default: the instance's
        ``fit_info`` dict, if it set one; empty otherwise."""
        return dict(getattr(self, "fit_info", None) or {})


@runtime_checkable
class SongFeaturesLike(Protocol):
    """What a model may use of a song-feature set (``ctx.features(kind)``), as
    :class:`recbench.features.SongFeatures` provides it and
    :class:`recbench.testing.FakeSongFeatures` imitates it.

    kind:     "logmel" or "waveform".
    array:    (n_songs, n_steps, n_channels) raw (unstandardised) features.
    lengths:  (n_songs,) int valid steps per song; 0 = no audio.
    mean, std: (n_channels,) float32 standardisation statistics (training songs only).
    window:   steps per model input window.
    """

    kind: str
    array: np.ndarray
    lengths: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    window: int

    @property
    def n_songs(self) -> int: ...

    @property
    def n_channels(self) -> int: ...

    def crops(self, songs: Sequence[int] | np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
        """One random standardised window per song: float32 (len(songs), window, C)."""
        ...

    def song_windows(self, songs: Sequence[int] | np.ndarray, max_windows: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive standardised windows (N, window, C) float32 and their owner (N,)
        positions in `songs`; every song has at least one (zero-padded) window."""
        ...


def _no_factory(kind: str, name: str, **options: Any) -> Component:
    raise ConfigError(f"this FitContext has no component factory: cannot create "
                      f"{kind} {name!r} (pass `create`, e.g. registry.create)")


def _no_features(kind: str, *args: Any) -> SongFeaturesLike:
    raise ConfigError(f"this FitContext has no audio features: cannot provide {kind!r} "
                      "(is the dataset without audio?)")


@dataclass
class FitContext:
    """What a recommender may use to fit.

    dataset:  the loaded dataset (its `counts` include held-out data: read interactions
              through `train` or, for declared oracles only, `all_interactions`).
    split:    the split (song and user index sets; `valid` for early stopping).
    seed:     the cell's seed; `rng` a numpy Generator seeded from it.
    device:   "cpu" or "cuda".
    create:   build another component: `create("loss", "hinge", margin=0.2)`. Always
              callable: the runner passes the registry's; the default raises ConfigError.
    features: `features("logmel")` / `features("waveform")` returns a
              :class:`SongFeaturesLike` (a :class:`recbench.features.SongFeatures`
              standardised on the training songs). Always callable: the runner passes the
              real one; the default raises ConfigError saying there is no audio.
    progress: `progress(iterable, total=None, desc="")` wraps a loop in a progress bar.
    """

    dataset: Dataset
    split: Split
    seed: int
    device: str = "cpu"
    create: Callable[..., Component] = _no_factory
    features: Callable[..., SongFeaturesLike] = _no_features
    progress: Callable[..., Any] = field(default=lambda it, **kw: it)
    oracle: bool = False

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    @property
    def train(self) -> sp.csr_matrix:
        """Training interactions (users x songs counts)."""
        return self.split.train

    @property
    def all_interactions(self) -> sp.csr_matrix:
        """Every interaction, held-out ones included: only for declared oracles."""
        if not self.oracle:
            raise PermissionError(
                "all_interactions is only available to models declaring "
                "uses_test_interactions = True")
        return self.dataset.counts
