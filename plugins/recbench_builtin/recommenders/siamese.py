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
  liked and the disliked track with the same weights). Liked = played in training;
  disliked = not played (drawn by the ``sampler``; DCUE's uniform default, the suites use
  ``popularity``: popular songs the user did not play are the informative dislikes).
  Skipped tracks (synth-msd events) as explicit dislikes are not used yet.

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
    )

    def _build_items(self, ctx: FitContext) -> Any:
        o = self.options
        x = user_descriptions(ctx, o["history_factors"], o["demographics"], int(ctx.seed))
        self.n_user_inputs = int(x.shape[1])
        self._user_net = _feature_tower(x, list(o["user_hidden"]), o["dim"]).to(self._device)
        return super()._build_items(ctx)

    def fit_report(self) -> dict[str, Any]:
        """DCUE's report plus the width of the user description."""
        return {**super().fit_report(), "user_inputs": getattr(self, "n_user_inputs", None)}


@hookimpl
def recbench_register_recommenders(register):
    register(SiameseAudio)
