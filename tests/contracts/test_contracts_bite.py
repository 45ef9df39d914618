"""The contracts fail components that break them (a contract that passes everything is no
check), and the coverage helper names what a set of contract classes tests."""

from __future__ import annotations

import numpy as np
import pytest

from recbench.components import Recommender, Splitter
from recbench.testing import (RecommenderContract, SplitterContract, covered,
                              random_counts)


class _Leaky(Recommender):
    """Claims to be honest but ranks songs by their listeners in ALL interactions."""

    name = "leaky"
    description = "reads held-out interactions through ctx.dataset.counts"

    def fit(self, ctx):
        self.pop = np.asarray((ctx.dataset.counts > 0).sum(axis=0)).ravel().astype(float)

    def score(self, users, songs):
        return np.tile(self.pop[np.asarray(songs)], (len(users), 1))


def test_a_model_reading_held_out_interactions_fails_the_contract():
    contract = type("T", (RecommenderContract,), {"component": _Leaky})()
    world = contract.make_world()
    fitted = contract.fit(world)
    with pytest.raises(AssertionError):
        contract.test_held_out_interactions_are_not_read(fitted, world)


def test_an_undeclared_oracle_fails_the_capability_check():
    cls = type("Oracle", (_Leaky,), {"consumes": ("interactions", "test_interactions")})
    with pytest.raises(AssertionError):
        type("T", (RecommenderContract,), {"component": cls})().test_capabilities_are_consistent()


class _Overlapping(Splitter):
    """Puts every interaction in both train and test."""

    name = "overlapping"
    description = "broken split"
    protocol = "warm"

    def split(self, dataset, seed):
        from recbench.testing import split_songs

        s = split_songs(dataset, np.arange(dataset.n_songs), np.zeros(0, np.int64),
                        np.arange(dataset.n_songs), seed)
        s.protocol = "warm"
        return s


def test_an_overlapping_split_fails_the_contract():
    contract = type("T", (SplitterContract,), {"component": _Overlapping})()
    ds = random_counts()
    with pytest.raises(AssertionError):
        contract.test_disjoint_and_covering(contract.make_component().split(ds, 0), ds)


def test_covered_names_the_tested_components():
    from test_contract_audio import TestConv1D, TestHinge, TestHingeMean

    assert covered([TestConv1D, TestHinge, TestHingeMean]) == {("backbone", "conv1d"),
                                                               ("loss", "hinge")}
