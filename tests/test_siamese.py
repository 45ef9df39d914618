"""Siamese audio metric learning: the user description (history + demographics) and a fit
whose user tower reads it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from recbench.testing import worlds
from recbench_builtin.recommenders.siamese import SiameseAudio, user_descriptions


def test_user_descriptions_history_then_demographics():
    w = worlds.audible_classes_world(users=30, songs=40)
    rng = np.random.default_rng(0)
    feats = rng.normal(5.0, 3.0, size=(30, 2))
    codes = np.array([0, 1, -1] * 10)
    ds = replace(w.dataset, user_features=feats, user_feature_names=["a", "b"],
                 user_categories={"gender": codes})
    ctx = replace(w, dataset=ds).context(0)
    x = user_descriptions(ctx, 3, True, 0)
    assert x.shape == (30, 3 + 2 + 3)
    np.testing.assert_allclose(x[:, 3:5].mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x[:, 3:5].std(0), 1.0, atol=1e-5)
    # one-hot with column 0 for unknown (-1): user 0 -> code 0 -> column 1
    np.testing.assert_array_equal(x[:3, 5:], [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    assert user_descriptions(ctx, 3, False, 0).shape == (30, 3)
    # history factors come from the training plays only: poisoning the test part is inert
    poisoned = replace(w.with_poisoned_test(), dataset=replace(
        w.with_poisoned_test().dataset, user_features=feats, user_categories={"gender": codes}))
    np.testing.assert_array_equal(user_descriptions(poisoned.context(0), 3, True, 0), x)


def test_fit_uses_the_feature_tower_and_ranks_users_for_new_songs():
    torch.set_num_threads(1)
    w = worlds.audible_classes_world(users=60, songs=120)
    model = SiameseAudio(dim=8, user_hidden=[8], max_epochs=3, patience=3, steps_per_epoch=15,
                         history_factors=4, sampler="popularity",
                         backbone_params={"channels": [8, 8], "pool": 2})
    model.fit(w.context(0))
    assert type(model._user_net).__name__ == "FeatureTower"
    assert model.fit_report()["user_inputs"] == 4
    # a new song's listeners are ranked above its non-listeners (per-song AUC)
    from recbench.metrics import roc_auc_per_user

    users, songs = w.split.train_users, w.split.test_songs
    labels = (w.split.test[users][:, songs] > 0).toarray().T
    keep = labels.any(1)
    auc = np.nanmean(roc_auc_per_user(model.score(users, songs).T[keep], labels[keep]))
    assert auc > 0.6


def _events(user, song, skipped):
    from recbench.data import Events

    n = len(user)
    return Events(user=np.asarray(user, np.int64), song=np.asarray(song, np.int64),
                  timestamp=np.arange(n, dtype=float), session=np.zeros(n, np.int64),
                  skipped=np.asarray(skipped, bool))


def test_skipped_dislikes_by_hand():
    import scipy.sparse as sp

    from recbench_builtin.recommenders.siamese import skipped_dislikes

    # 3 users x 5 songs; training songs 0-3 (song 4 is a new release)
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 2, 0, 0, 0], [0, 0, 0, 0, 0]],
                                   np.float32))
    ev = _events(user=[0, 0, 0, 0, 1, 1, 1, 2],
                 song=[1, 2, 1, 0, 4, 1, 3, 2],
                 skipped=[1, 1, 1, 1, 1, 1, 0, 0])
    indptr, songs = skipped_dislikes(ev, train, np.array([0, 1, 2, 3]), 3)
    # user 0: skipped 1, 2 (1 twice) and 0, but played 0 in training -> {1, 2}
    # user 1: skipped 4 (not a training song) and 1 (played in training) -> {}
    # user 2: no skip -> {}
    np.testing.assert_array_equal(indptr, [0, 2, 2, 2])
    np.testing.assert_array_equal(songs, [1, 2])


def test_skip_sampler_draws_each_users_skips_else_the_fallback():
    from recbench_builtin.recommenders.siamese import SkipSampler

    class Fallback:
        def sample(self, users, n, rng, scorer=None):
            return np.full((len(users), n), 99, dtype=np.int64)

    s = SkipSampler(np.array([0, 2, 2, 3]), np.array([5, 7, 8]), Fallback())
    out = s.sample(np.array([0, 1, 2, 0]), 400, np.random.default_rng(0))
    assert set(out[0]) == {5, 7} and set(out[3]) == {5, 7}
    assert abs((out[0] == 5).mean() - 0.5) < 0.1  # uniform over the user's skips
    np.testing.assert_array_equal(out[1], 99)
    np.testing.assert_array_equal(out[2], 8)


def test_skipped_dislikes_fit_and_bad_config():
    import pytest

    from recbench.errors import ConfigError, DataError

    torch.set_num_threads(1)
    w = worlds.audible_classes_world(users=40, songs=60)
    opts = dict(dim=8, user_hidden=[8], max_epochs=1, patience=1, steps_per_epoch=3,
                history_factors=4, negatives=2, dislikes="skipped",
                backbone_params={"channels": [8, 8], "pool": 2})
    with pytest.raises(DataError, match="needs listening events"):
        SiameseAudio(**opts).fit(w.context(0))
    rng = np.random.default_rng(0)
    ev = _events(rng.integers(40, size=300), rng.choice(w.split.train_songs, 300),
                 rng.random(300) < 0.5)
    order = np.lexsort((ev.timestamp, ev.user))
    ev = _events(ev.user[order], ev.song[order], ev.skipped[order])
    wev = replace(w, dataset=replace(w.dataset, events=ev))
    with pytest.raises(ConfigError, match="shared_negatives"):
        SiameseAudio(**opts, shared_negatives=True).fit(wev.context(0))
    model = SiameseAudio(**opts)
    model.fit(wev.context(0))
    rep = model.fit_report()
    assert rep["dislikes"] == "skipped" and 0 < rep["users_with_skips"] <= 40
