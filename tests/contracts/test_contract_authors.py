"""Contracts of the plugins that reproduce the DCUE authors' released code: the
`dcue-authors-warm` recommender (their in-sample evaluation, a warm oracle) and the
`authors` split (popularity rank mod 10, no seed)."""

from __future__ import annotations

from recbench_builtin.recommenders.dcue import DCUEAuthorsWarm
from recbench_builtin.splits import AuthorsSplit

from recbench.testing import RecommenderContract, SplitterContract


class TestDCUEAuthorsWarm(RecommenderContract):
    component = DCUEAuthorsWarm
    options = {"dim": 8, "user_embedding_dim": 8, "user_hidden": [8], "max_epochs": 3,
               "patience": 2, "steps_per_epoch": 15,
               "backbone_params": {"channels": [8, 8], "pool": 2}}
    min_auc = 0.65  # it trained on the test songs' interactions (0.7 and more here)


class TestAuthorsSplit(SplitterContract):
    component = AuthorsSplit

    def test_deterministic_fingerprint(self, split, dataset):
        """The authors' split has no seed: every seed gives the same split."""
        again = self.make_component().split(dataset, 7)
        assert again.fingerprint == split.fingerprint
        assert self.make_component().split(dataset, 8).fingerprint == split.fingerprint
