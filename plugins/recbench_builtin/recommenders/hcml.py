"""Hierarchical collaborative metric learning (Tran, Salha-Galvan, Hennequin & Moussallam,
RecSys 2021, section 3; the HLR-E variant of the authors' code): CML whose user-song
translation is built on top of latent item-item relations.

For user u (point ``u``) and candidate song i (point ``v_i``), the references of u are the
user point itself and the points ``v_j`` of ``history`` songs u played in training (a fixed
sample drawn once at fit; the candidate itself is left out of its own references):

- each reference x gives a relation to i by memory-based attention (LRML, Tay et al. 2018):
  ``r_xi = softmax((x * v_i) K^T) M`` over M memory slots (keys K, memories M, shared by
  the user-item relation x = u and the item-item relations x = v_j, section 3.2);
- the relations are combined by an attention driven by the user (section 3.3):
  ``alpha_x = softmax_x(<r_xi, u>)`` over the valid references, ``r_ui = sum_x alpha_x r_xi``;
- the distance is the translated CML distance ``d(u, i) = ||u + r_ui - v_i||^2``, trained with
  CML's hinge, negatives (uniform or 2-stage) and unit-ball clipping of user and song points
  (cml.py), and ranked on (score = -d).

``history = 0`` leaves the user reference only: LRML (user-item relations only). The
item-item relations carry signal beyond CML's user-item distances when co-listening has
structure that low-rank taste does not hold (in synth-msd: ``artist_loyalty``, plays that
follow up a played song's artist; suites/metric_learning.toml).
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
    """Hierarchical CML: user-song translations from attention over item-item relations."""

    name = "hcml"
    description = "Hierarchical CML (Tran et al. 2021): user-item relations built on item-item ones"
    sphere_ok = False
    params = CML_PARAMS + (
        Param("memory_slots", int, 10, min=1, help="memory slots of the attention (M)"),
        Param("history", int, 10, min=0,
              help="training songs per user used as references (0 = LRML, user only)"),
        Param("score_block", int, 32, min=1, help="users per block when ranking"),
    )

    def _build(self, ctx: FitContext, gen: Any) -> list[Any]:
        import torch

        params = super()._build(ctx, gen)
        d, m = self.options["dim"], self.options["memory_slots"]
        self._mem = [torch.nn.Parameter(torch.randn(m, d, generator=gen) / d ** 0.5)
                     for _ in range(2)]  # keys K, memories M
        return params + self._mem

    def _to(self, device: Any) -> None:
        import torch

        super()._to(device)
        self._mem = [torch.nn.Parameter(t.data.to(device)) for t in self._mem]

    def _parameters(self) -> list[Any]:
        return [self._users, self._items] + self._mem

    def _prepare_training(self, ctx: FitContext, train: Any) -> None:
        """Each user's `history` training songs (without replacement when the user has
        enough; -1 = empty slot)."""
        import torch

        rng = np.random.default_rng([ctx.seed, 13])
        train = train.tocsr()
        n, h = train.shape[0], self.options["history"]
        hist = np.full((n, h), -1, dtype=np.int64)
        for u in range(n):
            songs = train.indices[train.indptr[u]:train.indptr[u + 1]]
            if len(songs) and h:
                pick = rng.permutation(songs)[:h]
                hist[u, :len(pick)] = pick
        self._hist = torch.from_numpy(hist).to(self._device)

    def _refs(self, users: Any) -> tuple[Any, Any, Any]:
        """(points (B, 1+L, D), song ids (B, 1+L) with -1 for the user / empty slots,
        valid (B, 1+L)) of the users' references: the user point, then history songs."""
        import torch

        u = self._users[users]
        hist = self._hist[users]
        pts = torch.cat([u[:, None, :], self._items[hist.clamp_min(0)]], dim=1)
        ids = torch.cat([hist.new_full((len(users), 1), -1), hist], dim=1)
        valid = torch.cat([torch.ones((len(users), 1), dtype=torch.bool, device=hist.device),
                           hist >= 0], dim=1)
        return pts, ids, valid

    def _relational(self, u: Any, refs: Any, ref_ids: Any, valid: Any, v: Any,
                    items: Any) -> Any:
        """Distances ||u + r_ui - v_i||^2, (B, S): u (B, D), refs (B, R, D), ref_ids and
        valid (B, R), v (B, S, D) or (S, D), items (B, S) or (S,) song ids."""
        keys, mem = self._mem
        if v.dim() == 2:
            v, items = v[None], items[None]
        rel, _ = M.memory_attention(refs[:, None, :, :] * v[:, :, None, :], keys, mem)
        ok = valid[:, None, :] & (ref_ids[:, None, :] != items[:, :, None])  # (B, S, R)
        r_ui, _ = M.reference_attention(rel, u[:, None, :], ok)              # (B, S, D)
        return ((u[:, None, :] + r_ui - v) ** 2).sum(-1)

    def _pair_distances(self, users: Any, items: Any) -> Any:
        """(B, K) distances of users (B,) to songs (B, K) (index tensors)."""
        refs, ids, valid = self._refs(users)
        return self._relational(self._users[users], refs, ids, valid, self._items[items],
                                items)

    def _distances(self, users: Any, pos: Any, neg: Any) -> tuple[Any, Any]:
        import torch

        d = self._pair_distances(users, torch.cat([pos[:, None], neg], dim=1))
        return d[:, 0], d[:, 1:]

    def _pool_scores(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """-distance of every (user, song) pair without gradients, in blocks of users."""
        import torch

        users, songs = np.asarray(users, dtype=np.int64), np.asarray(songs, dtype=np.int64)
        out = np.empty((len(users), len(songs)), dtype=np.float32)
        bs = self.options["score_block"]
        with torch.no_grad():
            s = torch.from_numpy(songs).to(self._device)
            v = self._items[s]
            ut = torch.from_numpy(users).to(self._device)
            for start in range(0, len(users), bs):
                ub = ut[start:start + bs]
                refs, ids, valid = self._refs(ub)
                d = self._relational(self._users[ub], refs, ids, valid, v, s)
                out[start:start + len(ub)] = (-d).float().cpu().numpy()
        return out

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32: minus the relational distances."""
        return self._pool_scores(users, songs)


@hookimpl
def recbench_register_recommenders(register):
    register(HCML)
