"""Deezer's semi-personalised user cold start (Briand et al., KDD 2021, arXiv:2106.03819).

Following Sec. 3 of the paper (the deployed system):

1. **Warm users' embeddings**: a collaborative model of the warm users' listening; the
   paper uses the embeddings of Deezer's production factorisation, here WMF (implicit
   ALS, Hu et al. 2008) on the training interactions. Warm users are those with more
   training songs than the k a new user reveals.
2. **Embedding prediction**: a feed-forward network (ReLU hidden layers, dropout) maps a
   user's registration features (``Dataset.user_features``, standardised) and demographics
   (one-hot ``user_categories``), and, when k > 0, their first interactions (the mean WMF
   vector of their first k songs and the share of k they have), to the warm embedding
   space; trained on warm users with a mean squared error against their WMF factors (warm
   users' inputs are built the same way, from their own first k songs), early-stopped on
   a held-out 10% of them.
3. **Semi-personalisation**: k-means on the warm users' embeddings; a new user is assigned
   the cluster whose centroid is nearest to their predicted embedding and gets that
   cluster's most popular songs (songs ranked by the share of the cluster's warm users who
   played them; the global popularity breaks ties).

``deezer-semi`` is that system; ``deezer-personal`` is the paper's fully personalised
comparison: score = predicted embedding . WMF song factors, no clustering. With no side
information and k = 0 the input is empty: every user gets the same prediction (the mean
warm embedding), i.e. one cluster's popularity, as it should.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext
from recbench.params import Param
from recbench_builtin._training import EarlyStopping, make_optimizer
from recbench_builtin.recommenders._users import (UsesMixin, first_songs, listeners,
                                                  revealed_k, side_matrix)
from recbench_builtin.recommenders.wmf import WMF_PARAMS, fit_wmf


def assign_clusters(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (squared Euclidean distance) of each row of `x`."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    d = (x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None, :]
    return np.argmin(d, axis=1)


def _wmf_params(factors: int) -> tuple[Param, ...]:
    return tuple(Param(p.name, p.type, factors if p.name == "factors" else p.default, p.help,
                       p.choices, p.min, p.max) for p in WMF_PARAMS)


_PARAMS = _wmf_params(32) + (
    Param("revealed", int, None, "k, the first songs of a new user used as input (unset: the "
          "split's `revealed`, else 0)", min=0),
    Param("use_features", bool, True, "read the registration features (user_features)"),
    Param("use_categories", bool, True, "read the demographics (user_categories)"),
    Param("hidden", int, 128, "units per hidden layer", min=1),
    Param("layers", int, 2, "hidden layers", min=0, max=6),
    Param("dropout", float, 0.1, "dropout after each hidden layer", min=0.0, max=0.9),
    Param("lr", float, 1e-3, "Adam learning rate", gt=0.0),
    Param("weight_decay", float, 1e-5, "Adam L2 weight decay", min=0.0),
    Param("batch_size", int, 256, "users per step", min=1),
    Param("max_epochs", int, 200, "epochs over the warm users", min=1),
    Param("patience", int, 10, "epochs without a better validation MSE before stopping",
          min=1),
)


class DeezerSemiPersonalised(UsesMixin):
    """The deployed Deezer system: predicted embedding -> nearest k-means cluster -> the
    cluster's most popular songs (Briand et al. 2021, Sec. 3)."""

    name = "deezer-semi"
    description = ("Deezer user cold start: features + first songs -> embedding -> k-means "
                   "cluster's top songs (Briand et al. 2021)")
    consumes = ("interactions",)
    side_info: ClassVar[tuple[str, ...]] = ("user_features", "user_categories", "events")
    personalised: ClassVar[bool] = False
    params = _PARAMS + (
        Param("clusters", int, 40, "k-means clusters of warm users (the paper: 1000 for "
              "millions of users)", min=1),
    )

    def fit(self, ctx: FitContext) -> None:
        import torch

        from recbench_builtin.splits_users import first_play_time

        o, t_start = self.options, time.perf_counter()
        train = ctx.train.tocsr()
        self.k = revealed_k(ctx.split, o["revealed"])
        self.user_factors, self.item_factors = fit_wmf(train, o, ctx.seed)
        n_known = np.diff(train.indptr)
        warm = np.flatnonzero(n_known > self.k)
        x = self._inputs(ctx, train, first_play_time(ctx.dataset))
        self._x = x
        rng = np.random.default_rng(ctx.seed)
        torch.manual_seed(ctx.seed)
        device = torch.device(ctx.device)
        self._net = self._build(x.shape[1], self.user_factors.shape[1]).to(device)
        self._mean_x = x[warm].mean(0) if len(warm) else np.zeros(x.shape[1], np.float32)
        self._std_x = x[warm].std(0) + 1e-6 if len(warm) else np.ones(x.shape[1], np.float32)
        history, stopper, seen, train_s = self._train(x, warm, rng, device)
        self._net.eval()
        with torch.no_grad():
            self.pred = self._predict(torch, x, device)
        self._global = listeners(train, warm)
        if not self.personalised:
            self._cluster(warm, train, ctx.seed)
        ds = ctx.dataset
        self._side_used = [name for name, on in (
            ("user_features", o["use_features"] and ds.user_features is not None),
            ("user_categories", o["use_categories"] and bool(ds.user_categories)),
            ("events", self.k > 0 and ds.events is not None)) if on]
        self.history = history
        self.fit_info = {"epochs": len(history), "best_epoch": stopper.best_epoch,
                         "best_valid_mse": -stopper.best if stopper.improved_once else None,
                         "stopped_by": stopper.stop_reason or "max_epochs",
                         "warm_users": int(len(warm)), "revealed_k": self.k,
                         "input_dims": int(x.shape[1]), "fit_s": time.perf_counter() - t_start}
        self._throughput = {"train_examples_per_s": seen / train_s if train_s > 0 else
                            float("inf")}

    # ------------------------------------------------------------------ parts

    def _inputs(self, ctx: FitContext, train, times) -> np.ndarray:
        """Users x D: side information, then (k > 0) the first songs' mean vector and count."""
        o = self.options
        side, _ = side_matrix(ctx.dataset, o["use_features"], o["use_categories"])
        parts = [side]
        if self.k > 0:
            first = first_songs(train, self.k, times, ctx.seed)
            n = np.asarray(first.sum(axis=1)).ravel()
            mean = (first @ self.item_factors) / np.maximum(n, 1)[:, None]
            parts += [mean, (n / self.k)[:, None]]
        return np.hstack(parts).astype(np.float32) if parts else side

    def _build(self, d_in: int, d_out: int):
        import torch.nn as nn

        o, layers, width = self.options, [], d_in
        for _ in range(o["layers"]):
            layers += [nn.Linear(max(width, 1), o["hidden"]), nn.ReLU(), nn.Dropout(o["dropout"])]
            width = o["hidden"]
        layers.append(nn.Linear(max(width, 1), d_out))
        return nn.Sequential(*layers)

    def _tensor(self, torch, x: np.ndarray, device):
        z = (x - self._mean_x) / self._std_x
        if z.shape[1] == 0:  # no input at all: a constant, so the net learns the mean
            z = np.zeros((len(x), 1), np.float32)
        return torch.as_tensor(z, dtype=torch.float32, device=device)

    def _predict(self, torch, x: np.ndarray, device) -> np.ndarray:
        out = [self._net(self._tensor(torch, x[i:i + 4096], device)).float().cpu().numpy()
               for i in range(0, len(x), 4096)]
        return np.vstack(out) if out else np.zeros((0, self.user_factors.shape[1]), np.float32)

    def _train(self, x, warm, rng, device):
        import torch

        o = self.options
        perm = rng.permutation(warm)
        n_val = max(1, len(perm) // 10) if len(perm) > 10 else 0
        val, fit_users = perm[:n_val], perm[n_val:]
        y = torch.as_tensor(self.user_factors, dtype=torch.float32, device=device)
        opt, _ = make_optimizer("adam", list(self._net.parameters()), o["lr"],
                                weight_decay=o["weight_decay"])
        stopper, history, seen, train_s = EarlyStopping(o["patience"]), [], 0, 0.0
        for epoch in range(1, o["max_epochs"] + 1 if len(fit_users) else 1):
            self._net.train()
            t0, total = time.perf_counter(), 0.0
            order = rng.permutation(fit_users)
            for i in range(0, len(order), o["batch_size"]):
                b = order[i:i + o["batch_size"]]
                loss = torch.nn.functional.mse_loss(
                    self._net(self._tensor(torch, x[b], device)), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(b)
                seen += len(b)
            train_s += time.perf_counter() - t0
            entry = {"epoch": epoch, "loss": total / max(len(order), 1)}
            if n_val:
                self._net.eval()
                with torch.no_grad():
                    mse = float(torch.nn.functional.mse_loss(
                        self._net(self._tensor(torch, x[val], device)), y[val]))
                entry["valid_mse"] = mse
                stopper.update(epoch, -mse, self._net.state_dict)
            history.append(entry)
            if stopper.should_stop:
                break
        stopper.restore(self._net.load_state_dict)
        return history, stopper, seen, train_s

    def _cluster(self, warm: np.ndarray, train, seed: int) -> None:
        """k-means on the warm embeddings; each cluster's song popularity."""
        from sklearn.cluster import KMeans

        emb = self.user_factors[warm] if len(warm) else self.pred[:1]
        n_clusters = int(min(self.options["clusters"], max(len(emb), 1)))
        km = KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit(emb)
        self.centroids = km.cluster_centers_.astype(np.float64)
        labels = km.labels_ if len(warm) else np.zeros(0, dtype=int)
        pop = np.zeros((n_clusters, train.shape[1]))
        for c in range(n_clusters):
            members = warm[labels == c]
            if len(members):
                pop[c] = listeners(train, members) / len(members)
        g = self._global / max(self._global.max(), 1.0)
        self.cluster_scores = (pop + 1e-6 * g[None, :]).astype(np.float32)
        self.user_cluster = assign_clusters(self.pred, self.centroids)

    # ------------------------------------------------------------------ scoring

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """The predicted cluster's song popularity (deezer-semi) or the predicted
        embedding's dot product with the song factors (deezer-personal)."""
        users, songs = np.asarray(users), np.asarray(songs)
        if self.personalised:
            return (self.pred[users] @ self.item_factors[songs].T).astype(np.float32)
        return self.cluster_scores[self.user_cluster[users]][:, songs]

    def uses(self) -> list[str]:
        """What this fit read: interactions plus the side parts present and switched on
        (events only to order the first k > 0 songs)."""
        return ["interactions"] + list(getattr(self, "_side_used", self.side_info))

    def fit_report(self) -> dict[str, Any]:
        """Fit facts, the per-epoch history and what the model read (``uses``)."""
        return {**super().fit_report(), "history": list(getattr(self, "history", []))}


class DeezerPersonalised(DeezerSemiPersonalised):
    """The fully personalised mapping without clustering: predicted embedding . WMF song
    factors (the paper's personalised comparison to its semi-personalised system)."""

    name = "deezer-personal"
    description = ("Deezer mapping without clustering: features + first songs -> embedding "
                   ". song factors")
    personalised = True
    params = _PARAMS


@hookimpl
def recbench_register_recommenders(register):
    register(DeezerSemiPersonalised)
    register(DeezerPersonalised)
