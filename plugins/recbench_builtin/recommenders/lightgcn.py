"""LightGCN (He et al., SIGIR 2020): `lightgcn`.

Embeddings propagate over the user-song graph of the training interactions without
feature transforms or non-linearities (eq. 3): E^(k+1) = D^-1/2 A D^-1/2 E^(k), A the
(users + songs) bipartite adjacency (binarised plays); the final embedding is the mean of
layers 0..K (eq. 4, alpha_k = 1 / (K + 1)); score = e_u . e_i (eq. 5); BPR loss with L2 on
the layer-0 embeddings (eq. 15). The paper's defaults: K = 3 layers, size 64, Adam lr 1e-3,
reg 1e-4, batch 2048 (section 4.1.2).

Cold songs have no edge and a layer-0 embedding pinned to zero, so every layer leaves them
at zero: they score 0 (chance), as for `mf-bpr`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import FitContext
from recbench.params import Param

from .mf_bpr import BPR_PARAMS, BPRRecommender

LIGHTGCN_PARAMS = BPR_PARAMS + (
    Param("layers", int, 3, min=0, help="propagation layers K (paper: 3)"),
)


def bipartite_norm_adj(train: sp.spmatrix) -> sp.csr_matrix:
    """(U + S) x (U + S) float32 D^-1/2 [[0, R], [R^T, 0]] D^-1/2, R the binarised plays;
    isolated nodes keep a zero row."""
    r = sp.csr_matrix(train, dtype=np.float32, copy=True)
    r.eliminate_zeros()
    r.data[:] = 1.0
    a = sp.bmat([[None, r], [r.T, None]], format="csr", dtype=np.float32)
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0).astype(np.float32)
    return sp.csr_matrix(sp.diags(inv) @ a @ sp.diags(inv), dtype=np.float32)


def to_torch_sparse(m: sp.spmatrix, device: Any) -> Any:
    """A scipy matrix as a torch sparse COO float32 tensor on `device`."""
    import torch

    c = m.tocoo()
    idx = torch.from_numpy(np.vstack([c.row, c.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(c.data.astype(np.float32)),
                                   c.shape, check_invariants=True).coalesce().to(device)


def propagate(adj: Any, users: Any, items: Any, layers: int) -> tuple[Any, Any]:
    """LightGCN's layer combination: mean of E^(0..K), E^(k+1) = adj E^(k)."""
    import torch

    e = torch.cat([users, items], dim=0)
    total = e
    for _ in range(layers):
        e = torch.sparse.mm(adj, e)
        total = total + e
    total = total / (layers + 1)
    return total[:users.shape[0]], total[users.shape[0]:]


class CFBackboneMixin:
    """The collaborative backbone chosen by a ``cf`` / fixed kind: "mf" or "lightgcn"."""

    def _cf_setup(self, ctx: FitContext, kind: str, layers: int) -> None:
        self._cf_kind, self._cf_layers = kind, layers
        if kind == "lightgcn":
            self._adj = to_torch_sparse(bipartite_norm_adj(ctx.train), self._device)

    def _cf_forward(self) -> tuple[Any, Any]:
        users = self._user_emb.weight
        items = self._item_emb.weight * self._known[:, None]
        if self._cf_kind == "lightgcn":
            return propagate(self._adj, users, items, self._cf_layers)
        return users, items


class LightGCN(CFBackboneMixin, BPRRecommender):
    """LightGCN: mean of K graph propagations of the user and song embeddings, BPR loss.

    Cold songs have no edges: pinned to zero, they score 0.
    """

    name = "lightgcn"
    description = "LightGCN (He et al. 2020): linear graph propagation + BPR; cold songs score 0"
    params = LIGHTGCN_PARAMS

    def _setup(self, ctx: FitContext) -> list[Any]:
        self._cf_setup(ctx, "lightgcn", self.options["layers"])
        return []

    def _forward(self) -> tuple[Any, Any]:
        return self._cf_forward()


@hookimpl
def recbench_register_recommenders(register):
    register(LightGCN)
