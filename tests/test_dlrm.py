"""DLRM's interaction layer on a hand-computed case, its shapes, and the table hashing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from recbench_builtin.recommenders.dlrm import table_index  # noqa: E402
from recbench_builtin.recommenders.dlrm_net import build_net, pairwise_dot  # noqa: E402


def test_pairwise_dot_hand_case():
    z = torch.tensor([[[1.0, 0.0], [2.0, 3.0], [-1.0, 4.0]]])  # n = 3 vectors of d = 2
    # (1, 0): 1*2 + 0*3 = 2; (2, 0): -1; (2, 1): -2 + 12 = 10
    np.testing.assert_allclose(pairwise_dot(z).numpy(), [[2.0, -1.0, 10.0]])


def test_pairwise_dot_shape_and_values():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4, 5, 3))
    got = pairwise_dot(torch.from_numpy(z)).numpy()
    assert got.shape == (4, 10)
    want = [[z[b, i] @ z[b, j] for i in range(5) for j in range(i)] for b in range(4)]
    np.testing.assert_allclose(got, want)


def test_net_forward_shapes_and_top_input():
    torch.manual_seed(0)
    net = build_net([10, 7, 3], dim=4, dense_dim=6, bottom=[8], top=[5])
    dense = torch.randn(9, 6)
    idx = torch.tensor([[1, 2, 0]] * 9)
    assert net(dense, idx).shape == (9,)
    # top input = bottom output (4) + C(4, 2) = 6 dots over 3 tables + the dense vector
    assert net.top[0].in_features == 4 + 6
    assert net.bottom[-2].out_features == 4
    emb = net.lookup(idx)
    assert emb.shape == (9, 3, 4)
    np.testing.assert_allclose(emb[0, 1].detach().numpy(), net.tables[1].weight[2].detach())
    no_dense = build_net([10, 7], dim=4, dense_dim=0, bottom=[8], top=[5])
    assert no_dense.top[0].in_features == 1
    assert no_dense(torch.zeros(2, 0), torch.tensor([[1, 1], [2, 3]])).shape == (2,)


def test_tables_have_sparse_gradients():
    net = build_net([100, 50], dim=4, dense_dim=3, bottom=[8], top=[5])
    loss = net(torch.randn(6, 3), torch.randint(0, 50, (6, 2))).sum()
    loss.backward()
    assert all(p.grad.is_sparse for p in net.sparse_parameters())
    assert not any(p.grad.is_sparse for p in net.dense_parameters())


def test_table_index_shifts_unknown_and_hashes_large():
    idx, rows = table_index(np.array([0, 4, -1]), 5, hash_size=100)
    assert rows == 6 and idx.tolist() == [1, 5, 0]
    idx, rows = table_index(np.arange(-1, 1000), 1000, hash_size=64)
    assert rows == 64 and idx[0] == 0
    assert idx[1:].min() >= 1 and idx[1:].max() <= 63
    assert len(np.unique(idx[1:])) == 63  # the hash spreads codes over every row
