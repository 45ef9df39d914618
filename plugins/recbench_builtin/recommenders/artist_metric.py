"""Artist embeddings learnt from audio (seed 001: Royo-Letelier, Hennequin, Tran and
Moussallam, "Disambiguating music artists at scale with audio metric learning", ISMIR 2018).

Both models train an audio backbone (``conv1d`` by default) over random log-mel windows
of the TRAINING songs, using only their artist labels (``song_categories["artist"]``);
a song's vector is the mean of the network's outputs over its consecutive windows
(``_training.embed_songs``). Under the ``cold-artist`` split the test songs' artists are
unseen, as in the paper; under ``cold-item`` other songs of a test song's artist may be
training songs.

- ``artist-triplet`` (the paper's system, section 3, "metric learning"): triplets (anchor,
  positive, negative) of windows of training songs, the positive another song of the
  anchor's artist, the negative a song of another artist; loss on L2-normalised
  embeddings ``max(0, ||a - p||^2 - ||a - n||^2 + margin)`` (the triplet loss of Schroff
  et al. 2015 the paper uses; margin 0.2 by default, Schroff et al.'s value; random
triplets, no hard mining). ``negatives = "same-genre"``: the paper's negative sampling
  with side information (section 3, "negative sampling": negatives drawn among the songs
  of the anchor's genre, ``song_categories["genre"]``, so that they are harder than
  random ones); ``"random"``: any other artist's song.
- ``artist-classifier`` (the comparison system of the paper, after Park et al. 2017):
  the same backbone and embedding layer followed by a linear softmax layer over the
  training artists, cross-entropy; the embedding layer (the penultimate one) is the
  song vector.

Early stopping watches the verification AUC (same artist vs not, cosine) of the
validation songs' vectors, over all their pairs or (``valid_pairs = "same-genre"``) over
the pairs of one genre, the within-genre disambiguation the paper targets. ``score`` (so
that the models run in recommendation suites) is content-profile-style: the cosine
between a song's vector and the user's mean vector of the songs they played in training.
``item_vectors`` gives the song embeddings (what the ``artist-clustering`` task
evaluates).
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
from recbench_builtin._training import (EarlyStopping, autocast, embed_songs, make_optimizer,
                                        with_head)

_EPS = 1e-12


# ----------------------------------------------------------------------- loss and sampling


def triplet_loss(anchor: Any, positive: Any, negative: Any, margin: float) -> Any:
    """Mean over rows of max(0, ||a - p||^2 - ||a - n||^2 + margin), rows L2-normalised
    first (torch tensors (B, D))."""
    import torch.nn.functional as F

    a, p, n = (F.normalize(t.float(), dim=1) for t in (anchor, positive, negative))
    d_pos = ((a - p) ** 2).sum(1)
    d_neg = ((a - n) ** 2).sum(1)
    return F.relu(d_pos - d_neg + margin).mean()


class ArtistTriplets:
    """Draws (anchor, positive, negative) song triplets from songs with artist labels.

    `songs`: the candidate songs; `artist`, `genre`: codes per song of the dataset (genre
    may be None for ``negatives="random"``). Anchors are songs whose artist has at least
    two candidate songs; the positive is another song of that artist; the negative a song
    of another artist, of the anchor's genre for ``"same-genre"`` (any other artist's song
    when the anchor's genre holds no other artist). With ``"same-genre"``, each negative is
    drawn from the anchor's genre with probability `same_genre_share` (1: always) and from
    every other artist's songs otherwise.
    """

    def __init__(self, songs: np.ndarray, artist: np.ndarray, genre: np.ndarray | None,
                 negatives: str = "same-genre", same_genre_share: float = 1.0):
        if negatives not in ("same-genre", "random"):
            raise ValueError(f"negatives must be 'same-genre' or 'random', got {negatives!r}")
        if negatives == "same-genre" and genre is None:
            raise ValueError("same-genre negatives need a genre per song")
        self.negatives = negatives
        self.share = float(same_genre_share)
        self.artist = np.asarray(artist, dtype=np.int64)
        self.genre = None if genre is None else np.asarray(genre, dtype=np.int64)
        self.songs = np.asarray(songs, dtype=np.int64)
        codes = self.artist[self.songs]
        uniq, counts = np.unique(codes, return_counts=True)
        self.by_artist = {int(a): self.songs[codes == a] for a in uniq}
        self.anchors = self.songs[np.isin(codes, uniq[counts >= 2])]
        if len(self.anchors) == 0 or len(uniq) < 2:
            raise ValueError("triplets need 2+ artists and an artist with 2+ songs")
        self.by_genre: dict[int, np.ndarray] = {}
        if self.genre is not None:
            g = self.genre[self.songs]
            self.by_genre = {int(k): self.songs[g == k] for k in np.unique(g)}

    def positives(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Another song of each anchor's artist."""
        out = np.empty(len(anchors), dtype=np.int64)
        for i, s in enumerate(anchors):
            pool = self.by_artist[int(self.artist[s])]
            j = int(rng.integers(len(pool) - 1))
            out[i] = pool[j] if pool[j] != s else pool[-1]  # skip s: uniform over the others
        return out

    def negative_pool(self, anchor: int, same_genre: bool = True) -> np.ndarray:
        """The songs a negative for `anchor` is drawn from (another artist's songs; of the
        anchor's genre for same-genre sampling when that genre has another artist)."""
        a = self.artist[anchor]
        if self.negatives == "same-genre" and same_genre:
            pool = self.by_genre.get(int(self.genre[anchor]), self.songs[:0])
            pool = pool[self.artist[pool] != a]
            if len(pool):
                return pool
        return self.songs[self.artist[self.songs] != a]

    def negatives_for(self, anchors: np.ndarray, rng: np.random.Generator,
                      tries: int = 20) -> np.ndarray:
        """One negative per anchor (rejection sampling from the pool, exact fallback)."""
        out = np.empty(len(anchors), dtype=np.int64)
        in_genre = (rng.random(len(anchors)) < self.share if self.negatives == "same-genre"
                    else np.zeros(len(anchors), bool))
        for i, s in enumerate(anchors):
            a = self.artist[s]
            pool = (self.by_genre.get(int(self.genre[s]), self.songs[:0])
                    if in_genre[i] else self.songs)
            for _ in range(tries if len(pool) else 0):
                c = pool[rng.integers(len(pool))]
                if self.artist[c] != a:
                    out[i] = c
                    break
            else:
                exact = self.negative_pool(int(s), bool(in_genre[i]))
                out[i] = exact[rng.integers(len(exact))]
        return out

    def sample(self, n: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`n` triplets (anchors, positives, negatives) of song ids."""
        anchors = self.anchors[rng.integers(len(self.anchors), size=n)]
        return anchors, self.positives(anchors, rng), self.negatives_for(anchors, rng)


def labelled_songs(ctx: FitContext, key: str, songs: np.ndarray, has_audio: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(songs with audio and a known `key` code, the dataset's codes of every song)."""
    cats = getattr(ctx.dataset, "song_categories", None) or {}
    if key not in cats:
        raise DataError(f"dataset {ctx.dataset.name!r} has no song category {key!r} "
                        f"(synth-msd: set artist_style_strength)")
    codes = np.asarray(cats[key], dtype=np.int64)
    songs = np.asarray(songs, dtype=np.int64)
    return songs[(codes[songs] >= 0) & has_audio[songs]], codes


# ------------------------------------------------------------------------------ the models

_PARAMS = (
    Param("backbone", str, "conv1d", help="audio backbone plugin"),
    Param("backbone_params", dict, {}, help="parameters of the backbone plugin"),
    Param("dim", int, 32, min=1, help="embedding size"),
    Param("optimizer", str, "adam", choices=("adam", "sgd"), help="optimiser"),
    Param("lr", float, 1e-3, min=0.0, help="learning rate"),
    Param("batch_size", int, 32, min=1, help="triplets (or windows) per step"),
    Param("steps_per_epoch", int, 50, min=1, help="steps between validations"),
    Param("max_epochs", int, 10, min=1, help="at most this many epochs"),
    Param("patience", int, 3, min=1,
          help="epochs without a better validation verification AUC before stopping"),
    Param("artist_category", str, "artist", help="song category holding the artist"),
    Param("max_windows", int, None, min=1,
          help="windows averaged per song vector (default: all of the song)"),
    Param("amp", bool, False, help="mixed precision (bf16/fp16 autocast)"),
    Param("valid_pairs", str, "all", choices=("all", "same-genre"),
          help="validation AUC over all pairs of validation songs, or only the pairs "
               "sharing a genre (genre_category; the within-genre disambiguation)"),
    Param("genre_category", str, "genre", help="song category holding the genre"),
)


class _ArtistEmbedding(Recommender):
    """Shared fit: backbone, training loop with early stopping, song vectors, profiles."""

    consumes = ("interactions", "audio")
    has_item_vectors = True
    params = _PARAMS

    def _setup(self, ctx: FitContext, train: np.ndarray, artist: np.ndarray) -> list:
        """Build what the loss needs; return the extra trainable modules."""
        raise NotImplementedError

    def _step_loss(self, rng: np.random.Generator) -> Any:
        """One batch's loss (a torch scalar)."""
        raise NotImplementedError

    def _windows(self, songs: np.ndarray, rng: np.random.Generator) -> Any:
        import torch

        return torch.from_numpy(self._feats.crops(songs, rng)).to(self._device)

    def fit(self, ctx: FitContext) -> None:
        import torch

        from recbench_builtin.tasks.artist_clustering import verification_auc

        o = self.options
        torch.manual_seed(ctx.seed)
        rng = np.random.default_rng(ctx.seed)
        self._device = torch.device(ctx.device)
        backbone = ctx.create("backbone", o["backbone"], **o["backbone_params"])
        self._feats = feats = ctx.features(backbone.input_kind)
        has_audio = feats.lengths > 0
        train, artist = labelled_songs(ctx, o["artist_category"], ctx.split.train_songs,
                                       has_audio)
        self.net = with_head(backbone, feats.window, feats.n_channels, o["dim"]).to(self._device)
        extra = self._setup(ctx, train, artist)
        params = [p for m in [self.net, *extra] for p in m.parameters() if p.requires_grad]
        opt, sched = make_optimizer(o["optimizer"], params, o["lr"])
        valid, _ = labelled_songs(ctx, o["artist_category"], ctx.split.valid_songs, has_audio)
        v_rng = np.random.default_rng(0)
        v_groups = None
        if o["valid_pairs"] == "same-genre":
            _, genre = labelled_songs(ctx, o["genre_category"], valid, has_audio)
            v_groups = genre[valid]
        stopper, history, steps = EarlyStopping(o["patience"]), [], 0
        t0 = time.perf_counter()
        for epoch in range(1, o["max_epochs"] + 1):
            self.net.train()
            total = 0.0
            for _ in range(o["steps_per_epoch"]):
                with autocast(self._device, o["amp"]):
                    loss = self._step_loss(rng)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                total += float(loss.detach())
                steps += 1
            auc = float("nan")
            if len(np.unique(artist[valid])) >= 2:
                v = embed_songs(self.net, feats, valid, self._device,
                                max_windows=o["max_windows"]).astype(np.float64)
                v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), _EPS)
                auc = verification_auc(v, artist[valid], 20_000, v_rng, v_groups)
            history.append({"epoch": epoch, "loss": total / o["steps_per_epoch"],
                            "valid_verification_auc": auc})
            stopper.update(epoch, auc, self.net.state_dict)
            if stopper.should_stop:
                break
        train_s = time.perf_counter() - t0
        stopper.restore(self.net.load_state_dict)
        t1 = time.perf_counter()
        vecs = embed_songs(self.net, feats, np.arange(feats.n_songs), self._device,
                           max_windows=o["max_windows"]).astype(np.float64)
        embed_s = time.perf_counter() - t1
        vecs[~has_audio] = 0.0
        self.song_vectors = vecs.astype(np.float32)
        self.user_vectors = self._profiles(ctx.train, vecs, has_audio)
        self.history = history
        self.fit_info = {"epochs": len(history), "best_epoch": stopper.best_epoch,
                         "stop_reason": stopper.stop_reason or "max_epochs",
                         "train_songs": int(len(train)),
                         "train_artists": int(len(np.unique(artist[train])))}
        self._throughput = {
            "train_examples_per_s": steps * o["batch_size"] / max(train_s, 1e-9),
            "songs_embedded_per_s": feats.n_songs / max(embed_s, 1e-9)}

    @staticmethod
    def _profiles(train: Any, vecs: np.ndarray, has_audio: np.ndarray) -> np.ndarray:
        """Each user's mean L2-normalised vector of the audible songs played in training."""
        unit = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), _EPS)
        w = sp.csr_matrix(train, dtype=np.float64, copy=True)
        w.eliminate_zeros()
        w.data[:] = 1.0
        w = w.multiply(has_audio[None, :].astype(np.float64)).tocsr()
        total = np.asarray(w.sum(axis=1)).ravel()
        return (np.asarray(w @ unit) / np.maximum(total, _EPS)[:, None]).astype(np.float32)

    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """(len(users), len(songs)) float32 cosine of each song's vector with the user's
        profile (content-profile style; 0 for zero vectors)."""
        u = self.user_vectors[np.asarray(users, dtype=np.int64)]
        s = self.song_vectors[np.asarray(songs, dtype=np.int64)]
        un = np.linalg.norm(u, axis=1, keepdims=True)
        sn = np.linalg.norm(s, axis=1, keepdims=True)
        return ((u / np.maximum(un, _EPS)) @ (s / np.maximum(sn, _EPS)).T).astype(np.float32)

    def item_vectors(self, songs: np.ndarray) -> np.ndarray:
        """(len(songs), dim) song embeddings (window means)."""
        return self.song_vectors[np.asarray(songs, dtype=np.int64)]

    def fit_report(self) -> dict[str, Any]:
        """`fit_info` plus the per-epoch history (loss, validation verification AUC)."""
        return {**getattr(self, "fit_info", {}), "history": list(getattr(self, "history", []))}


