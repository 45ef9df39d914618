"""Contract tests of the issue-14 plugins: user splits, cold-start and sequential models,
the skip contrastive loss and the sequential task."""

from __future__ import annotations

import numpy as np

import sys
from pathlib import Path

from recbench_builtin.recommenders.coldstart_baselines import (DiversePopularity,
                                                                SegmentPopularity)
from recbench_builtin.recommenders.deezer_coldstart import (DeezerPersonalised,
                                                            DeezerSemiPersonalised)
from recbench_builtin.losses_sequential import SkipContrastiveLoss
from recbench_builtin.metrics_sequential import MRR, HitRate
from recbench_builtin.sequential.baselines import LastItemSimilarity, SequentialPopularity
from recbench_builtin.sequential.sasrec import GRU4Rec, SASRec, SASRecAudio
from recbench_builtin.splits_users import ColdUserKSplit, NextSessionSplit
from recbench_builtin.tasks.sequential import SequentialTask

from recbench.testing import (LossContract, MetricContract, RecommenderContract,
                              SplitterContract, TaskContract, worlds)

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


_SMALL = {"dim": 8, "layers": 1, "max_len": 10, "max_epochs": 2}


class TestSASRec(RecommenderContract):
    component = SASRec
    options = {**_SMALL, "skip_loss": "skip-contrastive"}


class TestGRU4Rec(RecommenderContract):
    component = GRU4Rec
    options = _SMALL


class TestSASRecAudio(RecommenderContract):
    component = SASRecAudio
    options = _SMALL


class TestLastItemSimilarity(RecommenderContract):
    component = LastItemSimilarity


class TestSequentialPopularity(RecommenderContract):
    component = SequentialPopularity


class TestSkipContrastive(LossContract):
    component = SkipContrastiveLoss
    # log(1 + e^-1), and log(1 + e^-1 + e^-2) for two skipped tracks
    known_answers = (([1.0], [[0.0]], 0.31326169),
                     ([1.0], [[0.0, -1.0]], 0.40760596))


class TestHitRate(MetricContract):
    component = HitRate
    reference = staticmethod(lambda labels, popularity, k: labels[:k].sum() / labels.sum())


class TestMRR(MetricContract):
    component = MRR
    reference = staticmethod(lambda labels, popularity, k: 1.0 / (np.argmax(labels) + 1))


class TestSequentialTask(TaskContract):
    component = SequentialTask
    options = {"max_users": 40, "max_steps": 2}
    metrics = (("hr@10", "hr", 10), ("mrr", "mrr", None))

    def make_world(self):
        ds = synth(skip_strength=1.0)
        return worlds.World(dataset=ds, split=NextSessionSplit().split(ds, 0))

    def make_model(self, world):
        return LastItemSimilarity()
