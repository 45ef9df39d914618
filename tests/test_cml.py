"""CML building blocks against closed forms and hand-computed cases, and the model's fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recbench.registry import build_registry
from recbench.testing import worlds
from recbench_builtin.recommenders import _metric as M
from recbench_builtin.recommenders.cml import CML
from recbench_builtin.splits import WarmSplit


def test_sq_distances_paired_batched_and_all_pairs():
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), rng.normal(size=(4, 5, 3))
    e = rng.normal(size=(6, 3))
    ta, tb, tc, te = (torch.tensor(x) for x in (a, b, c, e))
    np.testing.assert_allclose(M.sq_distances(ta, tb).numpy(), ((a - b) ** 2).sum(1))
    np.testing.assert_allclose(M.sq_distances(ta, tc).numpy(),
                               ((a[:, None] - c) ** 2).sum(-1))
    brute = ((a[:, None, :] - e[None]) ** 2).sum(-1)
    np.testing.assert_allclose(M.sq_distances(ta, te).numpy(), brute, atol=1e-12)
    # a point's distance to itself is 0 (3-4-5 triangle for the others)
    p = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(M.sq_distances(p, p).numpy(), [0.0, 0.0])
    np.testing.assert_allclose(M.sq_distances(p[:1], p).numpy(), [[0.0, 25.0]])


def test_cml_hinge_hand_computed():
    d_pos = torch.tensor([0.2, 1.0])
    d_neg = torch.tensor([[0.1, 0.5, 1.0], [3.0, 3.0, 3.0]])
    # row 0: 0.5 + 0.2 - [0.1, 0.5, 1.0] = [0.6, 0.2, -0.3] -> 2 impostors, sum 0.8
    # row 1: 0.5 + 1.0 - 3.0 < 0 everywhere -> 0
    plain = M.cml_hinge(d_pos, d_neg, 0.5, 30, rank_weight=False)
    assert float(plain) == pytest.approx((0.8 + 0.0) / 2)
    hardest = M.cml_hinge(d_pos, d_neg, 0.5, 30, rank_weight=False, reduction="hardest")
    assert float(hardest) == pytest.approx(0.6 / 2)
    # rank weight: log(1 + floor(30 * 2 / 3)) = log(21) on row 0; row 1 has M = 0
    weighted = M.cml_hinge(d_pos, d_neg, 0.5, 30, rank_weight=True)
    assert float(weighted) == pytest.approx(math.log(21) * 0.8 / 2)
    with pytest.raises(ValueError, match="reduction"):
        M.cml_hinge(d_pos, d_neg, 0.5, 30, reduction="mean")


def test_cml_hinge_gradient_pulls_positive_pushes_negative():
    u = torch.tensor([[0.0, 0.0]], requires_grad=True)
    pos = torch.tensor([[0.5, 0.0]], requires_grad=True)
    neg = torch.tensor([[[0.0, 0.4]]], requires_grad=True)
    loss = M.cml_hinge(M.sq_distances(u, pos), M.sq_distances(u, neg), 0.5, 10)
    loss.backward()
    # d loss / d pos = +2 (pos - u) * w: gradient descent moves pos towards u
    assert pos.grad[0, 0] > 0 and neg.grad[0, 0, 1] < 0


def test_covariance_penalty_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4))
    c = np.cov(x, rowvar=False, bias=True)
    expected = ((c ** 2).sum() - (np.diag(c) ** 2).sum()) / 50
    assert float(M.covariance_penalty(torch.tensor(x))) == pytest.approx(expected)
    # uncorrelated (diagonal-covariance) points cost nothing
    iso = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])
    assert float(M.covariance_penalty(iso)) == pytest.approx(0.0)


def test_clip_rows_projects_onto_the_unit_ball_only_touched_rows():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    M.clip_rows_(w, torch.tensor([0, 1, 0]))
    np.testing.assert_allclose(w.numpy(), [[0.6, 0.8], [0.3, 0.4], [6.0, 8.0]], rtol=1e-6)


def test_memory_attention_weights_sum_to_one():
    g = torch.Generator().manual_seed(0)
    q, keys, mem = (torch.randn(5, 7, 4, generator=g), torch.randn(3, 4, generator=g),
                    torch.randn(3, 4, generator=g))
    r, a = M.memory_attention(q, keys, mem)
    assert a.shape == (5, 7, 3) and r.shape == (5, 7, 4)
    np.testing.assert_allclose(a.sum(-1).numpy(), 1.0, rtol=1e-6)
    assert (a > 0).all()
    np.testing.assert_allclose(r.numpy(), (a @ mem).numpy(), rtol=1e-6)
    # one slot: a = 1, r = that memory
    r1, a1 = M.memory_attention(q, keys[:1], mem[:1])
    np.testing.assert_allclose(a1.numpy(), 1.0)
    np.testing.assert_allclose(r1.numpy(), np.broadcast_to(mem[:1].numpy(), r1.shape))


def test_two_stage_keeps_the_closest_pool_candidates():
    """The sampler scored by CML's -distance^2 keeps, per user, the n closest candidates of
    its pool (hand-placed points on a line)."""
    import scipy.sparse as sp

    sampler = build_registry().create("sampler", "two-stage", pool_size=6,
                                      first_stage="popularity")
    songs = np.arange(6)
    train = sp.csr_matrix(np.ones((2, 6), np.float32))
    sampler.prepare(train, songs)
    items = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    user_pos = np.array([0.9, 4.2])

    def scorer(users, pool):
        return -(user_pos[users][:, None] - items[pool][None, :]) ** 2

    out = sampler.sample(np.array([0, 1]), 2, np.random.default_rng(0), scorer)
    pool = sampler._draw((1, 6), np.random.default_rng(0))[0]
    for r, u in enumerate((0, 1)):
        d = (user_pos[u] - items[pool]) ** 2
        assert set(out[r]) == set(pool[np.argsort(d, kind="stable")[:2]])
        assert (user_pos[u] - items[out[r, 0]]) ** 2 <= (user_pos[u] - items[out[r, 1]]) ** 2


def warm_world(seed: int = 0) -> worlds.World:
    """The low-rank world's plays under the warm split (every evaluated song trained on)."""
    base = worlds.low_rank_world(seed=seed, users=120, songs=80)
    split = WarmSplit(valid_share=0.1, test_share=0.2).split(base.dataset, seed)
    return worlds.World(base.dataset, split, None)


