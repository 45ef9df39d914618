"""Hook specifications: one registration hook per component kind.

A plugin module implements any of these with ``@recbench.hookimpl`` and calls
``register(SomeClass)`` once per component::

    from recbench import hookimpl
    from recbench.components import Recommender

    class MyModel(Recommender):
        name = "my-model"
        ...

    @hookimpl
    def recbench_register_recommenders(register):
        register(MyModel)

A module implementing a hook of any other name (a misspelling) is not loaded: it is
reported like an import failure (`recbench list`, warnings of `recbench run`) with the
closest hook name, and the other plugins still load.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("recbench")

# kind -> hook name; the registry checks that each hook registers classes of its kind.
HOOKS: dict[str, str] = {
    "recommender": "recbench_register_recommenders",
    "backbone": "recbench_register_backbones",
    "loss": "recbench_register_losses",
    "sampler": "recbench_register_samplers",
    "dataset": "recbench_register_datasets",
    "split": "recbench_register_splits",
    "metric": "recbench_register_metrics",
    "executor": "recbench_register_executors",
    "task": "recbench_register_tasks",
}


@hookspec
def recbench_register_recommenders(register):
    """Register recommender classes (subclasses of components.Recommender)."""


@hookspec
def recbench_register_backbones(register):
    """Register audio backbone classes (subclasses of components.Backbone)."""


@hookspec
def recbench_register_losses(register):
    """Register loss classes (subclasses of components.Loss)."""


@hookspec
def recbench_register_samplers(register):
    """Register negative sampler classes (subclasses of components.Sampler)."""


@hookspec
def recbench_register_datasets(register):
    """Register dataset loader classes (subclasses of components.DatasetLoader)."""


@hookspec
def recbench_register_splits(register):
    """Register split classes (subclasses of components.Splitter)."""


@hookspec
def recbench_register_metrics(register):
    """Register metric classes (subclasses of components.Metric)."""


@hookspec
def recbench_register_executors(register):
    """Register executor classes (subclasses of components.Executor)."""


@hookspec
def recbench_register_tasks(register):
    """Register task classes (subclasses of components.Task)."""
