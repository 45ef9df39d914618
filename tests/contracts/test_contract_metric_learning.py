"""The metric-learning recommenders against `recbench.testing.RecommenderContract`.

CML is an interactions-only (warm) model: its world is the audible-classes world's plays
under the warm split, where every evaluated song has training interactions. The contract's
known-answer AUC does not mask a user's training songs (a warm model ranks them first, so
it sits near chance here); the masked known answer is in tests/test_cml.py (> 0.8).
"""

from __future__ import annotations

from recbench.testing import RecommenderContract, worlds
from recbench_builtin.recommenders.cml import CML
from recbench_builtin.recommenders.hcml import HCML
from recbench_builtin.recommenders.siamese import SiameseAudio

from test_contract_recommenders import SMALL_DCUE
from recbench_builtin.splits import WarmSplit


def warm_classes_world() -> worlds.World:
    """audible_classes_world (60 users x 120 songs) re-split warm."""
    base = worlds.audible_classes_world(users=60, songs=120)
    split = WarmSplit().split(base.dataset, 0)
    return worlds.World(base.dataset, split, base.features, base.classes)


class TestCML(RecommenderContract):
    component = CML
    options = {"dim": 8, "batch_size": 32, "max_epochs": 6, "patience": 6}
    min_auc = None

    def make_world(self) -> worlds.World:
        return warm_classes_world()


class TestCMLTwoStage(TestCML):
    options = {"dim": 8, "batch_size": 32, "max_epochs": 6, "patience": 6,
               "sampler": "two-stage", "cov_weight": 1.0,
               "sampler_params": {"pool_size": 20, "first_stage": "popularity"}}


class TestHCML(TestCML):
    component = HCML
    options = {"dim": 8, "batch_size": 32, "max_epochs": 3, "patience": 3, "history": 4,
               "memory_slots": 3}


class TestSiameseAudio(RecommenderContract):
    component = SiameseAudio
    options = {**SMALL_DCUE, "history_factors": 4, "sampler": "popularity"}
    min_auc = 0.6
