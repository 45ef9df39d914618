"""The data side's contracts: LoadContext, DatasetLoader and Splitter."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from .base import Component

if TYPE_CHECKING:  # pragma: no cover
    from ..io.dataset import Dataset, Split


# --------------------------------------------------------------------------- data


@dataclass
class LoadContext:
    """What a dataset loader gets: a cache folder, a row limit for smoke runs, strictness,
    the suite file (for relative paths) and a progress wrapper."""

    cache_dir: str
    limit: int | None = None
    strict: bool = False
    suite_dir: str = "."
    progress: Callable[..., Any] = field(default=lambda it, **kw: it)


class DatasetLoader(Component, abc.ABC):
    """A dataset plugin. `validate()` checks what can be checked before any work
    (data roots exist…) and raises RecbenchError; `load(ctx)` returns the Dataset."""

    kind = "dataset"
    synthetic: ClassVar[bool] = False

    def validate(self, suite_dir: str | None = None) -> None:
        """Raise :class:`recbench.errors.RecbenchError` if the data cannot be loaded.

        `suite_dir` is the suite file's folder: relative paths are resolved against it."""

    @abc.abstractmethod
    def load(self, ctx: LoadContext) -> Dataset:
        """Load (or generate) the dataset."""


class Splitter(Component, abc.ABC):
    """A split plugin: deterministic under `seed`."""

    kind = "split"
    protocol: ClassVar[str] = ""

    @abc.abstractmethod
    def split(self, dataset: Dataset, seed: int) -> Split:
        """Split the dataset's interactions and songs."""
