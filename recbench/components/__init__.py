"""The typed contract of every plugin kind, documented in one place.

Every component is a class with a unique `name`, a one-line `description` and declared
`params` (see :mod:`recbench.params`). The registry instantiates it with the resolved
parameter values, available as ``self.options``. Plugins register classes through one
hook per kind (see :mod:`recbench.hookspecs`).

Kinds and what they do:

========== ===========================================================================
recommender  fit on a split, score (user, song) pairs, optionally embed songs
backbone     build a torch module mapping audio windows (B, T, C) to vectors (B, D)
loss         a training loss: ranking (pos vs negs) or regression (pred vs target)
sampler      draw negative songs for a batch of users
dataset      load a :class:`recbench.data.Dataset`
split        split a dataset into train / valid / test (:class:`recbench.data.Split`)
metric       per-user values from a block of scores and labels, reduced to one number
executor     run fit units (possibly in parallel or on a cluster), yield results as they end
task         turn (dataset, split, model, metrics) into one result row's numbers
========== ===========================================================================
"""

from __future__ import annotations

from .base import Component
from .recommender import CONSUMABLE, Recommender, SongFeaturesLike, FitContext
from .audio import Backbone, Loss, Sampler
from .data import LoadContext, DatasetLoader, Splitter
from .evaluation import (MetricInput, Metric, CellContext, MetricInfo, TaskOutput,
                         DiagnosticsTable, DiagnosticsChart, Task)
from .executor import Executor
from .kinds import KINDS

__all__ = ["Backbone", "CONSUMABLE", "CellContext", "Component", "DatasetLoader",
           "DiagnosticsChart", "DiagnosticsTable", "Executor", "FitContext", "KINDS",
           "LoadContext", "Loss", "Metric", "MetricInfo", "MetricInput", "Recommender", "Sampler",
           "SongFeaturesLike", "Splitter", "Task", "TaskOutput"]
