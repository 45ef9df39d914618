"""Siamese audio metric learning for new releases (seed 000: "a user embedding from
listening history and demographics; an audio embedding trained with metric learning with
Siamese networks on the audio of the user's liked and disliked tracks; for a new track,
the users (or user groups) whose embedding is most similar").

``siamese-audio``:

- user side: a fixed description of each user, ``[history factors, demographics]``: the
  history factors are the user factors of a WMF (implicit ALS, ``history_factors``) fitted
  on the training plays only; demographics are the dataset's ``user_features``
  (standardised) and one-hot ``user_categories`` when the dataset has them and
  ``demographics`` is on. A small MLP (``user_hidden``) maps it into the shared space;
- audio side: an audio backbone (``conv1d`` by default) over 3-s windows, a song's vector
  the mean over its windows (as DCUE, ``_training.embed_songs``);
- objective: the triplet (anchor = user, positive = a liked track's audio, negative = a
  disliked track's audio) hinge on cosine similarities, ``max(0, margin - cos(u, a+) +
  cos(u, a-))``; both towers share one space (the Siamese audio branch is applied to the
  liked and the disliked track with the same weights). Liked = played in training.
  Disliked (``dislikes``): ``"unplayed"``: a song not played, drawn by the ``sampler``
  (DCUE's uniform default; the suites use ``popularity``: popular songs the user did not
  play are the informative dislikes); ``"skipped"``: the explicit dislikes of the
  listening log (``dataset.events``, synth-msd with ``skip_strength``): a training song
  the user skipped and never played in training, ``negatives`` of them drawn uniformly
  per pair from that user's skips (the ``sampler`` for a user without one). Only training
  songs' events are read (a new release's skips are held-out data). A skip is one user's
  dislike, so it needs ``shared_negatives = false``.

The training loop, early stopping, negatives and song embedding are DCUE's
(``dcue._TwoTower``): only the user tower differs (a history/demographics MLP instead of an
id embedding), installed through the ``_build_items`` hook, which ``fit`` calls right after
building the default user tower. Ranking users for a new song (the ``new-release`` task)
is the cosine of the song's audio vector with every user vector.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext
from recbench.errors import ConfigError, DataError
from recbench.params import Param
from recbench_builtin.recommenders.dcue import DCUE
from recbench_builtin.recommenders.wmf import WMF_PARAMS, fit_wmf


def user_descriptions(ctx: FitContext, factors: int, demographics: bool, seed: int
                      ) -> np.ndarray:
    """(n_users, F) float32: WMF user factors of the training plays (scaled to unit std),
    then standardised user_features and one-hot user_categories when asked and present."""
    wmf_opts = {p.name: p.default for p in WMF_PARAMS}
    wmf_opts.update(factors=factors, threads=1)
    users, _ = fit_wmf(ctx.train, wmf_opts, seed)
    parts = [users / (users.std() or 1.0)]
    ds = ctx.dataset
    if demographics:
        uf = getattr(ds, "user_features", None)
        if uf is not None:
            uf = np.asarray(uf, dtype=np.float64)
            parts.append((uf - uf.mean(0)) / np.where(uf.std(0) > 0, uf.std(0), 1.0))
        for key in sorted(getattr(ds, "user_categories", None) or {}):
            codes = np.asarray(ds.user_categories[key], dtype=np.int64)
            onehot = np.zeros((len(codes), int(codes.max()) + 2), dtype=np.float32)
            onehot[np.arange(len(codes)), codes + 1] = 1.0  # column 0: unknown (-1)
            parts.append(onehot)
    return np.concatenate(parts, axis=1).astype(np.float32)


def skipped_dislikes(events: Any, train: Any, songs: np.ndarray, n_users: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(indptr (n_users + 1,), songs): per user, the sorted distinct songs among `songs`
    they skipped in `events` and never played in `train` (CSR layout)."""
    songs = np.asarray(songs, dtype=np.int64)
    n_cols = int(train.shape[1])
    ok = np.zeros(n_cols, dtype=bool)
    ok[songs] = True
    skip = np.asarray(events.skipped, dtype=bool) & ok[np.asarray(events.song)]
    keys = np.unique(np.asarray(events.user, np.int64)[skip] * n_cols
                     + np.asarray(events.song, np.int64)[skip])
    coo = train.tocoo()
    played = np.unique(coo.row[coo.data > 0].astype(np.int64) * n_cols
                       + coo.col[coo.data > 0].astype(np.int64))
    keys = keys[~np.isin(keys, played)]
    user, song = keys // n_cols, keys % n_cols
    indptr = np.r_[0, np.cumsum(np.bincount(user, minlength=n_users))].astype(np.int64)
    return indptr, song


