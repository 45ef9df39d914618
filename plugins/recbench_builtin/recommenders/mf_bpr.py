"""Matrix factorisation trained with BPR (Rendle et al., UAI 2009): `mf-bpr`, and the
collaborative training shared by `lightgcn` and `lattice`.

score(u, i) = e_u . e_i. Each step draws a batch of training (user, played song) pairs
and one uniform negative per pair among the training songs (BPR's bootstrap sampling,
section 4.2 of the paper) and minimises
``-log sigmoid(s(u, i) - s(u, j)) + reg / 2 * (|e_u|^2 + |e_i|^2 + |e_j|^2)`` (mean over the
batch; the L2 term on the layer-0 embeddings, as LightGCN and LATTICE do), with Adam.
Early stopping watches the mean per-user AUC of the validation interactions.

Cold songs (no training interaction): their embedding is pinned to zero (a mask on the
table; they never receive a gradient), so a cold song scores 0 for everyone, an honest
chance-level ranking. The subclasses say what they add on top.

Defaults: embedding size 64, lr 1e-3, reg 1e-4, batch 2048: LightGCN's and LATTICE's
published settings (He et al. 2020 section 4.1.2; Zhang et al. 2021 section 4.1.3).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.errors import DataError
from recbench.params import Param
from recbench_builtin._training import EarlyStopping, make_optimizer

BPR_PARAMS = (
    Param("dim", int, 64, min=1, help="embedding size (LightGCN / LATTICE papers: 64)"),
    Param("lr", float, 1e-3, min=0.0, help="Adam learning rate (papers: 1e-3)"),
    Param("reg", float, 1e-4, min=0.0, help="L2 weight on the batch's embeddings (1e-4)"),
    Param("batch_size", int, 2048, min=1, help="(user, positive, negative) triples per step"),
    Param("max_epochs", int, 50, min=1, help="most epochs"),
    Param("steps_per_epoch", int, None, min=1,
          help="steps between validations (default: one pass over the training pairs)"),
    Param("patience", int, 5, min=1, help="epochs without a better validation AUC"),
    Param("max_minutes", float, None, min=0.0, help="stop training after this many minutes"),
)


class BPRRecommender(Recommender):
    """Shared BPR training of user and item embeddings; subclasses change `_forward`.

    `_forward()` returns (users (n_users, d), items (n_songs, d)) final embeddings from the
    layer-0 tables ``self._user_emb`` / ``self._item_emb`` (items masked to 0 for cold songs).
    """

    consumes = ("interactions",)
    params = BPR_PARAMS

    # ------------------------------------------------------------------ subclass hooks

    def _setup(self, ctx: FitContext) -> list[Any]:
        """Build extra modules; return their trainable parameters."""
        return []

    def _forward(self) -> tuple[Any, Any]:
        return self._user_emb.weight, self._item_emb.weight * self._known[:, None]

    def _snapshot(self) -> dict:
        return {k: v.detach().clone() for k, v in self._modules_state().items()}

    def _modules_state(self) -> dict:
        return {"user": self._user_emb.weight, "item": self._item_emb.weight}

    def _load(self, state: dict) -> None:
        import torch

        with torch.no_grad():
            for k, v in self._modules_state().items():
                v.copy_(state[k])

    # ------------------------------------------------------------------ fit

    def fit(self, ctx: FitContext) -> None:
        """BPR with uniform negatives over the training songs; early stopping on the
        validation AUC; caches the final user and item embeddings."""
        import torch

        o = self.options
        torch.manual_seed(int(ctx.seed))
        rng = np.random.default_rng(int(ctx.seed))
        self._device = torch.device(ctx.device)
        n_users, n_songs = ctx.dataset.n_users, ctx.dataset.n_songs
        train = ctx.train.tocsr()
        coo = train.tocoo()
        ok = coo.data > 0
        pair_u, pair_i = coo.row[ok].astype(np.int64), coo.col[ok].astype(np.int64)
        if len(pair_u) == 0:
            raise DataError(f"recommender.{self.name}: no training interactions")
        known = np.zeros(n_songs, dtype=bool)
        known[pair_i] = True
        self._known_np = known
        self._train = train
        self._known = torch.from_numpy(known.astype(np.float32)).to(self._device)
        negatives = np.flatnonzero(known)

        self._user_emb = torch.nn.Embedding(n_users, o["dim"]).to(self._device)
        self._item_emb = torch.nn.Embedding(n_songs, o["dim"]).to(self._device)
        torch.nn.init.normal_(self._user_emb.weight, std=0.1)
        torch.nn.init.normal_(self._item_emb.weight, std=0.1)
        extra = self._setup(ctx)
        opt, _ = make_optimizer("adam", [self._user_emb.weight, self._item_emb.weight, *extra],
                                o["lr"])

        valid = _validation(ctx)
        steps = o["steps_per_epoch"] or math.ceil(len(pair_u) / o["batch_size"])
        deadline = (time.perf_counter() + 60.0 * o["max_minutes"]
                    if o["max_minutes"] is not None else math.inf)
        stopper = EarlyStopping(o["patience"])
        history, seen, train_s = [], 0, 0.0
        for epoch in ctx.progress(range(1, o["max_epochs"] + 1), total=o["max_epochs"],
                                  desc=self.name):
            t0 = time.perf_counter()
            loss_sum = 0.0
            for _ in range(steps):
                idx = rng.integers(0, len(pair_u), o["batch_size"])
                neg = negatives[rng.integers(0, len(negatives), len(idx))]
                loss_sum += self._step(opt, pair_u[idx], pair_i[idx], neg)
                seen += len(idx)
                if time.perf_counter() > deadline:
                    stopper.stop("max_minutes")
                    break
            train_s += time.perf_counter() - t0
            entry = {"epoch": epoch, "loss": loss_sum / steps}
            if valid is not None:
                entry["valid_auc"] = self._valid_auc(valid)
                stopper.update(epoch, entry["valid_auc"], self._snapshot)
            history.append(entry)
            if stopper.should_stop:
                break
        stopper.restore(self._load)
        t0 = time.perf_counter()
        with torch.no_grad():
            self._eval_mode()
            u, i = self._forward()
            self._users, self._items = u.float().cpu().numpy(), i.float().cpu().numpy()
        final_s = time.perf_counter() - t0
        self.history = history
        self.fit_info = {"epochs": len(history), "best_epoch": stopper.best_epoch or len(history),
                         "stopped_by": stopper.stop_reason or "max_epochs",
                         "train_pairs": int(len(pair_u))}
        self._throughput = {"train_examples_per_s": seen / max(train_s, 1e-9),
                            "songs_embedded_per_s": n_songs / max(final_s, 1e-9)}

    def _eval_mode(self) -> None:
        """Switch modules with dropout / batch norm to eval (none by default)."""

    def _step(self, opt: Any, users: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
        import torch
        import torch.nn.functional as F

        dev = self._device
        u_idx = torch.from_numpy(users).to(dev)
        p_idx = torch.from_numpy(pos).to(dev)
        n_idx = torch.from_numpy(neg).to(dev)
        u_all, i_all = self._forward()
        u, p, n = u_all[u_idx], i_all[p_idx], i_all[n_idx]
        bpr = -F.logsigmoid((u * p).sum(-1) - (u * n).sum(-1)).mean()
        l2 = (self._user_emb(u_idx).pow(2).sum() + self._item_emb(p_idx).pow(2).sum()
              + self._item_emb(n_idx).pow(2).sum()) / (2 * len(users))
        loss = bpr + self.options["reg"] * l2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _valid_auc(self, valid: tuple) -> float:
        import torch

        from recbench.metrics import roc_auc_per_user

        users, songs, labels, mask = valid
        with torch.no_grad():
            u, i = self._forward()
            s = (u[torch.from_numpy(users).to(self._device)]
                 @ i[torch.from_numpy(songs).to(self._device)].T).float().cpu().numpy()
        aucs = np.asarray(roc_auc_per_user(s, labels, mask), dtype=float)
        return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")

    def fit_report(self) -> dict[str, Any]:
        """`fit_info` plus the per-epoch history (BPR loss, validation AUC)."""
        return {**getattr(self, "fit_info", {}), "history": list(getattr(self, "history", []))}

    # ------------------------------------------------------------------ scoring

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32 dot products of the final embeddings."""
        return (self._users[np.asarray(users, dtype=np.int64)]
                @ self._items[np.asarray(songs, dtype=np.int64)].T).astype(np.float32)

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        """(len(songs), dim) final item embeddings (zero for cold songs in MF / LightGCN)."""
        return self._items[np.asarray(songs, dtype=np.int64)]


def _validation(ctx: FitContext) -> tuple | None:
    """(users, songs, labels, mask) of split.valid, or None; never reads split.test."""
    split = ctx.split
    songs = np.asarray(split.valid_songs, dtype=np.int64)
    if len(songs) == 0 or split.valid is None:
        return None
    valid = split.valid.tocsr()[:, songs]
    users = np.flatnonzero(np.asarray((valid > 0).sum(axis=1)).ravel() > 0)
    if len(users) == 0:
        return None
    if len(users) > 2000:  # a fixed subsample keeps validation cheap
        users = np.sort(np.random.default_rng(0).choice(users, 2000, replace=False))
    labels = valid[users].toarray() > 0
    mask = split.train.tocsr()[users][:, songs].toarray() <= 0
    return users, songs, labels, mask


class MFBPR(BPRRecommender):
    """Matrix factorisation with BPR (Rendle et al. 2009): score = e_u . e_i.

    Cold songs have no trained embedding: pinned to zero, they all score 0.
    """

    name = "mf-bpr"
    description = "Matrix factorisation trained with BPR (Rendle et al. 2009); cold songs score 0"


@hookimpl
def recbench_register_recommenders(register):
    register(MFBPR)
