"""The recommender contract."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from recbench.components import CONSUMABLE, Recommender
from recbench.testing import worlds

from .base import ComponentContract


# --------------------------------------------------------------------------- recommender


class RecommenderContract(ComponentContract):
    """A recommender fits on a world, scores (users, songs) with finite numbers in the
    right shape independently of how users are chunked, is reproducible under its seed,
    provides item vectors as it declares, never depends on held-out test interactions
    unless it is a declared oracle, and (optionally) reaches a known AUC.

    Class attributes: `min_auc` (the test AUC must reach it on the world) and
    `expected_auc` (it must equal it to 1e-9), both None to skip;
    `song_chunk_invariant` False when a pair's score may depend on the other songs scored
    with it (chunking over users must never matter); `make_world()` builds the
    world (default: :func:`recbench.testing.worlds.audible_classes_world`, 60 users x 120
    songs).
    """

    kind = "recommender"
    min_auc: ClassVar[float | None] = None
    expected_auc: ClassVar[float | None] = None
    song_chunk_invariant: ClassVar[bool] = True
    seed: ClassVar[int] = 3

    def make_world(self) -> worlds.World:
        return worlds.audible_classes_world(users=60, songs=120)

    def fit(self, world: worlds.World, seed: int | None = None) -> Recommender:
        model = self.make_component()
        model.fit(world.context(self.seed if seed is None else seed,
                                oracle=type(model).uses_test_interactions))
        return model

    @pytest.fixture(scope="class")
    @classmethod
    def world(cls) -> worlds.World:
        return cls().make_world()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, world) -> Recommender:
        return cls().fit(world)

    def test_capabilities_are_consistent(self):
        cls = self.component_class()
        assert set(cls.consumes) <= set(CONSUMABLE), f"unknown consumes: {cls.consumes}"
        assert cls.uses_test_interactions == ("test_interactions" in cls.consumes), (
            "uses_test_interactions and 'test_interactions' in consumes must agree")
        assert isinstance(cls.provides_item_vectors(), bool)

    def test_scores_shape_dtype_finite(self, fitted, world):
        users = world.split.test_users[:7]
        songs = world.split.test_songs
        s = np.asarray(fitted.score(users, songs))
        assert s.shape == (len(users), len(songs))
        assert s.dtype.kind == "f" and np.isfinite(s).all()
        assert np.asarray(fitted.score(users[:0], songs)).shape == (0, len(songs))

    def test_scores_do_not_depend_on_chunking(self, fitted, world):
        users, songs = world.split.test_users, world.split.test_songs
        whole = np.asarray(fitted.score(users, songs))
        k = max(1, len(users) // 3)
        parts = np.vstack([fitted.score(users[:k], songs), fitted.score(users[k:], songs)])
        np.testing.assert_allclose(parts, whole, rtol=1e-6, atol=1e-7)
        if not self.song_chunk_invariant:
            return
        half = len(songs) // 2
        cols = np.hstack([fitted.score(users, songs[:half]), fitted.score(users, songs[half:])])
        np.testing.assert_allclose(cols, whole, rtol=1e-6, atol=1e-7)

    def test_item_vectors_as_declared(self, fitted, world):
        songs = world.split.test_songs[:5]
        vecs = fitted.item_vectors(songs)
        if not type(fitted).provides_item_vectors():
            assert vecs is None
            return
        vecs = np.asarray(vecs)
        assert vecs.ndim == 2 and vecs.shape[0] == len(songs) and vecs.shape[1] >= 1
        assert np.isfinite(vecs).all()

    def test_same_seed_same_scores(self, fitted, world):
        again = self.fit(world)
        users, songs = world.split.test_users, world.split.test_songs
        np.testing.assert_array_equal(again.score(users, songs), fitted.score(users, songs))

    def test_held_out_interactions_are_not_read(self, fitted, world):
        """An honest model fitted on a world whose test interactions are replaced by random
        ones scores identically; an oracle is refused `all_interactions` without leave."""
        model_cls = type(fitted)
        if model_cls.uses_test_interactions:
            with pytest.raises(PermissionError):
                self.make_component().fit(world.context(self.seed, oracle=False))
            return
        poisoned = self.fit(world.with_poisoned_test())
        users, songs = world.split.test_users, world.split.test_songs
        np.testing.assert_array_equal(poisoned.score(users, songs), fitted.score(users, songs))

    def test_known_answer(self, fitted, world):
        if self.min_auc is None and self.expected_auc is None:
            pytest.skip("no known answer declared (min_auc / expected_auc)")
        auc = world.test_auc(fitted)
        if self.expected_auc is not None:
            assert auc == pytest.approx(self.expected_auc, abs=1e-9)
        if self.min_auc is not None:
            assert auc >= self.min_auc, f"test AUC {auc:.4f} < {self.min_auc}"
