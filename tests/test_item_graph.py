"""Item graphs of LATTICE (graph.py) against a brute-force kNN, and LATTICE's and the
BPR backbones' handling of cold songs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

torch = pytest.importorskip("torch")

from recbench_builtin.recommenders import graph  # noqa: E402
from recbench_builtin.recommenders.lattice import Lattice  # noqa: E402
from recbench_builtin.recommenders.lightgcn import bipartite_norm_adj  # noqa: E402
from recbench_builtin.recommenders.mf_bpr import MFBPR  # noqa: E402

from recbench.testing import worlds  # noqa: E402


def brute_knn(x: np.ndarray, k: int) -> np.ndarray:
    """Loop-by-loop cosine kNN: each row keeps its k most similar items (itself included),
    negative similarities set to 0."""
    n = len(x)
    out = np.zeros((n, n))
    for i in range(n):
        sims = [float(x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j])))
                for j in range(n)]
        for j in sorted(range(n), key=lambda j: -sims[j])[:k]:
            out[i, j] = max(sims[j], 0.0)
    return out


def test_knn_matches_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    got = graph.knn_sparsify(graph.cosine_similarity(torch.from_numpy(x)), 4).numpy()
    np.testing.assert_allclose(got, brute_knn(x, 4), atol=1e-12)
    assert ((got != 0).sum(axis=1) <= 4).all()
    np.testing.assert_allclose(np.diag(got), 1.0)  # an item is its own nearest neighbour


def test_sym_normalise_hand_case():
    a = torch.tensor([[1.0, 3.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    got = graph.sym_normalise(a).numpy()
    d = np.array([4.0, 2.0])  # row sums; the empty row stays 0
    want = np.array([[1 / 4, 3 / np.sqrt(8), 0], [1 / np.sqrt(8), 1 / 2, 0], [0, 0, 0]])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert d.sum() == 6.0


def test_normalised_knn_graph_rows():
    """Rows of D^-1/2 S D^-1/2: k non-zeros, and A_ij sqrt(d_i d_j) recovers S_ij."""
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(25, 6)))  # non-negative: every similarity is positive
    adj = graph.knn_graph(torch.from_numpy(x), 5).numpy()
    s = brute_knn(x, 5)
    d = s.sum(axis=1)
    assert ((adj > 0).sum(axis=1) == 5).all()
    np.testing.assert_allclose(adj * np.sqrt(np.outer(d, d)), s, atol=1e-10)


def test_bipartite_adjacency_is_symmetric_normalised():
    r = sp.csr_matrix(np.array([[1, 0, 2], [0, 0, 1]], dtype=np.float32))
    a = bipartite_norm_adj(r).toarray()
    deg = np.array([2, 1, 1, 0, 2])  # users 0, 1; songs 0, 1, 2
    assert a.shape == (5, 5)
    np.testing.assert_allclose(a, a.T)
    assert a[0, 2 + 2] == pytest.approx(1 / np.sqrt(deg[0] * deg[4]))
    assert (a[3] == 0).all()  # song 1 has no play: an isolated node


def _cold_world():
    return worlds.audible_classes_world(users=60, songs=120)


def test_mf_bpr_scores_cold_songs_zero():
    w = _cold_world()
    m = MFBPR(batch_size=64, max_epochs=2)
    m.fit(w.context(0))
    assert np.all(m.score(w.split.test_users, w.split.test_songs) == 0)


def test_lattice_cold_vector_is_its_neighbours_mean():
    """A cold song's vector = normalise(A e) over its content neighbours' ID embeddings."""
    w = _cold_world()
    m = Lattice(batch_size=64, max_epochs=3, lambda_coeff=1.0)  # fixed graph
    m.fit(w.context(0))
    from recbench_builtin.recommenders.graph import audio_vectors

    feats = torch.from_numpy(audio_vectors(w.context(0)))
    adj = graph.knn_graph(feats, 10)
    e = m._item_emb.weight.detach() * m._known[:, None]
    h = torch.nn.functional.normalize(adj @ e, dim=-1, eps=1e-8).numpy()
    cold = np.asarray(w.split.test_songs)
    np.testing.assert_allclose(m.item_vectors(cold), h[cold], rtol=1e-4, atol=1e-6)
    assert np.abs(m.item_vectors(cold)).sum() > 0
    assert m.fit_report()["cold_songs"] == len(cold) + len(w.split.valid_songs)
