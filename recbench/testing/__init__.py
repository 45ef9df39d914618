"""Test helpers for recbench plugins: contract tests, known-answer worlds and fakes.

Plugin authors subclass a contract in their own tests (see
:mod:`recbench.testing.contracts`)::

    from recbench.testing import RecommenderContract

    class TestMyModel(RecommenderContract):
        component = MyModel
        options = {"factors": 8}
        min_auc = 0.6

The fixtures of :mod:`recbench.testing.pytest_plugin` (``recbench_registry``,
``audible_world``, ``fake_song_features``, ``make_fit_context``) are available in every
test session once recbench is installed (pytest11 entry point).

Importing this package imports pytest.
"""

import pytest

# Detailed assertion messages in plugin authors' test runs (before the import below).
pytest.register_assert_rewrite("recbench.testing.contracts")

from recbench.testing.contracts import (CONTRACTS, BackboneContract, ComponentContract,
                                        DatasetLoaderContract, ExecutorContract,
                                        LossContract, MetricContract, RecommenderContract,
                                        SamplerContract, SplitterContract, TaskContract,
                                        contract_subclasses, covered)
from recbench.testing.fakes import FakeSongFeatures, fit_context
from recbench.testing.worlds import (World, audible_classes_world, low_rank_world,
                                     random_audio_world, random_counts, split_songs)

__all__ = [
    "CONTRACTS", "BackboneContract", "ComponentContract", "DatasetLoaderContract",
    "ExecutorContract", "LossContract", "MetricContract", "RecommenderContract",
    "SamplerContract", "SplitterContract", "TaskContract", "contract_subclasses", "covered",
    "FakeSongFeatures", "fit_context",
    "World", "audible_classes_world", "low_rank_world", "random_audio_world",
    "random_counts", "split_songs",
]
