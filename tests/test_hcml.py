"""Hierarchical CML (HLR-E): its distance against a hand-written formula, the fast ranking path
against the training path, and a fit on a warm low-rank world."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recbench.testing import worlds
from recbench_builtin.recommenders.hcml import HCML
from recbench_builtin.splits import WarmSplit

from test_cml import warm_auc, warm_world


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    world = warm_world()
    model = HCML(dim=8, batch_size=32, max_epochs=12, patience=12, history=4, memory_slots=3,
                 score_block=7)
    model.fit(world.context(0))
    return world, model


def _np_distance(model, u: int, i: int) -> float:
    """d = ||u + r_ui - v_i||^2, r_ui = sum_x alpha_x r_xi over the references x (the user
    point, then its history songs j != i), r_xi = softmax((x * v_i) K^T) M and
    alpha = softmax_x(<r_xi, u>), written out with numpy for one pair."""
    keys, mem = (t.detach().numpy().astype(float) for t in model._mem)
    U, V = (t.detach().numpy().astype(float) for t in (model._users, model._items))
    hist = model._hist.numpy()

    def rel(q):
        a = np.exp(q @ keys.T - (q @ keys.T).max())
        return (a / a.sum()) @ mem

    refs = [U[u]] + [V[j] for j in hist[u] if j >= 0 and j != i]
    rels = np.array([rel(x * V[i]) for x in refs])
    w = rels @ U[u]
    alpha = np.exp(w - w.max()) / np.exp(w - w.max()).sum()
    return float(((U[u] + alpha @ rels - V[i]) ** 2).sum())


def test_distance_matches_the_formula(fitted):
    _, model = fitted
    hist = model._hist.numpy()
    u = 5
    inside = int(hist[u][hist[u] >= 0][0])  # a history song: left out of its own refs
    for i in (11, inside):
        got = model.score(np.array([u]), np.array([i]))[0, 0]
        assert got == pytest.approx(-_np_distance(model, u, i), rel=1e-4)


def test_ranking_path_equals_training_path(fitted):
    world, model = fitted
    users, songs = np.arange(20), world.split.test_songs
    with torch.no_grad():
        slow = -model._pair_distances(torch.from_numpy(users),
                                      torch.from_numpy(songs)[None, :].expand(20, -1))
    np.testing.assert_allclose(model.score(users, songs), slow.numpy(), rtol=1e-5, atol=1e-6)


def test_history_holds_training_songs_only(fitted):
    world, model = fitted
    train = world.split.train.tocsr()
    hist = model._hist.numpy()
    for u in range(hist.shape[0]):
        played = set(train.indices[train.indptr[u]:train.indptr[u + 1]])
        assert set(hist[u][hist[u] >= 0]) <= played


def test_hcml_learns_and_keeps_points_in_the_ball(fitted):
    world, model = fitted
    assert warm_auc(world, model) > 0.75
    assert np.linalg.norm(model._v_np, axis=1).max() <= 1.0 + 1e-5


def test_history_zero_is_lrml():
    """history = 0: the user reference only, alpha = 1: d = ||u + r_ui - v_i||^2 with
    r_ui = softmax((u * v_i) K^T) M (LRML)."""
    torch.set_num_threads(1)
    base = worlds.low_rank_world(seed=1, users=40, songs=30)
    world = worlds.World(base.dataset, WarmSplit().split(base.dataset, 1), None)
    model = HCML(dim=4, batch_size=16, max_epochs=1, history=0, memory_slots=2)
    model.fit(world.context(0))
    ku, mu = (t.detach().numpy().astype(float) for t in model._mem)
    U, V = (t.detach().numpy().astype(float) for t in (model._users, model._items))
    q = U[2] * V[7] @ ku.T
    a = np.exp(q - q.max()) / np.exp(q - q.max()).sum()
    d = ((U[2] + a @ mu - V[7]) ** 2).sum()
    assert model.score(np.array([2]), np.array([7]))[0, 0] == pytest.approx(-d, rel=1e-4)
