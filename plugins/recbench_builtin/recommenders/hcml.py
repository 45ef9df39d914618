"""Hierarchical collaborative metric learning (Tran, Sweeney & Lee, RecSys 2021), as we
read its section 3: CML whose distances carry latent relations.

- user-item relation (after LRML, Tay et al. 2018): for user u and song i, attention
  weights ``a = softmax((u * v_i) K_ui^T)`` over M memory slots give a translation vector
  ``r_ui = a M_ui`` and the distance ``d_ui = ||u + r_ui - v_i||^2``;
- item-item relation: for each song j the user played in training (a fixed sample of
  ``history`` of them, drawn once at fit), ``r_ji`` from a second memory over
  ``v_j * v_i`` and ``d_ji = ||v_j + r_ji - v_i||^2``;
- the distance trained and ranked on is ``d_ui + item_weight * mean_j d_ji`` (the song
  itself left out of its own history), with CML's hinge, rank weight, negatives (uniform
  or 2-stage) and unit-ball clipping of user and song points (cml.py).

``item_weight = 0`` is CML with user-item relations only (LRML-style). When ranking, the
item-item distances are computed once per (history song, candidate song) pair, then
averaged over each user's history; users are scored in blocks of ``score_block``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext
from recbench.params import Param

from . import _metric as M
from .cml import CML, CML_PARAMS


class HCML(CML):
    """Hierarchical CML: user-item and item-item translation vectors from memory attention."""

    name = "hcml"
    description = "Hierarchical CML (Tran et al. 2021): user-item + item-item memory relations"
    params = CML_PARAMS + (
        Param("memory_slots", int, 10, min=1, help="memory slots of each attention (M)"),
        Param("history", int, 10, min=1, help="training songs per user in the item-item term"),
        Param("item_weight", float, 1.0, min=0.0,
              help="weight of the item-item distance (0 = user-item relations only)"),
        Param("score_block", int, 64, min=1, help="users per block when ranking"),
    )

    def _build(self, ctx: FitContext, gen: Any) -> list[Any]:
        import torch

        params = super()._build(ctx, gen)
        d, m = self.options["dim"], self.options["memory_slots"]
        self._mem = [torch.nn.Parameter(torch.randn(m, d, generator=gen) / d ** 0.5)
                     for _ in range(4)]  # keys / memories, user-item then item-item
        return params + self._mem

    def _to(self, device: Any) -> None:
        import torch

        super()._to(device)
        self._mem = [torch.nn.Parameter(t.data.to(device)) for t in self._mem]

    def _parameters(self) -> list[Any]:
        return [self._users, self._items] + self._mem

    def _prepare_training(self, ctx: FitContext, train: Any) -> None:
        """Each user's `history` training songs (sampled with replacement; -1 = none)."""
        import torch

        rng = np.random.default_rng([ctx.seed, 13])
        train = train.tocsr()
        n, h = train.shape[0], self.options["history"]
        hist = np.full((n, h), -1, dtype=np.int64)
        for u in range(n):
            songs = train.indices[train.indptr[u]:train.indptr[u + 1]]
            if len(songs):
                hist[u] = songs[rng.integers(0, len(songs), h)] if len(songs) > h else \
                    np.resize(rng.permutation(songs), h)
        self._hist = torch.from_numpy(hist).to(self._device)

    def _pair_distances(self, users: Any, items: Any) -> Any:
        """(B, K) distances of users (B,) to songs (B, K) (index tensors)."""
        import torch

        ku, mu, ki, mi = self._mem
        u = self._users[users]                      # (B, D)
        v = self._items[items]                      # (B, K, D)
        r_ui, _ = M.memory_attention(u[:, None, :] * v, ku, mu)
        d = ((u[:, None, :] + r_ui - v) ** 2).sum(-1)
        w = self.options["item_weight"]
        if w <= 0:
            return d
        hist = self._hist[users]                    # (B, L)
        valid = (hist[:, None, :] >= 0) & (hist[:, None, :] != items[:, :, None])  # (B, K, L)
        h = self._items[hist.clamp_min(0)]          # (B, L, D)
        r_ji, _ = M.memory_attention(h[:, None, :, :] * v[:, :, None, :], ki, mi)
        d_ji = ((h[:, None, :, :] + r_ji - v[:, :, None, :]) ** 2).sum(-1)  # (B, K, L)
        vf = valid.to(d_ji.dtype)
        mean = (d_ji * vf).sum(-1) / vf.sum(-1).clamp_min(1.0)
        return d + w * mean

    def _distances(self, users: Any, pos: Any, neg: Any) -> tuple[Any, Any]:
        d = self._pair_distances(users, self._cat_items(pos, neg))
        return d[:, 0], d[:, 1:]

    @staticmethod
    def _cat_items(pos: Any, neg: Any) -> Any:
        import torch

        return torch.cat([pos[:, None], neg], dim=1)

    def _item_item(self, hist_songs: Any, songs: Any, block: int = 64) -> Any:
        """(len(hist_songs), len(songs)) item-item distances d_ji, in blocks of rows."""
        import torch

        _, _, ki, mi = self._mem
        v = self._items[songs]
        rows = []
        for start in range(0, len(hist_songs), block):
            h = self._items[hist_songs[start:start + block]]            # (b, D)
            r, _ = M.memory_attention(h[:, None, :] * v[None, :, :], ki, mi)
            rows.append(((h[:, None, :] + r - v[None, :, :]) ** 2).sum(-1))
        return torch.cat(rows) if rows else v.new_zeros((0, len(songs)))

    def _pool_scores(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """-distance of every (user, song) pair without gradients: the item-item distances
        are computed once per (history song, candidate) pair, then averaged per user."""
        import torch

        ku, mu, _, _ = self._mem
        users, songs = np.asarray(users, dtype=np.int64), np.asarray(songs, dtype=np.int64)
        out = np.empty((len(users), len(songs)), dtype=np.float32)
        s = torch.from_numpy(songs).to(self._device)
        bs, w = self.options["score_block"], self.options["item_weight"]
        with torch.no_grad():
            v = self._items[s]
            ut = torch.from_numpy(users).to(self._device)
            if w > 0:
                hist = self._hist[ut]                                   # (U, L)
                uniq, inv = torch.unique(hist.clamp_min(0), return_inverse=True)
                dii = self._item_item(uniq, s)                          # (H, S)
                same = uniq[:, None] == s[None, :]                      # a song vs itself
            for start in range(0, len(users), bs):
                u = self._users[ut[start:start + bs]]
                r, _ = M.memory_attention(u[:, None, :] * v[None, :, :], ku, mu)
                d = ((u[:, None, :] + r - v[None, :, :]) ** 2).sum(-1)   # (b, S)
                if w > 0:
                    idx = inv[start:start + bs]                          # (b, L)
                    ok = (hist[start:start + bs] >= 0)[:, :, None] & ~same[idx]  # (b, L, S)
                    okf = ok.to(d.dtype)
                    d = d + w * (dii[idx] * okf).sum(1) / okf.sum(1).clamp_min(1.0)
                out[start:start + len(u)] = (-d).float().cpu().numpy()
        return out

    def _finish(self) -> None:
        super()._finish()

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32: minus the relational distances."""
        return self._pool_scores(users, songs)


@hookimpl
def recbench_register_recommenders(register):
    register(HCML)