def warm_auc(world: worlds.World, model) -> float:
    """Mean per-user AUC of the test songs with each user's training and validation songs
    masked out (what the recommendation task measures on a warm split)."""
    from recbench.metrics import roc_auc_per_user

    split = world.split
    users, songs = split.test_users, split.test_songs
    seen = (split.train + split.valid).tocsr()[users][:, songs].toarray() > 0
    return float(np.nanmean(roc_auc_per_user(model.score(users, songs),
                                             world.test_labels(users), ~seen)))


@pytest.mark.parametrize("sampler,extra", [
    ("uniform", {}),
    ("two-stage", {"sampler_params": {"pool_size": 30, "first_stage": "popularity"},
                   "rank_weight": False, "cov_weight": 1.0}),
])
def test_cml_learns_low_rank_plays_and_keeps_points_in_the_ball(sampler, extra):
    torch.set_num_threads(1)
    world = warm_world()
    model = CML(dim=8, batch_size=64, max_epochs=15, patience=15, sampler=sampler, **extra)
    model.fit(world.context(0))
    assert warm_auc(world, model) > 0.8  # random points: 0.5
    assert np.linalg.norm(model._u_np, axis=1).max() <= 1.0 + 1e-5
    assert np.linalg.norm(model._v_np, axis=1).max() <= 1.0 + 1e-5
    assert model.fit_info["best_valid_auc"] > 0.75
    assert model.throughput()["train_examples_per_s"] > 0
    # scores are minus the squared distances of the points
    s = model.score(np.array([0]), np.array([3]))
    assert s[0, 0] == pytest.approx(-((model._u_np[0] - model._v_np[3]) ** 2).sum(), abs=1e-5)


def test_cml_without_clipping_leaves_the_ball():
    torch.set_num_threads(1)
    world = warm_world()
    model = CML(dim=8, batch_size=64, max_epochs=4, patience=4, clip=False, margin=2.0,
                lr=0.05)
    model.fit(world.context(0))
    assert np.linalg.norm(model._v_np, axis=1).max() > 1.0


