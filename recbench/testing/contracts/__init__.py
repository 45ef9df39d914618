"""Contract tests: one mixin per plugin kind. Subclass one in a pytest test class, say
which component to test, and pytest runs every check on it::

    from recbench.testing import RecommenderContract

    class TestItemKNN(RecommenderContract):
        component = ItemKNN            # the class, or its registered name
        options = {"k": 10}            # parameters (default: the declared defaults)
        min_auc = 0.6                  # known answer on the audible-classes world

Each mixin needs one factory, ``make_component()``, which by default instantiates
`component` with `options` (a registered name is created through the installed plugins'
registry); override it when building the component takes more. Every check is a small
known-answer or invariant test that runs in seconds on one thread.
"""

from __future__ import annotations

from .base import PROTOCOLS, ComponentContract
from .recommender import RecommenderContract
from .audio import BackboneContract, LossContract, SamplerContract
from .evaluation import MetricContract, TaskContract
from .data import SplitterContract, DatasetLoaderContract
from .executor import ExecutorContract
from .coverage import CONTRACTS, contract_subclasses, covered

__all__ = ["BackboneContract", "CONTRACTS", "ComponentContract", "DatasetLoaderContract",
           "ExecutorContract", "LossContract", "MetricContract", "PROTOCOLS",
           "RecommenderContract", "SamplerContract", "SplitterContract", "TaskContract",
           "contract_subclasses", "covered"]