class ArtistTriplet(_ArtistEmbedding):
    """Audio metric learning of artists: triplet loss, same-genre (or random) negatives."""

    name = "artist-triplet"
    description = ("Artist metric learning from audio (Royo-Letelier et al. 2018): triplet "
                   "loss, same-genre negatives")
    params = _PARAMS + (
        Param("margin", float, 0.2, min=0.0, help="triplet margin (squared distances)"),
        Param("negatives", str, "same-genre", choices=("same-genre", "random"),
              help="negatives from the anchor's genre (the paper's side information) or "
                   "from any other artist"),
        Param("same_genre_share", float, 1.0, min=0.0, max=1.0,
              help="with same-genre negatives: the share drawn from the anchor's genre "
                   "(the others from any other artist)"),
    )

    def _setup(self, ctx: FitContext, train: np.ndarray, artist: np.ndarray) -> list:
        o = self.options
        genre = None
        if o["negatives"] == "same-genre":
            _, genre = labelled_songs(ctx, o["genre_category"], train,
                                      np.ones(ctx.dataset.n_songs, bool))
            train = train[genre[train] >= 0]
        try:
            self._triplets = ArtistTriplets(train, artist, genre, o["negatives"],
                                            o["same_genre_share"])
        except ValueError as e:
            raise DataError(f"artist-triplet: training songs: {e}") from None
        return []

    def _step_loss(self, rng: np.random.Generator) -> Any:
        a, p, n = self._triplets.sample(self.options["batch_size"], rng)
        out = self.net(self._windows(np.concatenate([a, p, n]), rng))
        b = len(a)
        return triplet_loss(out[:b], out[b:2 * b], out[2 * b:], self.options["margin"])


