"""Collaborative metric learning (Hsieh et al., WWW 2017) with pluggable negative sampling,
incl. the 2-stage sampling of Tran, Sweeney & Lee (SIGIR 2019).

``cml``: every user and every song is a point in R^dim; the relevance of a song for a user
is minus their squared Euclidean distance (section 3.1). Training pulls the played songs
closer than any other song by a margin: for each (user, played song) pair and K sampled
negatives the loss is ``w * sum_k [margin + d(u, i)^2 - d(u, k)^2]_+`` (eq. 3), with the
WARP-style rank weight ``w = log(1 + floor(J * M / K))``, J songs, M the impostors among
the K (eq. 4, ``rank_weight``); ``reduction = "hardest"`` keeps the closest negative only
(as the authors' code does). Points are kept in the unit ball by clipping after each step
(eq. 5, ``clip``); with ``sphere`` every point is L2-normalised where it is used, so
d^2 = 2 - 2 cos (the authors' code, models/triplet.py ``activate_l2_norm``, on in their
2-stage run, experiments/exp_echonest.sh). The optional covariance regulariser
de-correlates the dimensions (section 3.4, ``cov_weight``; 0 = off). Feature projection
(section 3.3) is not implemented: CML here is the interactions-only model (warm protocol).

Negatives come from a sampler plugin (``sampler``): ``uniform`` (CML), or ``two-stage``
(Tran et al. 2019, section 3): a candidate pool of ``pool_size`` songs drawn for the batch
by popularity (``first_stage = "popularity"``, listeners ** 0.75), then per pair the
``negatives`` most informative ones. ``informativeness = "distance-weighted"`` is the
paper's second stage (and the authors' code): for each (user, positive song) pair, draw
without replacement with probability ~ q(d)^-1, d the distance between the positive song
and the candidate on the unit sphere (Wu et al. 2017; sampler ``selection = "sample"``);
``"user-distance"`` keeps the candidates closest to the user (hardest negatives, with
``selection = "top"``); ``"none"`` picks from the pool at random (the second stage off). With ``shared_negatives`` one
draw serves the whole batch (as in-batch negatives do: the number of negatives a pair sees
then grows with the batch); the 2-stage pool is always shared.

Defaults and their sources: margin 0.5 and dim 64 (our choices; the paper grid-searches
both), clipping on, rank weight on (paper), covariance weight 0 (optional in the paper),
Adam lr 0.01 (the authors' code uses Adagrad 0.1; Adam converged as far in fewer epochs
here), batch 256 pairs, 10 uniform negatives per pair, early stopping on the validation
AUC (patience 3).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.errors import ConfigError, DataError
from recbench.params import Param
from recbench_builtin._training import EarlyStopping, make_optimizer

from . import _metric as M

CML_PARAMS = (
    Param("dim", int, 64, min=1, help="dimension of the user and song points"),
    Param("margin", float, 0.5, min=0.0, help="hinge margin on squared distances"),
    Param("clip", bool, True, help="keep every point in the unit ball (paper eq. 5)"),
    Param("sphere", bool, False,
          help="L2-normalise every point where it is used: distances on the unit sphere "
               "(the authors' activate_l2_norm of their 2-stage run)"),
    Param("rank_weight", bool, True,
          help="weight a pair by log(1 + J M / K), M impostors among K negatives (eq. 4)"),
    Param("reduction", str, "sum", choices=("sum", "hardest"),
          help="sum the hinge over negatives (eq. 3) or keep the closest one"),
    Param("cov_weight", float, 0.0, min=0.0,
          help="weight of the covariance regulariser (section 3.4; 0 = off)"),
    Param("negatives", int, 10, min=1, help="negatives per positive pair (K)"),
    Param("shared_negatives", bool, False,
          help="one draw of K negatives for the whole batch (the 2-stage pool is shared)"),
    Param("sampler", str, "uniform", help="negative sampler plugin (uniform, two-stage...)"),
    Param("sampler_params", dict, {}, help="parameters of the sampler plugin"),
    Param("informativeness", str, "user-distance",
          choices=("user-distance", "distance-weighted", "none"),
          help="2-stage scores: -d(user, song)^2, log q^-1 of the positive-song distance, "
               "or none (all 0: the second stage picks at random, its knob at 0)"),
    Param("batch_size", int, 256, min=1, help="positive pairs per step"),
    Param("optimizer", str, "adam", choices=("sgd", "adam"), help="optimiser"),
    Param("lr", float, 0.01, min=0.0, help="learning rate"),
    Param("max_epochs", int, 30, min=1, help="at most this many epochs"),
    Param("steps_per_epoch", int, None, min=1,
          help="steps between validations (default: one pass over the training pairs)"),
    Param("patience", int, 3, min=1,
          help="epochs without a better validation AUC before stopping"),
    Param("max_minutes", float, None, min=0.0, help="training time budget (None = none)"),
    Param("valid_users", int, None, min=1,
          help="validate on a fixed random subset of this many users (None = all)"),
)


class CML(Recommender):
    """Collaborative metric learning: users and songs as points, score = -distance^2."""

    name = "cml"
    description = "Collaborative metric learning (Hsieh et al. 2017), uniform or 2-stage negatives"
    consumes = ("interactions",)
    uses_test_interactions = False
    has_item_vectors = True
    params = CML_PARAMS
    sphere_ok: bool = True  # subclasses with other distances refuse ``sphere``

    # ------------------------------------------------------------------ model hooks

    def _build(self, ctx: FitContext, gen: Any) -> list[Any]:
        """Create the trainable tensors; returns the parameter list."""
        import torch

        d = self.options["dim"]
        self._users = torch.nn.Parameter(M.init_points(ctx.dataset.n_users, d, gen))
        self._items = torch.nn.Parameter(M.init_points(ctx.dataset.n_songs, d, gen))
        return [self._users, self._items]

    def _to(self, device: Any) -> None:
        import torch

        self._users = torch.nn.Parameter(self._users.data.to(device))
        self._items = torch.nn.Parameter(self._items.data.to(device))

    def _points(self, table: Any, idx: Any) -> Any:
        """Rows `idx` of a point table, L2-normalised when ``sphere`` is on."""
        x = table[idx]
        if self.options["sphere"]:
            import torch

            return torch.nn.functional.normalize(x, dim=-1)
        return x

    def _distances(self, users: Any, pos: Any, neg: Any) -> tuple[Any, Any]:
        """(d_pos (B,), d_neg (B, K)) squared distances for index tensors; negatives shared
        by the batch (every row of `neg` the same) take one matrix product."""
        u = self._points(self._users, users)
        d_pos = M.sq_distances(u, self._points(self._items, pos))
        if getattr(self, "_shared_now", False):
            return d_pos, M.pairwise_sq_distances(u, self._points(self._items, neg[0]))
        return d_pos, M.sq_distances(u, self._points(self._items, neg))

    def _extra_loss(self, users: Any, pos: Any, neg: Any) -> Any:
        """The covariance regulariser over the batch's points (None when off)."""
        w = self.options["cov_weight"]
        if w <= 0:
            return None
        import torch

        pts = torch.cat([self._points(self._users, users), self._points(self._items, pos),
                         self._points(self._items, neg.reshape(-1))])
        return w * M.covariance_penalty(pts)

    def _clip(self) -> None:
        """Every point back into the unit ball (all rows: Adam's momentum moves rows that
        were not in the batch too)."""
        if self.options["clip"]:
            M.clip_rows_(self._users.data)
            M.clip_rows_(self._items.data)

    def _pool_scores(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """-distance^2 of (users, songs) without gradients: the 2-stage sampler's scorer."""
        import torch

        with torch.no_grad():
            u = self._points(self._users, torch.from_numpy(np.asarray(users)).to(self._device))
            v = self._points(self._items, torch.from_numpy(np.asarray(songs)).to(self._device))
            return (-M.sq_distances(u, v)).float().cpu().numpy()

    def _distance_weights(self, anchors: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(anchors), len(songs)) log-weights of the distance-weighted second stage
        (Tran et al. 2019, section 3, after Wu et al., ICCV 2017): see
        :func:`_metric.distance_weighted_log_weights` on the songs' points."""
        import torch

        with torch.no_grad():
            a = self._items[torch.from_numpy(np.asarray(anchors)).to(self._device)]
            v = self._items[torch.from_numpy(np.asarray(songs)).to(self._device)]
            return M.distance_weighted_log_weights(a, v).double().cpu().numpy()

    # ------------------------------------------------------------------ training

    def fit(self, ctx: FitContext) -> None:
        """Train on ctx.train; early stopping on the validation AUC (never reads test)."""
        import torch

        o = self.options
        if o["sphere"] and not self.sphere_ok:
            raise ConfigError(f"model {self.name}: sphere = true is a CML option; this model's "
                              "distances do not normalise points", key="models")
        train = ctx.train.tocsr()
        pair_users, pair_songs = M.positive_pairs(train)
        if len(pair_users) == 0:
            raise DataError(f"{self.name}: no training interactions")
        songs = np.asarray(ctx.split.train_songs, dtype=np.int64)
        sampler = ctx.create("sampler", o["sampler"], **o["sampler_params"])
        sampler.prepare(train, songs)
        self._n_items = len(songs)
        self._device = torch.device(ctx.device)
        gen = torch.Generator().manual_seed(int(ctx.seed))
        torch.manual_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        self._build(ctx, gen)
        self._to(self._device)
        params = self._parameters()
        opt, _sched = make_optimizer(o["optimizer"], params, o["lr"])
        self._optimizer = opt
        self._prepare_training(ctx, train)

        valid = M.validation_data(ctx.split, max_users=o["valid_users"])
        stopper = EarlyStopping(o["patience"])
        bs, k = o["batch_size"], o["negatives"]
        steps = o["steps_per_epoch"] or max(1, len(pair_users) // bs)
        history: list[dict[str, Any]] = []
        seen, t0 = 0, time.perf_counter()
        uses_scorer = getattr(sampler, "name", "") == "two-stage"
        for epoch in ctx.progress(range(1, o["max_epochs"] + 1), total=o["max_epochs"],
                                  desc=self.name):
            total = 0.0
            for _ in range(steps):
                idx = rng.integers(0, len(pair_users), size=bs)
                u_np, p_np = pair_users[idx], pair_songs[idx]
                neg_np = self._negatives(sampler, u_np, p_np, k, rng, uses_scorer)
                total += self._step(u_np, p_np, neg_np, opt)
                seen += bs
            entry: dict[str, Any] = {"epoch": epoch, "loss": total / steps}
            if o["max_minutes"] is not None and time.perf_counter() - t0 > 60 * o["max_minutes"]:
                stopper.stop("max_minutes")
            if valid is not None:
                auc = M.valid_auc(self._score_np, valid)
                entry["valid_auc"] = auc
                stopper.update(epoch, auc, self._snapshot)
            history.append(entry)
            if stopper.should_stop:
                break
        train_s = time.perf_counter() - t0
        stopper.restore(self._restore)
        self.history = history
        self.fit_info = {"epochs": len(history),
                         "best_epoch": stopper.best_epoch or len(history),
                         "best_valid_auc": stopper.best if stopper.improved_once else None,
                         "steps": len(history) * steps,
                         "stopped_by": stopper.stop_reason or "max_epochs",
                         "train_pairs": int(len(pair_users))}
        self._throughput = {"train_examples_per_s": seen / train_s if train_s > 0 else
                            float("inf")}
        self._finish()

    def _step(self, users: np.ndarray, pos: np.ndarray, neg: np.ndarray, opt: Any) -> float:
        """One optimiser step on B (user, played song) pairs and their (B, K) negatives
        (int64 arrays): metric loss (+ regulariser), backward, step, clipping. Returns the
        loss."""
        import torch

        o = self.options
        self._shared_now = bool(len(neg) > 1 and (neg == neg[:1]).all())
        u, p, n = (torch.from_numpy(a).to(self._device) for a in (users, pos, neg))
        d_pos, d_neg = self._distances(u, p, n)
        loss = M.cml_hinge(d_pos, d_neg, o["margin"], self._n_items,
                           rank_weight=o["rank_weight"], reduction=o["reduction"])
        extra = self._extra_loss(u, p, n)
        if extra is not None:
            loss = loss + extra
        opt.zero_grad()
        loss.backward()
        opt.step()
        self._clip()
        return float(loss.detach())

    def _negatives(self, sampler: Any, users: np.ndarray, pos: np.ndarray, k: int,
                   rng: np.random.Generator, uses_scorer: bool) -> np.ndarray:
        """(B, K) int64 negatives for the batch's (user, positive song) pairs."""
        if uses_scorer:
            if self.options["informativeness"] == "distance-weighted":
                return sampler.sample(users, k, rng, self._distance_weights, anchors=pos)
            if self.options["informativeness"] == "none":
                return sampler.sample(users, k, rng, _no_information)
            return sampler.sample(users, k, rng, self._pool_scores)
        if self.options["shared_negatives"]:
            return np.broadcast_to(sampler.sample(users[:1], k, rng), (len(users), k)).copy()
        return sampler.sample(users, k, rng)

    def _parameters(self) -> list[Any]:
        return [self._users, self._items]

    def _prepare_training(self, ctx: FitContext, train: Any) -> None:
        """Hook for subclasses (item histories...)."""

    def _snapshot(self) -> Any:
        return [p.detach().clone() for p in self._parameters()]

    def _restore(self, state: Any) -> None:
        for p, s in zip(self._parameters(), state):
            p.data.copy_(s)

    def _finish(self) -> None:
        """After training: cache numpy copies of the points for scoring."""
        every = slice(None)
        self._u_np = self._points(self._users.detach(), every).float().cpu().numpy()
        self._v_np = self._points(self._items.detach(), every).float().cpu().numpy()

    # ------------------------------------------------------------------ scoring

    def _score_np(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """-distance^2 from the live tensors (validation during training)."""
        return self._pool_scores(users, songs)

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32: minus the squared distances."""
        u = self._u_np[np.asarray(users)].astype(np.float64)
        v = self._v_np[np.asarray(songs)].astype(np.float64)
        d = (u * u).sum(1)[:, None] - 2.0 * u @ v.T + (v * v).sum(1)[None, :]
        return (-np.maximum(d, 0.0)).astype(np.float32)

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        """(len(songs), dim) the songs' points."""
        return self._v_np[np.asarray(songs)]

    def fit_report(self) -> dict[str, Any]:
        """`fit_info` plus the per-epoch history (training loss, validation AUC)."""
        return {**getattr(self, "fit_info", {}), "history": list(getattr(self, "history", []))}


def _no_information(rows: np.ndarray, songs: np.ndarray) -> np.ndarray:
    """All-zero 2-stage scores: with selection = "sample" the pool is subsampled at random
    (the informative second stage switched off)."""
    return np.zeros((len(rows), len(songs)))


@hookimpl
def recbench_register_recommenders(register):
    register(CML)
