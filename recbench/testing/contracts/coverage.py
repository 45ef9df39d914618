"""Which contract tests which plugin kind, and which registered plugins have one."""

from __future__ import annotations
from .audio import BackboneContract, LossContract, SamplerContract
from .base import ComponentContract
from .data import DatasetLoaderContract, SplitterContract
from .evaluation import MetricContract, TaskContract
from .executor import ExecutorContract
from .recommender import RecommenderContract


CONTRACTS: dict[str, type[ComponentContract]] = {
    "recommender": RecommenderContract,
    "backbone": BackboneContract,
    "loss": LossContract,
    "sampler": SamplerContract,
    "dataset": DatasetLoaderContract,
    "split": SplitterContract,
    "metric": MetricContract,
    "executor": ExecutorContract,
    "task": TaskContract,
}
"""The contract mixin of each plugin kind."""


def contract_subclasses() -> list[type[ComponentContract]]:
    """Every imported concrete contract test class (a subclass of one of the mixins that
    names its component), for checking that each registered plugin has one."""
    out, todo = [], list(CONTRACTS.values())
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.component is not None or "make_component" in vars(sub):
                out.append(sub)
    return out


def covered(classes: list[type[ComponentContract]] | None = None) -> set[tuple[str, str]]:
    """(kind, name) of the components the given (default: all imported) contract test
    classes test."""
    got = set()
    for cls in classes if classes is not None else contract_subclasses():
        try:
            comp = cls.component_class() if cls.component is not None else None
        except Exception:  # an unknown name: that test class fails on its own
            continue
        if comp is not None:
            got.add((cls.kind, comp.name))
    return got
