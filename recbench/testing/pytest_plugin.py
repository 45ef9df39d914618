"""pytest fixtures for plugin authors, loaded through the ``pytest11`` entry point.

- ``recbench_registry``: the installed plugins' registry (session scoped, built once).
- ``audible_world``: :func:`recbench.testing.audible_classes_world` (60 users x 120 songs).
- ``fake_song_features``: random :class:`recbench.testing.FakeSongFeatures` (10 songs,
  32 steps, 8 channels, window 8; song 3 without audio).
- ``make_fit_context``: ``make_fit_context(dataset, split, seed=0, features=None,
  oracle=False)`` builds a FitContext with the session registry's ``create``.
"""

from __future__ import annotations

import numpy as np
import pytest

from recbench.testing.fakes import FakeSongFeatures, fit_context
from recbench.testing.worlds import audible_classes_world


@pytest.fixture(scope="session")
def recbench_registry():
    from recbench.registry import default_registry

    return default_registry()


@pytest.fixture(scope="session")
def audible_world():
    return audible_classes_world(users=60, songs=120)


@pytest.fixture
def fake_song_features():
    rng = np.random.default_rng(0)
    lengths = np.full(10, 32)
    lengths[3] = 0
    return FakeSongFeatures(rng.normal(size=(10, 32, 8)), lengths, window=8)


@pytest.fixture
def make_fit_context(recbench_registry):
    def make(dataset, split, seed=0, features=None, oracle=False):
        return fit_context(dataset, split, seed, features=features,
                           registry=recbench_registry, oracle=oracle)

    return make