class ArtistClassifier(_ArtistEmbedding):
    """Artist classification from audio; the penultimate (embedding) layer is the vector."""

    name = "artist-classifier"
    description = ("Artist classifier from audio (softmax over training artists); "
                   "penultimate layer as embedding")

    def _setup(self, ctx: FitContext, train: np.ndarray, artist: np.ndarray) -> list:
        import torch
        from torch import nn

        uniq, labels = np.unique(artist[train], return_inverse=True)
        if len(uniq) < 2:
            raise DataError("artist-classifier: fewer than 2 artists among training songs")
        self._train, self._labels = train, labels.astype(np.int64)
        self._head = nn.Sequential(nn.ReLU(), nn.Linear(self.options["dim"], len(uniq)))
        self._head.to(self._device)
        self._ce = torch.nn.CrossEntropyLoss()
        return [self._head]

    def _step_loss(self, rng: np.random.Generator) -> Any:
        import torch

        pick = rng.integers(len(self._train), size=self.options["batch_size"])
        logits = self._head(self.net(self._windows(self._train[pick], rng)))
        y = torch.from_numpy(self._labels[pick]).to(self._device)
        return self._ce(logits.float(), y)


@hookimpl
def recbench_register_recommenders(register):
    register(ArtistTriplet)
    register(ArtistClassifier)