def test_sphere_distances_are_two_minus_two_cosines_and_points_end_on_the_sphere():
    torch.set_num_threads(1)
    world = warm_world()
    model = CML(dim=2, max_epochs=1, steps_per_epoch=1, sphere=True, clip=False)
    model.fit(world.context(0))
    with torch.no_grad():
        model._users.data[0] = torch.tensor([3.0, 4.0])  # unit: (0.6, 0.8)
        model._items.data[1] = torch.tensor([2.0, 0.0])  # unit: (1, 0)
        model._items.data[2] = torch.tensor([0.0, -0.5])  # unit: (0, -1)
    model._shared_now = False
    d_pos, d_neg = model._distances(torch.tensor([0]), torch.tensor([1]),
                                    torch.tensor([[2]]))
    # ||(0.6, 0.8) - (1, 0)||^2 = 0.16 + 0.64 = 0.8 = 2 - 2 * 0.6; to (0, -1): 0.36 + 3.24
    assert float(d_pos[0]) == pytest.approx(0.8)
    assert float(d_neg[0, 0]) == pytest.approx(3.6)
    model._finish()
    assert model.score(np.array([0]), np.array([1, 2]))[0] == pytest.approx([-0.8, -3.6])
    # every user and song point the model ranks with has norm 1, whatever the raw rows
    np.testing.assert_allclose(np.linalg.norm(model._u_np, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(model._v_np, axis=1), 1.0, atol=1e-6)


def test_sphere_cml_learns_and_hcml_refuses_it():
    from recbench.errors import ConfigError
    from recbench_builtin.recommenders.hcml import HCML

    torch.set_num_threads(1)
    world = warm_world()
    model = CML(dim=8, batch_size=64, max_epochs=15, patience=15, sphere=True, clip=False,
                margin=1.0, negatives=1, reduction="hardest", lr=0.05)
    model.fit(world.context(0))
    assert warm_auc(world, model) > 0.8  # random points: 0.5
    with pytest.raises(ConfigError, match="sphere"):
        HCML(dim=8, max_epochs=1, sphere=True).fit(world.context(0))


def test_shared_negatives_take_the_matrix_product_path_with_the_same_distances():
    torch.set_num_threads(1)
    world = warm_world()
    model = CML(dim=8, max_epochs=1, steps_per_epoch=1)
    model.fit(world.context(0))
    users, pos = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    neg = torch.tensor([[7, 8, 9]] * 3)
    model._shared_now = False
    d_pos, per_row = model._distances(users, pos, neg)
    model._shared_now = True
    d_pos2, shared = model._distances(users, pos, neg)
    np.testing.assert_allclose(shared.detach().numpy(), per_row.detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(d_pos2.detach().numpy(), d_pos.detach().numpy())


def test_select_by_weight_draws_proportionally_without_replacement():
    """First draws follow exp(log_w) / sum (closed form 0.1, 0.2, 0.3, 0.4); a row never
    repeats a column; -inf columns come only when fewer than n are finite."""
    from recbench_builtin.samplers import select_by_weight

    rng = np.random.default_rng(0)
    lw = np.log(np.tile([1.0, 2.0, 3.0, 4.0], (40000, 1)))
    out = select_by_weight(lw, 2, rng)
    freq = np.bincount(out[:, 0], minlength=4) / len(out)
    np.testing.assert_allclose(freq, [0.1, 0.2, 0.3, 0.4], atol=0.01)
    assert (out[:, 0] != out[:, 1]).all()
    # second draw given first = 3 (weight 4): 1/6, 2/6, 3/6
    second = out[out[:, 0] == 3, 1]
    np.testing.assert_allclose(np.bincount(second, minlength=4)[:3] / len(second),
                               [1 / 6, 2 / 6, 3 / 6], atol=0.015)
    masked = np.array([[0.0, -np.inf, 5.0, -np.inf]] * 50)
    out = select_by_weight(masked, 3, rng)
    assert (np.sort(out[:, :2], axis=1) == [0, 2]).all()  # the finite ones first
    assert set(out[:, 2]) == {1, 3}


def test_distance_weighted_log_weights_hand_computed():
    """D = 4: log q^-1(d) = -(D-2) log d - (D-3)/2 log(1 - d^2/4), d = sqrt(2 - 2 cos)
    clipped at 0.5; cos <= 0 -> -inf. Scale of the points does not matter (normalised)."""
    a = torch.tensor([[2.0, 0.0, 0.0, 0.0]])
    c = torch.tensor([[1.0, 0.0, 0.0, 0.0],             # cos 1 -> d 0 -> clipped 0.5
                      [0.5, np.sqrt(0.75), 0.0, 0.0],   # cos 0.5 -> d 1
                      [0.0, 1.0, 0.0, 0.0],             # cos 0 -> masked
                      [-1.0, 0.0, 0.0, 0.0]], dtype=torch.float32)  # cos -1 -> masked
    lw = M.distance_weighted_log_weights(a, c).numpy()[0]
    d0 = 0.5
    assert lw[0] == pytest.approx(-2 * np.log(d0) - 0.5 * np.log(1 - d0 ** 2 / 4), rel=1e-5)
    assert lw[1] == pytest.approx(-0.5 * np.log(0.75), rel=1e-4)
    assert np.isneginf(lw[2]) and np.isneginf(lw[3])


def test_two_stage_sample_selection_uses_anchors_and_a_distinct_pool():
    """selection = "sample", pool without replacement: the scorer sees the anchors (not
    the users), the pool holds distinct songs, -inf candidates are never drawn while
    enough others remain, and the user's training positives are excluded."""
    import scipy.sparse as sp

    sampler = build_registry().create("sampler", "two-stage", pool_size=8,
                                      first_stage="popularity", pool_replacement=False,
                                      selection="sample", exclude_positives=True)
    train = sp.csr_matrix(np.ones((3, 10), np.float32))
    train[0, 5] = 0.0
    train[0, 6] = 0.0
    train.eliminate_zeros()
    sampler.prepare(train, np.arange(10))
    seen = {}

    def scorer(rows, pool):
        seen["rows"], seen["pool"] = rows.copy(), pool.copy()
        return np.where(pool % 2 == 0, 0.0, -np.inf)[None, :].repeat(len(rows), 0)

    users = np.array([1, 2])
    out = sampler.sample(users, 2, np.random.default_rng(1), scorer, anchors=np.array([7, 9]))
    assert list(seen["rows"]) == [7, 9]
    assert len(set(seen["pool"])) == 8
    # every song is a positive of users 1 and 2 -> all -inf: falls back to the pool
    assert out.shape == (2, 2) and set(out.ravel()) <= set(seen["pool"])
    dense = np.ones((3, 10), np.float32)
    dense[0, 1:] = 0.0  # user 0 played song 0 only; every song has listeners
    train2 = sp.csr_matrix(dense)
    sampler.prepare(train2, np.arange(10))
    for seed in range(20):
        out = sampler.sample(np.array([0]), 2, np.random.default_rng(seed), scorer,
                             anchors=np.array([4]))
        pool = seen["pool"]
        even = [s for s in pool if s % 2 == 0 and s != 0]
        assert len(even) >= 2 and set(out[0]) <= set(even)


def test_reference_attention_weights_hand_computed_and_masked():
    """alpha = softmax(<r_x, u>) over valid references: sums to 1, 0 on masked ones; the
    output is the alpha-weighted sum (hand-computed with logits 1 and 2)."""
    rel = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [5.0, 5.0]]])   # (1, R=3, D=2)
    user = torch.tensor([[1.0, 1.0]])
    valid = torch.tensor([[True, True, False]])
    out, alpha = M.reference_attention(rel, user, valid)
    e1, e2 = np.exp(1.0), np.exp(2.0)
    np.testing.assert_allclose(alpha.numpy(), [[e1 / (e1 + e2), e2 / (e1 + e2), 0.0]],
                               rtol=1e-6)
    np.testing.assert_allclose(alpha.sum(-1).numpy(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out.numpy(), [[e1 / (e1 + e2), 2 * e2 / (e1 + e2)]], rtol=1e-6)


def test_informativeness_none_picks_the_pool_at_random():
    """CML's knob-0 scorer scores every candidate 0: with selection = "sample" each pool
    song is then kept with the same frequency (n / pool per draw)."""
    import scipy.sparse as sp

    from recbench_builtin.recommenders.cml import _no_information

    sampler = build_registry().create("sampler", "two-stage", pool_size=4,
                                      first_stage="uniform", pool_replacement=False,
                                      selection="sample")
    sampler.prepare(sp.csr_matrix(np.ones((1, 4), np.float32)), np.arange(4))
    assert (_no_information(np.arange(2), np.arange(3)) == 0).all()
    rng = np.random.default_rng(0)
    out = np.concatenate([sampler.sample(np.zeros(50, np.int64), 2, rng, _no_information)
                          for _ in range(200)])
    np.testing.assert_allclose(np.bincount(out[:, 0], minlength=4) / len(out), 0.25,
                               atol=0.01)


def test_valid_users_early_stops_on_that_subset_of_users():
    """The best validation AUC recorded is the restored model's AUC on the fixed subset of
    `valid_users` users (validation_data's max_users), not on all users."""
    torch.set_num_threads(1)
    world = warm_world()
    sub = M.validation_data(world.split, max_users=15)
    full = M.validation_data(world.split)
    assert len(sub[0]) == 15 < len(full[0])
    model = CML(dim=8, batch_size=64, max_epochs=3, patience=3, valid_users=15)
    model.fit(world.context(0))
    best = model.fit_info["best_valid_auc"]
    assert best == pytest.approx(M.valid_auc(model._score_np, sub), abs=1e-9)
    assert best != pytest.approx(M.valid_auc(model._score_np, full), abs=1e-6)
