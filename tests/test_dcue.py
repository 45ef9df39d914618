"""`dcue` and `dcue-item-index` on a tiny synthetic case where the audio decides preference.

Songs belong to one of 4 classes; a song's (fake log-mel) features carry its class as a
raised band of channels, and each user mostly plays songs of one class. A content model
can therefore rank cold songs well above chance; the ceiling is about 0.8 (a user also
plays other classes' songs at a low rate).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from recbench_builtin.recommenders.dcue import DCUE, DCUEItemIndex

from recbench.components import FitContext
from recbench.data import Dataset, Split
from recbench.features import SongFeatures
from recbench.metrics import roc_auc_per_user
from recbench.registry import build_registry
from recbench.testing import audible_classes_world

SMALL = {"dim": 16, "user_embedding_dim": 16, "user_hidden": [16],
         "backbone_params": {"channels": [16, 16], "pool": 2}, "max_epochs": 8, "patience": 3}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP spin-waits
    that make each step many times slower under load (and keeps results reproducible)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def registry():
    return build_registry()


@pytest.fixture(scope="module")
def case():
    """(dataset, split, features): 120 users x 240 songs, 16 channels, 64 steps, window 16."""
    w = audible_classes_world()
    return w.dataset, w.split, w.features


def _ctx(case, registry, seed=0, oracle=False, split=None):
    ds, sp_, feats = case
    return FitContext(ds, split if split is not None else sp_, seed, create=registry.create,
                      features=lambda kind, *a: feats, oracle=oracle)


def _test_auc(model, split) -> float:
    users = split.test_users
    labels = split.test[users][:, split.test_songs].toarray() > 0
    return float(np.nanmean(roc_auc_per_user(model.score(users, split.test_songs), labels)))


@pytest.fixture(scope="module")
def fitted(case, registry):
    model = DCUE(**SMALL)
    model.fit(_ctx(case, registry))
    return model


def test_dcue_learns_audible_preference_on_cold_songs(fitted, case):
    auc = _test_auc(fitted, case[1])
    assert auc > 0.7, auc
    info = fitted.fit_info
    assert info["best_valid_auc"] > 0.7
    assert 1 <= info["best_epoch"] <= info["epochs"] <= SMALL["max_epochs"]
    tp = fitted.throughput()
    assert tp["train_examples_per_s"] > 0 and tp["songs_embedded_per_s"] > 0


def test_training_decreases_the_loss(fitted):
    losses = [h["loss"] for h in fitted.history]
    assert losses[-1] < 0.8 * losses[0]


def test_scores_are_cosines_of_user_and_mean_window_vectors(fitted, case):
    _, split, feats = case
    users = np.array([0, 5, 17, 42])
    songs = split.test_songs[:7]
    with torch.no_grad():
        u = fitted._user_net(torch.from_numpy(users)).numpy()
        windows, owner = feats.song_windows(songs)
        out = fitted._item_net(torch.from_numpy(windows)).numpy()
    v = np.stack([out[owner == j].mean(axis=0) for j in range(len(songs))])
    np.testing.assert_allclose(fitted.item_vectors(songs), v, rtol=1e-4, atol=1e-5)
    ref = (u / np.linalg.norm(u, axis=1, keepdims=True)) @ (
        v / np.linalg.norm(v, axis=1, keepdims=True)).T
    got = fitted.score(users, songs)
    assert got.shape == (4, 7) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_same_seed_gives_identical_scores(case, registry):
    kw = dict(SMALL, max_epochs=2, steps_per_epoch=20)
    a, b = DCUE(**kw), DCUE(**kw)
    a.fit(_ctx(case, registry, seed=3))
    b.fit(_ctx(case, registry, seed=3))
    split = case[1]
    np.testing.assert_array_equal(a.score(split.test_users, split.test_songs),
                                  b.score(split.test_users, split.test_songs))


def test_early_stopping_never_reads_the_test_interactions(case, registry):
    split = case[1]

    class Guarded(Split):
        def __getattribute__(self, name):
            if name == "test":
                raise AssertionError("fit read split.test")
            return super().__getattribute__(name)

    guarded = Guarded(**{f: getattr(split, f) for f in split.__dataclass_fields__})
    model = DCUE(**dict(SMALL, max_epochs=2, steps_per_epoch=10))
    model.fit(_ctx(case, registry, split=guarded))
    assert "valid_auc" in model.history[0]


@pytest.mark.parametrize("options", [
    {"shared_negatives": True, "amp": True},
    {"loss": "mse", "sampler": "popularity", "optimizer": "adam", "lr": 1e-3},
    {"sampler": "two-stage", "sampler_params": {"pool_size": 40}, "user_lr": 0.5},
    {"backbone": "mel-stats", "backbone_params": {}, "loss": "softmax",
     "loss_params": {"temperature": 0.1}},
])
def test_options_train(case, registry, options):
    model = DCUE(**{**SMALL, "max_epochs": 2, "steps_per_epoch": 10, **options})
    model.fit(_ctx(case, registry))
    assert all(np.isfinite(h["loss"]) for h in model.history)
    assert np.isfinite(model.score(case[1].test_users[:5], case[1].test_songs)).all()


def test_device_crops_equal_song_features_crops(registry):
    rng = np.random.default_rng(5)
    arr = rng.normal(size=(12, 40, 6)).astype(np.float16)
    lengths = np.array([40, 3, 16, 0, 25, 40, 17, 9, 40, 31, 16, 1])
    arr[np.arange(40)[None, :] >= lengths[:, None]] = 0
    feats = SongFeatures("logmel", arr, lengths, arr.astype(np.float32).mean(axis=(0, 1)),
                         arr.astype(np.float32).std(axis=(0, 1)) + 0.1, window=16)
    ds = Dataset("d", sp.csr_matrix(np.ones((3, 12), np.float32)), np.arange(3).astype(str),
                 np.arange(12).astype(str))
    model = DCUE(**dict(SMALL, features_on_device="yes"))
    model._device = torch.device("cpu")
    model._build_items(FitContext(ds, None, 0, create=registry.create,
                                  features=lambda kind, *a: feats))
    songs = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 1, 3])
    got = model._item_input(songs, np.random.default_rng(8)).numpy()
    want = feats.crops(songs, np.random.default_rng(8))
    assert (got == 0).sum() == (want == 0).sum() > 0  # the same zero padding
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # same draws, 1-ulp maths
    model._release()
    assert model._dev is None


def test_time_budget_stops_training(case, registry):
    model = DCUE(**dict(SMALL, max_minutes=0.0))
    model.fit(_ctx(case, registry))
    assert model.fit_info["stopped_by"] == "max_minutes" and model.fit_info["steps"] == 1


def test_item_index_is_an_oracle_that_memorises_test_interactions(case, registry):
    assert DCUEItemIndex.uses_test_interactions
    assert "test_interactions" in DCUEItemIndex.consumes
    kw = {"dim": 16, "user_embedding_dim": 16, "user_hidden": [16], "max_epochs": 15,
          "patience": 3, "optimizer": "adam", "lr": 0.01}
    with pytest.raises(PermissionError):
        DCUEItemIndex(**kw).fit(_ctx(case, registry, oracle=False))
    model = DCUEItemIndex(**kw)
    model.fit(_ctx(case, registry, oracle=True))
    assert _test_auc(model, case[1]) > 0.8
    assert model.item_vectors(np.arange(5)).shape == (5, 16)


def test_registered_with_declared_consumption(registry):
    assert registry.get("recommender", "dcue").cls is DCUE
    assert registry.get("recommender", "dcue-item-index").cls is DCUEItemIndex
    assert DCUE.consumes == ("interactions", "audio") and not DCUE.uses_test_interactions


def test_authors_user_tower_shapes_and_keras_init(case, registry):
    """user_embedding_dim 300, user_hidden [300], dim 256, user_init keras: the authors'
    Embedding(300) -> ReLU -> Dense(300) -> ReLU -> Dense(256), Keras initial weights."""
    from recbench_builtin.recommenders.dcue_model import _mlp_tower

    torch.manual_seed(0)
    net = _mlp_tower(500, 300, [300], 256, torch.nn, "keras")
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Embedding", "ReLU", "Linear", "ReLU", "Linear"]
    assert net[0].weight.shape == (500, 300)
    assert net[2].weight.shape == (300, 300) and net[4].weight.shape == (256, 300)
    assert net[0].weight.abs().max() <= 0.05  # U(-0.05, 0.05), not N(0, 1)
    bound = (6 / (300 + 256)) ** 0.5  # glorot_uniform of the last layer
    assert net[4].weight.abs().max() <= bound and net[4].weight.abs().max() > 0.9 * bound
    assert not net[2].bias.any() and not net[4].bias.any()
    assert sum(p.numel() for p in net.parameters()) == 500 * 300 + 300 * 300 + 300 + 300 * 256 + 256
    # the default stays PyTorch's: N(0, 1) embedding
    assert _mlp_tower(500, 300, [300], 256, torch.nn)[0].weight.abs().max() > 1.0
    # and the model trains with it
    ds, split, _ = case
    m = registry.create("recommender", "dcue", **{**SMALL, "user_embedding_dim": 30,
                                                   "user_hidden": [30], "user_init": "keras",
                                                   "max_epochs": 1})
    m.fit(_ctx(case, registry))
    assert np.isfinite(m.score(split.test_users[:3], split.test_songs)).all()


def test_authors_warm_variant_trains_on_the_songs_it_is_scored_on(case, registry):
    """dcue-authors-warm: the authors' released evaluation (scores songs it trained on) as
    a declared warm oracle; its training pairs include the test songs' interactions."""
    from recbench_builtin.recommenders.dcue import DCUEAuthorsWarm

    assert registry.get("recommender", "dcue-authors-warm").cls is DCUEAuthorsWarm
    assert DCUEAuthorsWarm.uses_test_interactions and not DCUE.uses_test_interactions
    assert "test_interactions" in DCUEAuthorsWarm.consumes
    with pytest.raises(PermissionError):
        DCUEAuthorsWarm(**SMALL).fit(_ctx(case, registry, oracle=False))
    _, split, _ = case
    warm = DCUEAuthorsWarm(**SMALL)
    warm.fit(_ctx(case, registry, oracle=True))
    cold = DCUE(**SMALL)
    cold.fit(_ctx(case, registry))
    n_test_pairs = int((split.test[:, split.test_songs] > 0).sum())
    n_valid_pairs = int((split.valid[:, split.valid_songs] > 0).sum())
    assert warm.fit_info["train_pairs"] == cold.fit_info["train_pairs"] + n_test_pairs \
        + n_valid_pairs
