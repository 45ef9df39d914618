"""The two-tower training shared by ``dcue`` and ``dcue-item-index`` (see :mod:`.dcue`).

- ``_COMMON``: the parameters of both models (user tower, loss, negatives, optimiser,
  budget);
- :func:`_mlp_tower`: embedding lookup + fully connected layers (the user side, and the
  item side of the item-index ablation), with PyTorch's or the authors' (Keras) initial
  weights;
- :class:`_TwoTower`: training of a user tower against an item tower with cosine relevance
  and a ranking loss over sampled negatives, early stopping on validation AUC, scoring.

torch is imported inside the functions so that this module imports cheaply.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from recbench.components import FitContext, Recommender
from recbench.errors import ConfigError, DataError
from recbench.params import Param
from recbench_builtin._training import (EarlyStopping, amp_dtype, autocast, make_optimizer,
                                        validation_data)

_COMMON = (
    Param("dim", int, 256, min=1, help="size of the user and song feature vectors"),
    Param("user_embedding_dim", int, 256, min=1, help="size of the user embedding lookup"),
    Param("user_hidden", list, [256], item_type=int, min=1,
          help="widths of the fully connected layers between the user embedding and the "
               "feature vector layer (the authors' tower: user_embedding_dim = 300, "
               "user_hidden = [300], dim = 256)"),
    Param("user_init", str, "torch", choices=("torch", "keras"),
          help="initial weights of the user tower: PyTorch's defaults, or the authors' "
               "Keras ones (embedding U(-0.05, 0.05), glorot_uniform dense, zero biases)"),
    Param("loss", str, "hinge", help="loss plugin (ranking: pos vs negatives; a regression "
                                     "loss gets target 1 for the positive, 0 for negatives)"),
    Param("margin", float, 0.2, min=0.0,
          help="passed to losses that take a margin (paper: 0.2)"),
    Param("loss_params", dict, {}, help="other parameters of the loss plugin"),
    Param("negatives", int, 20, min=1, help="negative songs per positive (paper: 20)"),
    Param("sampler", str, "uniform", help="negative sampler plugin"),
    Param("sampler_params", dict, {}, help="parameters of the sampler plugin"),
    Param("shared_negatives", bool, False,
          help="draw one set of negatives for the whole batch (far fewer audio windows "
               "per step)"),
    Param("optimizer", str, "sgd", choices=("sgd", "adam"),
          help="sgd = SGD with Nesterov momentum (paper), or adam"),
    Param("lr", float, 0.1, min=0.0, help="learning rate of the item (audio) side"),
    Param("user_lr", float, None, min=0.0,
          help="learning rate of the user side (default: lr)"),
    Param("momentum", float, 0.9, min=0.0, max=1.0, help="Nesterov momentum for sgd (paper)"),
    Param("lr_decay", float, 1e-6, min=0.0,
          help="Keras-style decay: lr / (1 + lr_decay * step) (paper: 1e-6)"),
    Param("weight_decay", float, 0.0, min=0.0, help="L2 penalty on all weights"),
    Param("batch_size", int, 32, min=1, help="(user, positive song) pairs per step"),
    Param("max_epochs", int, 100, min=1, help="most epochs"),
    Param("steps_per_epoch", int, None, min=1,
          help="steps between validations (default: one pass over the training pairs)"),
    Param("patience", int, 5, min=1,
          help="epochs without a better validation AUC before stopping"),
    Param("max_minutes", float, None, min=0.0,
          help="stop training after this many minutes (the best epoch is kept)"),
    Param("amp", bool, False,
          help="mixed precision: bf16 autocast on CPU; on CUDA bf16 if supported, else fp16"),
    Param("embed_batch", int, 256, min=1, help="windows per forward pass when embedding"),
)


def _mlp_tower(n_rows: int, emb_dim: int, hidden: list[int], dim: int, nn: Any,
               init: str = "torch") -> Any:
    """Embedding lookup -> ReLU -> (Linear -> ReLU) per hidden width -> Linear(dim).

    ReLU follows every layer but the last (the feature vector), as in the paper; the
    lookup counts as the first layer of the user side (section 2). The authors' user model
    (jongpillee/deep-content-user ``model.py``) is emb_dim 300, hidden [300], dim
    256 with ``init = "keras"``: embedding U(-0.05, 0.05), glorot_uniform dense layers,
    zero biases (Keras defaults); ``"torch"`` keeps PyTorch's (embedding N(0, 1)).
    """
    layers = [nn.Embedding(n_rows, emb_dim), nn.ReLU()]
    width = emb_dim
    for h in hidden:
        if h < 1:
            raise ConfigError(f"expected positive layer widths, got {hidden}",
                              key="user_hidden")
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, dim))
    if init == "keras":
        nn.init.uniform_(layers[0].weight, -0.05, 0.05)
        for layer in layers:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


class _TwoTower(Recommender):
    """Shared training of a user tower against an item tower with cosine relevance.

    Subclasses define the item side: `_build_items`, `_item_input` (a batch of songs to the
    item tower's input), `_embed_songs` (final song vectors) and the training data.
    """

    params = _COMMON

    # ------------------------------------------------------------------ subclass hooks

    def _build_items(self, ctx: FitContext) -> Any:
        raise NotImplementedError

    def _item_input(self, songs: np.ndarray, rng: np.random.Generator) -> Any:
        raise NotImplementedError

    def _embed_songs(self, songs: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _training_matrix(self, ctx: FitContext) -> Any:
        raise NotImplementedError

    def _training_songs(self, ctx: FitContext) -> np.ndarray:
        raise NotImplementedError

    def _release(self) -> None:
        """Free what only training needs (called at the end of `fit`)."""

    # ------------------------------------------------------------------ fit

    def fit(self, ctx: FitContext) -> None:
        """Train both towers on (user, played song) pairs with sampled negatives; early-stop
        on the mean per-user AUC over the validation songs; cache the test songs' vectors."""
        import torch

        o = self.options
        self._device = torch.device(ctx.device)
        self._amp = o["amp"]
        self._amp_dtype = amp_dtype(ctx.device)
        torch.manual_seed(int(ctx.seed))
        rng = np.random.default_rng(int(ctx.seed))
        self._n_songs = ctx.dataset.n_songs
        self._song_cache = np.zeros((self._n_songs, o["dim"]), dtype=np.float32)
        self._song_cached = np.zeros(self._n_songs, dtype=bool)

        self._user_net = _mlp_tower(ctx.dataset.n_users, o["user_embedding_dim"],
                                    o["user_hidden"], o["dim"], torch.nn,
                                    o["user_init"]).to(self._device)
        self._item_net = self._build_items(ctx).to(self._device)

        loss_fn = ctx.create("loss", o["loss"], **o["loss_params"])
        if "margin" not in o["loss_params"] and any(p.name == "margin" for p in loss_fn.params):
            loss_fn = ctx.create("loss", o["loss"], **{**o["loss_params"],
                                                       "margin": o["margin"]})
        self._loss = loss_fn
        train = self._training_matrix(ctx)
        songs = self._training_songs(ctx)
        sampler = ctx.create("sampler", o["sampler"], **o["sampler_params"])
        sampler.prepare(train, songs)

        # Training pairs: every (user, song) with a play, restricted to songs with inputs.
        coo = train.tocoo()
        keep = np.zeros(self._n_songs, dtype=bool)
        keep[songs] = True
        ok = (coo.data > 0) & keep[coo.col]
        pair_users = coo.row[ok].astype(np.int64)
        pair_songs = coo.col[ok].astype(np.int64)
        if len(pair_users) == 0:
            raise DataError(f"recommender.{self.name}: no training interactions on songs "
                            "with usable inputs")

        user_params = list(self._user_net.parameters())
        item_params = [p for p in self._item_net.parameters() if p.requires_grad]
        user_lr = o["user_lr"] if o["user_lr"] is not None else o["lr"]
        groups = [{"params": user_params, "lr": user_lr}]
        if item_params:
            groups.append({"params": item_params, "lr": o["lr"]})
        opt, sched = make_optimizer(o["optimizer"], groups, o["lr"], o["lr_decay"],
                                    momentum=o["momentum"], weight_decay=o["weight_decay"])
        scaler = None
        if self._amp and self._device.type == "cuda" and self._amp_dtype is torch.float16:
            scaler = torch.amp.GradScaler("cuda")

        valid = self._validation_data(ctx)
        n_pairs = len(pair_users)
        steps = o["steps_per_epoch"] or math.ceil(n_pairs / o["batch_size"])
        deadline = (time.perf_counter() + 60.0 * o["max_minutes"]
                    if o["max_minutes"] is not None else math.inf)
        scorer = self._scorer(rng)
        history: list[dict[str, float]] = []
        stopper = EarlyStopping(o["patience"])
        order, cursor = rng.permutation(n_pairs), 0
        train_s, pairs_seen, total_steps = 0.0, 0, 0
        for epoch in ctx.progress(range(1, o["max_epochs"] + 1), total=o["max_epochs"],
                                  desc=self.name):
            self._user_net.train()
            self._item_net.train()
            t0 = time.perf_counter()
            loss_sum, done = 0.0, 0
            for _ in range(steps):
                if cursor + o["batch_size"] > n_pairs and cursor > 0:
                    order, cursor = rng.permutation(n_pairs), 0
                idx = order[cursor:cursor + o["batch_size"]]
                cursor += len(idx)
                loss = self._step(pair_users[idx], pair_songs[idx], sampler, scorer, rng,
                                  opt, scaler)
                sched.step()
                loss_sum += loss
                done += 1
                pairs_seen += len(idx)
                total_steps += 1
                if time.perf_counter() > deadline:
                    stopper.stop("max_minutes")
                    break
            train_s += time.perf_counter() - t0
            entry = {"epoch": epoch, "loss": loss_sum / max(1, done)}
            if valid is not None:
                auc = self._valid_auc(valid)
                entry["valid_auc"] = auc
                stopper.update(epoch, auc, lambda: (self._user_net.state_dict(),
                                                    self._item_net.state_dict()))
            history.append(entry)
            self._song_cached[:] = False
            if stopper.should_stop:
                break
        stopper.restore(self._load_state)
        self._release()
        self._user_net.eval()
        self._item_net.eval()
        self._song_cached[:] = False
        with torch.no_grad():
            users = torch.arange(ctx.dataset.n_users, device=self._device)
            self._user_vecs = self._normalise(self._user_net(users).float()).cpu().numpy()

        # Cache the test songs' vectors now: scoring then costs one matrix product, and the
        # time gives an honest embedding throughput.
        test = np.asarray(ctx.split.test_songs, dtype=np.int64)
        t0 = time.perf_counter()
        self.item_vectors(test)
        embed_s = time.perf_counter() - t0
        self.history = history
        self.fit_info = {"epochs": len(history),
                         "best_epoch": stopper.best_epoch or len(history),
                         "best_valid_auc": stopper.best if stopper.improved_once else None,
                         "steps": total_steps,
                         "stopped_by": stopper.stop_reason or "max_epochs",
                         "train_pairs": n_pairs}
        self._throughput = {
            "train_examples_per_s": pairs_seen / train_s if train_s > 0 else float("inf"),
            "songs_embedded_per_s": len(test) / embed_s if embed_s > 0 else float("inf"),
        }

    def fit_report(self) -> dict[str, Any]:
        """`fit_info` plus the per-epoch history (training loss, validation AUC)."""
        return {**getattr(self, "fit_info", {}), "history": list(getattr(self, "history", []))}

    def _load_state(self, state: tuple[dict, dict]) -> None:
        self._user_net.load_state_dict(state[0])
        self._item_net.load_state_dict(state[1])

    def _autocast(self) -> Any:
        return autocast(self._device, self._amp, self._amp_dtype)

    @staticmethod
    def _normalise(x: Any) -> Any:
        import torch.nn.functional as F

        return F.normalize(x, dim=-1, eps=1e-8)

    def _step(self, users: np.ndarray, pos: np.ndarray, sampler: Any, scorer: Any,
              rng: np.random.Generator, opt: Any, scaler: Any) -> float:
        """One optimisation step on a batch of (user, positive song) pairs."""
        import torch

        o = self.options
        b, k = len(users), o["negatives"]
        shared = o["shared_negatives"]
        neg = sampler.sample(users[:1] if shared else users, k, rng, scorer)
        items = np.concatenate([pos, neg.ravel()])
        x = self._item_input(items, rng)
        u_idx = torch.from_numpy(users).to(self._device, non_blocking=True)
        with self._autocast():
            u = self._user_net(u_idx)
            v = self._item_net(x)
        # Cosine in float32 whatever the autocast dtype: the margins are small.
        u = self._normalise(u.float())
        v = self._normalise(v.float())
        pos_s = (u * v[:b]).sum(dim=1)
        if shared:
            neg_s = u @ v[b:].T  # (B, K)
        else:
            neg_s = torch.bmm(v[b:].view(b, k, -1), u.unsqueeze(2)).squeeze(2)
        if self._loss.ranking:
            loss = self._loss(pos_s, neg_s)
        else:
            pred = torch.cat([pos_s[:, None], neg_s], dim=1)
            target = torch.zeros_like(pred)
            target[:, 0] = 1.0
            loss = self._loss(pred, target)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        return float(loss.detach())

    def _scorer(self, rng: np.random.Generator) -> Any:
        """scorer(users, songs) -> (U, S) cosine scores with the current weights (one random
        window per song), for model-aware samplers such as two-stage."""
        import torch

        def scorer(users: np.ndarray, songs: np.ndarray) -> np.ndarray:
            was = self._item_net.training
            self._item_net.eval()
            self._user_net.eval()
            try:
                with torch.no_grad(), self._autocast():
                    u = self._user_net(torch.from_numpy(np.asarray(users, dtype=np.int64))
                                       .to(self._device))
                    v = self._item_net(self._item_input(np.asarray(songs, dtype=np.int64),
                                                        rng))
                out = self._normalise(u.float()) @ self._normalise(v.float()).T
            finally:
                self._item_net.train(was)
                self._user_net.train(was)
            return out.cpu().numpy()

        return scorer

    # ------------------------------------------------------------------ validation

    def _validation_data(self, ctx: FitContext) -> tuple | None:
        """(users, songs, labels, mask) for early stopping on split.valid, or None when
        no user has a validation interaction (`_training.validation_data`)."""
        return validation_data(ctx.split)

    def _valid_auc(self, valid: tuple) -> float:
        """Mean over validation users of the per-user ROC AUC of the validation songs."""
        import torch

        from recbench.metrics import roc_auc_per_user

        users, songs, labels, mask = valid
        self._user_net.eval()
        self._item_net.eval()
        s = self._normalise(torch.from_numpy(self._embed_songs(songs))).numpy()
        with torch.no_grad():
            u = self._normalise(self._user_net(
                torch.from_numpy(users).to(self._device)).float()).cpu().numpy()
        aucs = np.asarray(roc_auc_per_user(u @ s.T, labels, mask), dtype=float)
        self._user_net.train()
        self._item_net.train()
        return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")

    # ------------------------------------------------------------------ scoring

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        """Song vectors (len(songs), dim) float32 (not normalised), computed once and cached."""
        songs = np.asarray(songs, dtype=np.int64)
        todo = np.unique(songs[~self._song_cached[songs]])
        if len(todo):
            self._song_cache[todo] = self._embed_songs(todo)
            self._song_cached[todo] = True
        return self._song_cache[songs].copy()

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """Cosine relevance (len(users), len(songs)) float32 of user and song vectors."""
        s = self.item_vectors(songs)
        s = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-8)
        return (self._user_vecs[np.asarray(users, dtype=np.int64)] @ s.T).astype(np.float32)
