"""The DLRM network (Naumov et al., "Deep Learning Recommendation Model for Personalization
and Recommendation Systems", 2019) and its training loop, shared by the `dlrm` recommender
and the scale benchmark (tests/benchmarks/test_bench_dlrm.py).

Section 2 of the paper: each categorical feature is looked up in its own embedding table
(``EmbeddingBag``, sum mode, one index per bag, sparse gradients: the paper's "well-kept
path" for big tables); the dense features go through the bottom MLP to the embedding size
d; the feature interaction is the dot product of every pair of the n = tables + 1 vectors
(the strict lower triangle of Z Z^T, ``interaction = "dot"`` of the reference code),
concatenated with the bottom MLP's output; the top MLP maps that to one logit. ReLU after
every layer but the last of the top MLP.

torch is imported inside the functions, and the module class is built on first use.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence


def pairwise_dot(z: Any) -> Any:
    """(B, n, d) -> (B, n (n - 1) / 2): z_i . z_j for i > j, in row-major order of the
    strict lower triangle ((1, 0), (2, 0), (2, 1), (3, 0), ...), as the reference code."""
    import torch

    n = z.shape[1]
    zz = torch.bmm(z, z.transpose(1, 2))
    li, lj = torch.tril_indices(n, n, offset=-1, device=z.device)
    return zz[:, li, lj]


def _mlp(sizes: Sequence[int], last_relu: bool) -> Any:
    from torch import nn

    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_relu:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@functools.cache
def _net_class() -> type:
    from torch import nn

    class DLRMNet(nn.Module):
        """Embedding tables + bottom MLP + pairwise dot interaction + top MLP.

        `table_rows`: rows of each table; `dense_dim`: number of dense inputs (0: no bottom
        MLP, the interaction is over the embeddings only); `bottom`: hidden widths of the
        bottom MLP (its output is `dim`); `top`: hidden widths of the top MLP (output 1).
        forward(dense (B, dense_dim) float, idx (B, tables) int64) -> (B,) logits.
        """

        def __init__(self, table_rows: Sequence[int], dim: int, dense_dim: int,
                     bottom: Sequence[int], top: Sequence[int], sparse: bool = True):
            super().__init__()
            self.tables = nn.ModuleList(
                [nn.EmbeddingBag(int(r), dim, mode="sum", sparse=sparse) for r in table_rows])
            for t in self.tables:  # the reference code's uniform(-1/sqrt(n), 1/sqrt(n))
                nn.init.uniform_(t.weight, -(1.0 / max(t.num_embeddings, 1)) ** 0.5,
                                 (1.0 / max(t.num_embeddings, 1)) ** 0.5)
            self.dense_dim = int(dense_dim)
            self.bottom = (_mlp([dense_dim, *bottom, dim], last_relu=True)
                           if dense_dim > 0 else None)
            n = len(table_rows) + (1 if dense_dim > 0 else 0)
            width = n * (n - 1) // 2 + (dim if dense_dim > 0 else 0)
            self.top = _mlp([width, *top, 1], last_relu=False)

        def lookup(self, idx: Any) -> Any:
            """(B, tables) indices -> (B, tables, dim) looked-up vectors."""
            import torch

            return torch.stack([t(idx[:, k:k + 1]) for k, t in enumerate(self.tables)],
                               dim=1)

        def forward(self, dense: Any, idx: Any) -> Any:
            import torch

            emb = self.lookup(idx)
            if self.bottom is not None:
                x = self.bottom(dense)
                z = torch.cat([x[:, None, :], emb], dim=1)
                top_in = torch.cat([x, pairwise_dot(z)], dim=1)
            else:
                top_in = pairwise_dot(emb)
            return self.top(top_in).squeeze(1)

        def sparse_parameters(self) -> list[Any]:
            """The embedding tables' weights (sparse gradients)."""
            return [t.weight for t in self.tables]

        def dense_parameters(self) -> list[Any]:
            """Every other parameter (the MLPs)."""
            ids = {id(p) for p in self.sparse_parameters()}
            return [p for p in self.parameters() if id(p) not in ids]

    return DLRMNet


def build_net(table_rows: Sequence[int], dim: int, dense_dim: int, bottom: Sequence[int],
              top: Sequence[int], sparse: bool = True) -> Any:
    """A new DLRMNet (see `_net_class`)."""
    return _net_class()(table_rows, dim, dense_dim, bottom, top, sparse)


def make_optimizers(net: Any, kind: str, lr: float) -> list[Any]:
    """[tables' optimizer, MLPs' optimizer]: "sgd" (plain SGD on both, the reference
    code's) or "adam" (SparseAdam on the sparse tables, Adam on the MLPs)."""
    import torch

    if kind == "sgd":
        return [torch.optim.SGD(net.sparse_parameters(), lr=lr),
                torch.optim.SGD(net.dense_parameters(), lr=lr)]
    if kind == "adam":
        return [torch.optim.SparseAdam(net.sparse_parameters(), lr=lr),
                torch.optim.Adam(net.dense_parameters(), lr=lr)]
    raise ValueError(f"unknown optimizer {kind!r} (expected 'sgd' or 'adam')")


def train_steps(net: Any, opts: Sequence[Any], batches: Any) -> tuple[float, int]:
    """One optimisation step per (dense, idx, labels) batch with binary cross-entropy on
    the logits; returns (summed loss, examples seen)."""
    import torch.nn.functional as F

    total, seen = 0.0, 0
    for dense, idx, labels in batches:
        loss = F.binary_cross_entropy_with_logits(net(dense, idx), labels)
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()
        total += float(loss.detach()) * len(labels)
        seen += len(labels)
    return total, seen
