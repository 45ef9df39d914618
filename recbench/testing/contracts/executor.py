"""The executor contract."""

from __future__ import annotations

import pytest

from .base import ComponentContract


# --------------------------------------------------------------------------- executor


def _square(x: int) -> tuple[int, int]:
    return x, x * x


class ExecutorContract(ComponentContract):
    """`map(fn, items)` yields every position exactly once with fn's result for that item
    (in any order), handles no items, and `close()` may be called after."""

    kind = "executor"

    @pytest.fixture(scope="class")
    @classmethod
    def executor(cls):
        ex = cls().make_component()
        yield ex
        ex.close()

    def test_every_index_once_results_kept(self, executor):
        items = [3, 1, 4, 1, 5, 9, 2]
        out = list(executor.map(_square, items))
        assert sorted(i for i, _ in out) == list(range(len(items)))
        assert {i: r for i, r in out} == {i: (x, x * x) for i, x in enumerate(items)}

    def test_no_items(self, executor):
        assert list(executor.map(_square, [])) == []
