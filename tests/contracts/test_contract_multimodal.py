"""`mf-bpr`, `lightgcn`, `lattice` and `dlrm` against `RecommenderContract`.

MF-BPR and LightGCN pin cold songs to zero: on the cold-item world they score exactly at
chance. LATTICE and DLRM reach cold songs through content; their world adds a second
modality (`tokens`, a song's class as topic counts) and a song category (`label`) to the
audible-classes world, so they must also run with those parts.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp
from recbench_builtin.recommenders.dlrm import DLRM
from recbench_builtin.recommenders.lattice import Lattice
from recbench_builtin.recommenders.lightgcn import LightGCN
from recbench_builtin.recommenders.mf_bpr import MFBPR

from recbench.testing import RecommenderContract, worlds

SMALL_BPR = {"batch_size": 64, "max_epochs": 6, "lr": 0.01}


def side_world() -> worlds.World:
    """The audible-classes world with `tokens` (class topics + noise) and `label` codes."""
    w = worlds.audible_classes_world(users=60, songs=120)
    rng = np.random.default_rng(5)
    cls = w.classes
    tokens = rng.poisson(0.3, size=(len(cls), 40)).astype(np.float32)
    for s, c in enumerate(cls):
        tokens[s, c * 10:(c + 1) * 10] += rng.poisson(1.0, 10)
    labels = np.where(rng.random(len(cls)) < 0.7, cls, rng.integers(0, 4, len(cls)))
    ds = replace(w.dataset, modalities={"tokens": sp.csr_matrix(tokens)},
                 song_categories={"label": labels.astype(np.int64)}, _fingerprint=None)
    return replace(w, dataset=ds)


class TestMFBPR(RecommenderContract):
    component = MFBPR
    options = SMALL_BPR
    expected_auc = 0.5  # cold songs score 0: chance, honestly


class TestLightGCN(RecommenderContract):
    component = LightGCN
    options = SMALL_BPR
    expected_auc = 0.5


class TestLattice(RecommenderContract):
    component = Lattice
    options = SMALL_BPR
    min_auc = 0.75  # audio neighbours only (0.82 here)


class TestLatticeTokens(RecommenderContract):
    component = Lattice
    options = {**SMALL_BPR, "cf": "lightgcn", "modalities": ["tokens"]}
    min_auc = 0.75  # token neighbours only, LightGCN backbone (0.81 here)

    def make_world(self) -> worlds.World:
        return side_world()


class TestDLRM(RecommenderContract):
    component = DLRM
    options = {"lr": 0.005, "batch_size": 64, "max_epochs": 12, "patience": 12}
    min_auc = 0.75  # cold songs from audio, tokens and label (0.80 here)

    def make_world(self) -> worlds.World:
        return side_world()
