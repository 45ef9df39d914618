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
