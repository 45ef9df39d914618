"""The executor a run uses: the suite's, or the command line's --executor / --workers /
--threads / --scheduler resolved against that executor's declared parameters."""

from __future__ import annotations

from typing import Any

from ..errors import RecbenchError
from ..registry.params import ParamSet


def executor_choice(suite: Any, registry: Any, *, executor: str | None = None,
                    workers: int | None = None, threads: int | None = None,
                    scheduler: str | None = None) -> tuple[str | None, dict[str, Any]]:
    """(executor name or None for the suite's, its parameters): an option the executor
    does not declare (e.g. --workers for `local`) is a RecbenchError naming it."""
    given = {k: v for k, v in (("scheduler", scheduler), ("workers", workers),
                               ("threads", threads)) if v}
    if given and executor is None:
        executor = suite.executor.name
    if not executor:
        return None, {}
    entry = registry.get("executor", executor, key="--executor")
    known = {p.name for p in entry.cls.params}
    for k in given:
        if k not in known:
            raise RecbenchError(f"--{k} does not apply to executor {executor!r}")
    base = suite.executor.options if executor == suite.executor.name else {}
    return executor, ParamSet(tuple(entry.cls.params)).resolve({**base, **given},
                                                               f"executor.{executor}")
