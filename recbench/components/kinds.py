"""The plugin kinds and their base classes."""

from __future__ import annotations

from .audio import Backbone, Loss, Sampler
from .base import Component
from .data import DatasetLoader, Splitter
from .evaluation import Metric, Task
from .executor import Executor
from .recommender import Recommender


KINDS: dict[str, type[Component]] = {
    "recommender": Recommender,
    "backbone": Backbone,
    "loss": Loss,
    "sampler": Sampler,
    "dataset": DatasetLoader,
    "split": Splitter,
    "metric": Metric,
    "executor": Executor,
    "task": Task,
}
