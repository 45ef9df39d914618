"""Built-in executors: `local` (in-process, one cell after another)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from recbench import hookimpl
from recbench.components import Executor


class LocalExecutor(Executor):
    """Runs cells one after another in this process."""

    name = "local"
    description = "Run cells one after another in this process (default)"

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        for i, item in enumerate(items):
            yield i, fn(item)


@hookimpl
def recbench_register_executors(register):
    register(LocalExecutor)
