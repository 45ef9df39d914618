"""Weighted matrix factorisation (Hu, Koren & Volinsky 2008) and WMF + audio regression
(van den Oord, Dieleman & Schrauwen 2013).

- ``wmf``: implicit-feedback ALS through ``implicit``. On a cold-item split it is the
  paper's *WMF* row, a warm ORACLE: it factorises every interaction, held-out ones included
  (``uses_test_interactions = True``), so test songs have collaborative factors.
- ``wmf-regression``: honest cold start. WMF on the training interactions only, then an
  audio backbone regresses the training songs' item factors (MSE) from random 3-s crops; a
  song's vector is the mean of the predictions over its consecutive windows. The paper's
  *WMF+Regression* row.

Both binarise preference (p = 1 where a user played a song) and weight it with confidence
c = 1 + alpha * f(count), f per the ``counts`` param (raw / log1p / binary). Heavy imports
(implicit, torch, threadpoolctl) happen inside ``fit``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.errors import DataError
from recbench.params import Param
from recbench_builtin._training import (EarlyStopping, embed_songs, make_optimizer,
                                        validation_auc, validation_data, with_head)

# Defaults and their sources:
#   factors 40: the 40-dimensional latent space of van den Oord et al. 2013 ("Deep
#     content-based music recommendation", NeurIPS; the paper as read for commit 3eb5872);
#     the DCUE paper (Lee et al. 2018) does not give its WMF size.
#   alpha 40: Hu, Koren & Volinsky 2008 (the value they found to work, raw counts).
#   regularization 0.01, iterations 15, conjugate gradient: implicit's defaults (DCUE
#     used implicit and states no other values).
WMF_PARAMS = (
    Param("factors", int, 40, min=1, help="latent factors (van den Oord et al. 2013: 40)"),
    Param("regularization", float, 0.01, min=0.0, help="L2 weight (implicit's default)"),
    Param("iterations", int, 15, min=1, help="ALS sweeps (implicit's default)"),
    Param("alpha", float, 40.0, min=0.0,
          help="confidence c = 1 + alpha * f(count) (Hu et al. 2008: 40)"),
    Param("counts", str, "raw", choices=("raw", "log", "binary"),
          help="f(count): raw play count, log1p(count), or 1 for any play"),
    Param("use_cg", bool, True, help="conjugate-gradient solver (faster; implicit's default)"),
    Param("threads", int, 0, min=0, help="ALS threads (0 = the run's thread budget)"),
)


def confidence_matrix(counts: sp.spmatrix, alpha: float, mode: str) -> sp.csr_matrix:
    """Users x songs CSR float32 of confidences 1 + alpha * f(count) on played pairs.

    ``implicit`` treats every stored value as a confidence c with preference 1 (its
    solver weights a pair by c - 1 over the unobserved baseline of 1), so this matrix is
    passed to it with its own ``alpha`` left at 1.
    """
    m = sp.csr_matrix(counts, dtype=np.float32, copy=True)
    m.eliminate_zeros()
    if (m.data < 0).any():
        raise DataError("wmf: play counts must be non-negative")
    if mode == "binary":
        f = np.ones_like(m.data)
    elif mode == "log":
        f = np.log1p(m.data)
    else:
        f = m.data
    m.data = (1.0 + alpha * f).astype(np.float32)
    return m


def fit_wmf(counts: sp.spmatrix, options: dict[str, Any], seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Factorise `counts` (users x songs) with implicit's CPU ALS.

    Returns (user_factors (n_users, factors), item_factors (n_songs, factors)) float32.
    BLAS is limited to one thread during the fit, as implicit asks (its own threads
    parallelise over users; BLAS threads on top oversubscribe the cores).
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from recbench.threads import current_threads  # 0 threads: the run's budget

    conf = confidence_matrix(counts, options["alpha"], options["counts"])
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=options["factors"], regularization=options["regularization"],
            alpha=1.0, use_cg=options["use_cg"], iterations=options["iterations"],
            num_threads=options["threads"] or current_threads(), random_state=seed)
        model.fit(conf, show_progress=False)
    return (np.asarray(model.user_factors, dtype=np.float32),
            np.asarray(model.item_factors, dtype=np.float32))


class WMF(Recommender):
    """Weighted matrix factorisation on ALL interactions: the warm oracle.

    score(u, s) = user_factors[u] . item_factors[s]; item_vectors = item factors.
    """

    name = "wmf"
    description = "Weighted matrix factorisation (implicit ALS) on all interactions (warm oracle)"
    consumes = ("interactions", "test_interactions")
    uses_test_interactions = True
    params = WMF_PARAMS

    def fit(self, ctx: FitContext) -> None:
        self.user_factors, self.item_factors = fit_wmf(ctx.all_interactions, self.options,
                                                       ctx.seed)

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32 dot products of the factors."""
        return self.user_factors[np.asarray(users)] @ self.item_factors[np.asarray(songs)].T

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        """(len(songs), factors) item factors."""
        return self.item_factors[np.asarray(songs)]


