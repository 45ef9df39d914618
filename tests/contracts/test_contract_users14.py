"""Contract tests of the issue-14 plugins: user splits, cold-start and sequential models,
the skip contrastive loss and the sequential task."""

from __future__ import annotations

import sys
from pathlib import Path

from recbench_builtin.recommenders.coldstart_baselines import (DiversePopularity,
                                                                SegmentPopularity)
from recbench_builtin.recommenders.deezer_coldstart import (DeezerPersonalised,
                                                            DeezerSemiPersonalised)
from recbench_builtin.splits_users import ColdUserKSplit, NextSessionSplit

from recbench.testing import RecommenderContract, SplitterContract

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from users14_data import synth  # noqa: E402


class TestColdUserK(SplitterContract):
    component = ColdUserKSplit
    options = {"revealed": 2}


class TestColdUserKZero(SplitterContract):
    component = ColdUserKSplit

    def make_dataset(self):
        return synth(skip_strength=1.0)


class TestNextSession(SplitterContract):
    component = NextSessionSplit

    def make_dataset(self):
        return synth(skip_strength=1.0)

    def test_deterministic_fingerprint(self, split, dataset):
        """A temporal split has no randomness: every seed gives the same split (the
        contract's "another seed, another split" does not apply)."""
        assert self.make_component().split(dataset, 8).fingerprint == split.fingerprint
        other = self.make_component(test_sessions=2).split(dataset, 7)
        assert other.fingerprint != split.fingerprint


class TestDeezerSemi(RecommenderContract):
    component = DeezerSemiPersonalised
    options = {"factors": 8, "clusters": 4, "max_epochs": 5, "revealed": 3}


class TestDeezerPersonal(RecommenderContract):
    component = DeezerPersonalised
    options = {"factors": 8, "max_epochs": 5, "revealed": 3}


class TestSegmentPopularity(RecommenderContract):
    component = SegmentPopularity


class TestDiversePopularity(RecommenderContract):
    component = DiversePopularity
    options = {"depth": 30}
