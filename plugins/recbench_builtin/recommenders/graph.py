"""Item content features and kNN item-item graphs (shared by LATTICE and DLRM).

- :func:`content_features`: per-song feature matrices by modality name: ``"audio"`` is the
  mean over a song's consecutive windows of an untrained audio backbone's output (default
  ``mel-stats``: per-band mean and std of the log-mel), standardised with the training
  songs' mean and std; any other name is ``dataset.modalities[name]`` (e.g. synth-msd's
  ``"tokens"`` counts), rows scaled to sum 1 (term frequencies). Songs without audio get a
  zero audio vector.
- :func:`cosine_similarity`, :func:`knn_sparsify`, :func:`sym_normalise`: the graph steps of
  LATTICE (Zhang et al., ACM MM 2021, section 3.1, eqs. 1-3): S_ij = cos(e_i, e_j); keep
  each row's top-k entries (the row's own item included, as the authors' code does, and
  negative similarities clamped to 0 so degrees are positive); A = D^-1/2 S D^-1/2 with
  D the row sums (rows without mass stay 0). Dense torch tensors: n_songs x n_songs, meant
  for catalogues of a few thousand songs.

torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from recbench.errors import ConfigError

_EPS = 1e-12


def available_modalities(ctx: Any) -> list[str]:
    """"audio" (always: the runner provides features when the dataset has audio) followed
    by the dataset's second modalities in name order."""
    return ["audio"] + sorted(getattr(ctx.dataset, "modalities", {}) or {})


def audio_vectors(ctx: Any, backbone: str = "mel-stats", backbone_params: dict | None = None,
                  max_windows: int | None = None) -> np.ndarray:
    """(n_songs, D) float32 window-averaged backbone outputs, standardised on the training
    songs with audio; songs without audio get zeros. The backbone is not trained."""
    import torch

    from recbench_builtin._training import embed_songs, standardise_on_train, with_head

    bb = ctx.create("backbone", backbone, **(backbone_params or {}))
    feats = ctx.features(bb.input_kind)
    torch.manual_seed(int(ctx.seed))
    net = with_head(bb, feats.window, feats.n_channels, 64, head="never")
    songs = np.arange(feats.n_songs, dtype=np.int64)
    vecs = embed_songs(net, feats, songs, torch.device("cpu"),
                       max_windows=max_windows).astype(np.float64)
    vecs = standardise_on_train(vecs, feats.lengths > 0, ctx.split.train_songs, _EPS)
    return vecs.astype(np.float32)


def modality_matrix(ctx: Any, name: str) -> np.ndarray:
    """(n_songs, D) float32 of `dataset.modalities[name]`, rows scaled to sum 1 when the
    values are non-negative counts; a one-line ConfigError when the dataset lacks it."""
    mods = getattr(ctx.dataset, "modalities", {}) or {}
    if name not in mods:
        have = ", ".join(sorted(mods)) or "none"
        raise ConfigError(f"modality {name!r} not in dataset {ctx.dataset.name!r} "
                          f"(it has: {have}; synth-msd makes 'tokens' when "
                          "modality_strength is set)", key="modalities")
    m = mods[name]
    x = m.toarray() if sp.issparse(m) else np.asarray(m)
    x = x.astype(np.float64)
    if (x >= 0).all():
        x = x / np.maximum(x.sum(axis=1, keepdims=True), _EPS)
    return x.astype(np.float32)


def content_features(ctx: Any, names: Sequence[str], backbone: str = "mel-stats",
                     backbone_params: dict | None = None,
                     max_windows: int | None = None) -> dict[str, np.ndarray]:
    """Feature matrix per modality name ("audio" or a dataset modality), in `names` order."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        out[name] = (audio_vectors(ctx, backbone, backbone_params, max_windows)
                     if name == "audio" else modality_matrix(ctx, name))
    return out


def cosine_similarity(x: Any) -> Any:
    """(N, N) cosine similarities of the rows of a torch tensor (zero rows give 0)."""
    import torch.nn.functional as F

    z = F.normalize(x, dim=-1, eps=1e-8)
    return z @ z.T


def knn_sparsify(sim: Any, k: int) -> Any:
    """Keep each row's `k` largest entries (clamped at 0), zero the rest (dense tensor).

    Differentiable in the kept values. Ties are broken by torch.topk.
    """
    import torch

    k = min(int(k), sim.shape[1])
    vals, idx = torch.topk(sim, k, dim=-1)
    return torch.zeros_like(sim).scatter_(-1, idx, vals.clamp(min=0.0))


def sym_normalise(adj: Any) -> Any:
    """D^-1/2 A D^-1/2 with D = diag(row sums of A); rows summing to 0 stay 0."""
    import torch

    d = adj.sum(dim=-1)
    inv = torch.where(d > 0, d.clamp(min=1e-12).rsqrt(), torch.zeros_like(d))
    return inv[:, None] * adj * inv[None, :]


def knn_graph(x: Any, k: int) -> Any:
    """The normalised kNN graph of LATTICE's eqs. 1-3 for item features `x` (torch)."""
    return sym_normalise(knn_sparsify(cosine_similarity(x), k))