class WMFRegression(Recommender):
    """WMF on the training interactions, then an audio backbone trained to regress the
    training songs' item factors (van den Oord et al. 2013; DCUE's *WMF+Regression*).

    Training: each epoch visits every training song that has audio and at least one
    training listener once, in random order, as one random crop (``feats.crops``); the
    target is its WMF item factor vector divided by the targets' overall std (a single
    scale, which leaves every user's ranking unchanged). Loss: the ``mse`` loss component.
    Prediction: a song's vector is the mean of the network's outputs over its consecutive
    windows (``feats.song_windows``), rescaled; score = user factors . predicted vector.
    Songs without audio get a zero vector (score 0). A non-learnable backbone (e.g.
    ``mel-stats``) gets a trained linear head, i.e. a linear regression on its features.
    The optimiser defaults to the DCUE paper's SGD with Nesterov momentum 0.9 and Keras-style
    learning-rate decay lr / (1 + decay * step), decay 1e-6.
    """

    name = "wmf-regression"
    description = "WMF on training data + audio CNN regressing item factors (van den Oord 2013)"
    consumes = ("interactions", "audio")
    uses_test_interactions = False
    params = WMF_PARAMS + (
        Param("backbone", str, "conv1d", help="audio backbone component name"),
        Param("backbone_params", dict, {}, help="parameters of the backbone"),
        Param("epochs", int, 20, min=1, help="passes over the training songs"),
        Param("batch_size", int, 32, min=1, help="crops per step"),
        Param("optimizer", str, "sgd", choices=("sgd", "adam"),
              help="sgd = SGD with Nesterov momentum 0.9 (DCUE paper) or adam"),
        Param("lr", float, 0.01, min=0.0, help="learning rate"),
        Param("lr_decay", float, 1e-6, min=0.0,
              help="Keras-style decay: lr / (1 + decay * step) (DCUE paper: 1e-6)"),
        Param("weight_decay", float, 0.0, min=0.0, help="L2 on the network weights"),
        Param("max_windows", int, None, min=1,
              help="at most this many windows per song when embedding (None = all)"),
        Param("embed_batch", int, 256, min=1, help="windows per forward pass when embedding"),
        Param("patience", int, None, min=1,
              help="early stopping: epochs without a better validation AUC (user factors . "
                   "predicted vectors of the validation songs) before stopping; the best "
                   "epoch's weights are kept (default: train all `epochs`)"),
    )

    def fit(self, ctx: FitContext) -> None:
        import torch

        o = self.options
        t_start = time.perf_counter()
        train = ctx.train
        self.user_factors, item_factors = fit_wmf(train, o, ctx.seed)
        wmf_s = time.perf_counter() - t_start

        backbone = ctx.create("backbone", o["backbone"], **o["backbone_params"])
        feats = ctx.features(backbone.input_kind)
        loss_fn = ctx.create("loss", "mse")

        listeners = np.asarray((train > 0).sum(axis=0)).ravel()
        songs = np.asarray(ctx.split.train_songs, dtype=np.int64)
        songs = songs[(listeners[songs] > 0) & (feats.lengths[songs] > 0)]
        if songs.size == 0:
            raise DataError(f"{self.name}: no training song has both audio and a listener")
        targets = item_factors[songs]
        self._scale = float(targets.std()) or 1.0
        targets = torch.from_numpy(targets / self._scale)

        torch.manual_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        device = torch.device(ctx.device)
        net = with_head(backbone, feats.window, feats.n_channels, o["factors"],
                        head="trainable").to(device)
        params = [p for p in net.parameters() if p.requires_grad]
        opt, sched = make_optimizer(o["optimizer"], params, o["lr"], o["lr_decay"],
                                    momentum=0.9, nesterov=True,
                                    weight_decay=o["weight_decay"])

        bs = o["batch_size"]
        n_examples, t_train = 0, time.perf_counter()
        self.losses: list[float] = []
        self.valid_aucs: list[float] = []
        valid = validation_data(ctx.split) if o["patience"] is not None else None
        stopper = EarlyStopping(o["patience"] or 1)
        for _epoch in ctx.progress(range(o["epochs"]), total=o["epochs"], desc=self.name):
            net.train()
            order = rng.permutation(len(songs))
            total, batches = 0.0, 0
            for start in range(0, len(order), bs):
                idx = order[start:start + bs]
                if len(idx) < 2 and len(order) > 1:
                    continue  # BatchNorm cannot train on a batch of one
                x = torch.from_numpy(feats.crops(songs[idx], rng)).to(device)
                loss = loss_fn(net(x), targets[idx].to(device))
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach())
                batches += 1
                n_examples += len(idx)
            self.losses.append(total / max(batches, 1))
            if valid is not None:
                v = embed_songs(net, feats, valid[1], device, o["embed_batch"],
                                o["max_windows"])
                auc = validation_auc(self.user_factors[valid[0]] @ v.T, valid)
                self.valid_aucs.append(auc)
                stopper.update(_epoch + 1, auc, net.state_dict)
                if stopper.should_stop:
                    break
        if valid is not None:
            stopper.restore(net.load_state_dict)
            net.eval()
        self.stopping = ({"best_epoch": stopper.best_epoch or len(self.losses),
                          "best_valid_auc": stopper.best if stopper.improved_once else None,
                          "stopped_by": stopper.stop_reason or "epochs"}
                         if valid is not None else {})
        train_s = time.perf_counter() - t_train

        t_embed = time.perf_counter()
        all_songs = np.arange(feats.n_songs, dtype=np.int64)
        self.item_factors = embed_songs(net, feats, all_songs, device, o["embed_batch"],
                                        o["max_windows"]) * self._scale
        embed_s = time.perf_counter() - t_embed
        self._throughput = {
            "train_examples_per_s": n_examples / max(train_s, 1e-9),
            "songs_embedded_per_s": len(all_songs) / max(embed_s, 1e-9),
        }
        self.timing = {"wmf_fit_s": wmf_s, "train_s": train_s, "embed_s": embed_s}

    def fit_report(self) -> dict[str, Any]:
        """The regression's loss per epoch and the time of each fit stage (seconds)."""
        out = {"losses": list(getattr(self, "losses", [])),
               "timing": dict(getattr(self, "timing", {}))}
        if getattr(self, "valid_aucs", None):
            out.update(valid_auc=list(self.valid_aucs), **getattr(self, "stopping", {}))
        return out

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32: user factors . predicted item factors."""
        return self.user_factors[np.asarray(users)] @ self.item_factors[np.asarray(songs)].T

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        """(len(songs), factors) predicted item factors."""
        return self.item_factors[np.asarray(songs)]


@hookimpl
def recbench_register_recommenders(register):
    register(WMF)
    register(WMFRegression)
