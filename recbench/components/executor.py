"""The executor contract: how fit units are run (in process, in parallel, on a cluster)."""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar, Iterable, Iterator

from .base import Component


# --------------------------------------------------------------------------- execution


class Executor(Component, abc.ABC):
    """Runs the runner's work items. `map(fn, items)` yields (index, result) pairs as items
    finish, in any order; `fn` never raises (the runner catches errors inside it). An item
    is one fit unit (a model and seed: fitted once, then evaluated by every task that
    applies), so the items are independent: run them anywhere, in any order.
    `close()` frees resources."""

    kind = "executor"
    in_process: ClassVar[bool] = False
    """True when cells run in the calling process, one after another: the runner then
    shows per-cell progress bars and lets the first cell extract the features itself
    (a parallel executor gets them extracted once, through `map`, before the cells)."""

    @abc.abstractmethod
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        """Apply `fn` to every item; yield (position, result) as each finishes."""

    def close(self) -> None:
        """Release workers."""