class SkipSampler:
    """Negatives from each user's skipped songs (uniform, with replacement); users without
    one get the wrapped `fallback` sampler's draws."""

    def __init__(self, indptr: np.ndarray, songs: np.ndarray, fallback: Any):
        self.indptr, self.songs, self.fallback = indptr, songs, fallback

    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator,
               scorer: Any = None) -> np.ndarray:
        """Song indices (len(users), n)."""
        users = np.asarray(users, dtype=np.int64)
        lo, hi = self.indptr[users], self.indptr[users + 1]
        has = hi > lo
        out = np.empty((len(users), n), dtype=np.int64)
        if has.any():
            pick = lo[has, None] + (rng.random((int(has.sum()), n))
                                    * (hi - lo)[has, None]).astype(np.int64)
            out[has] = self.songs[pick]
        if (~has).any():
            out[~has] = self.fallback.sample(users[~has], n, rng, scorer)
        return out


def _feature_tower(x: np.ndarray, hidden: list[int], dim: int) -> Any:
    """A module mapping user ids to MLP(x[ids]) (x a fixed buffer)."""
    import torch
    from torch import nn

    class FeatureTower(nn.Module):
        """User ids -> MLP over their fixed description row."""

        def __init__(self):
            super().__init__()
            self.register_buffer("x", torch.from_numpy(x))
            layers, width = [], x.shape[1]
            for h in hidden:
                layers += [nn.Linear(width, h), nn.ReLU()]
                width = h
            layers.append(nn.Linear(width, dim))
            self.mlp = nn.Sequential(*layers)

        def forward(self, ids):
            return self.mlp(self.x[ids])

    return FeatureTower()


class SiameseAudio(DCUE):
    """User (history + demographics) vs audio embeddings, triplet hinge on cosine."""

    name = "siamese-audio"
    description = ("Siamese audio metric learning for new releases: history/demographics "
                   "user embedding vs audio, triplet hinge")
    consumes = ("interactions", "audio")
    params = DCUE.params + (
        Param("history_factors", int, 32, min=1,
              help="WMF user factors describing the listening history"),
        Param("demographics", bool, True,
              help="append user_features / user_categories when the dataset has them"),
        Param("dislikes", str, "unplayed", choices=("unplayed", "skipped"),
              help="the disliked tracks: songs not played (the sampler's) or the user's "
                   "skipped training songs (needs events and shared_negatives = false)"),
    )

    def _build_items(self, ctx: FitContext) -> Any:
        o = self.options
        x = user_descriptions(ctx, o["history_factors"], o["demographics"], int(ctx.seed))
        self.n_user_inputs = int(x.shape[1])
        self._user_net = _feature_tower(x, list(o["user_hidden"]), o["dim"]).to(self._device)
        net = super()._build_items(ctx)
        self._skips = None
        if o["dislikes"] == "skipped":
            self._skips = self._skip_table(ctx)
        return net

    def _skip_table(self, ctx: FitContext) -> tuple[np.ndarray, np.ndarray]:
        """The users' skipped training songs (with audio), checked usable."""
        if self.options["shared_negatives"]:
            raise ConfigError("siamese-audio: dislikes = 'skipped' needs shared_negatives = "
                              "false (a skip is one user's dislike)",
                              key="models.siamese-audio.shared_negatives")
        events = getattr(ctx.dataset, "events", None)
        if events is None:
            raise DataError(f"siamese-audio: dislikes = 'skipped' needs listening events; "
                            f"dataset {ctx.dataset.name!r} has none (synth-msd: set "
                            f"skip_strength)")
        songs = np.asarray(ctx.split.train_songs, dtype=np.int64)
        songs = songs[self._feats.lengths[songs] > 0]
        indptr, skipped = skipped_dislikes(events, ctx.train, songs, ctx.dataset.n_users)
        self.n_users_with_skips = int((np.diff(indptr) > 0).sum())
        return indptr, skipped

    def _step(self, users: np.ndarray, pos: np.ndarray, sampler: Any, scorer: Any,
              rng: np.random.Generator, opt: Any, scaler: Any) -> float:
        if self._skips is not None:
            sampler = SkipSampler(*self._skips, sampler)
        return super()._step(users, pos, sampler, scorer, rng, opt, scaler)

    def fit_report(self) -> dict[str, Any]:
        """DCUE's report plus the width of the user description."""
        return {**super().fit_report(), "user_inputs": getattr(self, "n_user_inputs", None),
                "dislikes": self.options["dislikes"],
                "users_with_skips": getattr(self, "n_users_with_skips", None)}


@hookimpl
def recbench_register_recommenders(register):
    register(SiameseAudio)
