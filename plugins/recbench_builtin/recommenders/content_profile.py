"""`content-profile`: the content-only baseline (van den Oord et al. 2013's "user profile
in audio space"): a user is the mean audio vector of the songs they played in training,
and a song is scored by cosine similarity to it.

Audio vectors come from a backbone (default ``mel-stats``: per-band mean and std, no
learning), averaged over each song's consecutive windows, then standardised per dimension
with the mean and std of the training songs' vectors. torch is imported inside ``fit``.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.params import Param
from recbench_builtin._training import embed_songs, standardise_on_train, with_head

_EPS = 1e-12


class ContentProfile(Recommender):
    """Cosine between a user's mean training-song audio vector and each candidate's.

    Users without training plays, and songs without audio, have zero vectors and score 0.
    With a learnable backbone the network is left at its seeded random initialisation
    (a random-feature baseline): nothing here trains it.
    """

    name = "content-profile"
    description = "Content only: cosine of a song's audio vector to the user's mean played-song vector"
    consumes = ("interactions", "audio")
    params = (
        Param("backbone", str, "mel-stats", help="audio backbone (not trained)"),
        Param("backbone_params", dict, {}, help="parameters of the backbone"),
        Param("out_dim", int, 64, min=1, help="output size asked of a learnable backbone"),
        Param("weighting", str, "binary", choices=("binary", "counts"),
              help="profile = plain mean of played songs, or weighted by play counts"),
        Param("max_windows", int, None, min=1,
              help="at most this many windows per song (None = all)"),
    )

    def fit(self, ctx: FitContext) -> None:
        import torch

        o = self.options
        backbone = ctx.create("backbone", o["backbone"], **o["backbone_params"])
        feats = ctx.features(backbone.input_kind)
        torch.manual_seed(ctx.seed)
        net = with_head(backbone, feats.window, feats.n_channels, o["out_dim"], head="never")
        t0 = time.perf_counter()
        songs = np.arange(feats.n_songs, dtype=np.int64)
        vecs = embed_songs(net, feats, songs, torch.device(ctx.device),
                           max_windows=o["max_windows"]).astype(np.float64)
        embed_s = time.perf_counter() - t0

        has_audio = feats.lengths > 0
        vecs = standardise_on_train(vecs, has_audio, ctx.split.train_songs, _EPS)
        self.song_vectors = vecs.astype(np.float32)

        w = sp.csr_matrix(ctx.train, dtype=np.float64, copy=True)  # never alias the split
        w.eliminate_zeros()
        if o["weighting"] == "binary":
            w.data[:] = 1.0
        w = w.multiply(has_audio[None, :].astype(np.float64)).tocsr()  # songs we can hear
        total = np.asarray(w.sum(axis=1)).ravel()
        profiles = np.asarray(w @ vecs) / np.maximum(total, _EPS)[:, None]
        self.user_vectors = profiles.astype(np.float32)
        self._throughput = {"songs_embedded_per_s": len(songs) / max(embed_s, 1e-9)}

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32 cosine similarities (0 for zero vectors)."""
        u = self.user_vectors[np.asarray(users)]
        s = self.song_vectors[np.asarray(songs)]
        un = np.linalg.norm(u, axis=1, keepdims=True)
        sn = np.linalg.norm(s, axis=1, keepdims=True)
        return ((u / np.maximum(un, _EPS)) @ (s / np.maximum(sn, _EPS)).T).astype(np.float32)

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        """(len(songs), D) standardised audio vectors."""
        return self.song_vectors[np.asarray(songs)]


@hookimpl
def recbench_register_recommenders(register):
    register(ContentProfile)
