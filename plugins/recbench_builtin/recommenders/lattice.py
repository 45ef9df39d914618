"""LATTICE (Zhang et al., "Mining Latent Structures for Multimedia Recommendation", ACM MM
2021): `lattice`, item-item graphs learned from each content modality, injected into a
collaborative backbone (MF-BPR or LightGCN).

Following section 3 of the paper (and the authors' code where the paper leaves a choice):

- **Initial graphs (3.1.1, eqs. 1-3):** for each modality m (here ``"audio"``: the
  window-averaged, standardised ``mel-stats`` of the log-mel; and each dataset modality,
  e.g. synth-msd's ``"tokens"``), S^m_ij = cos(e^m_i, e^m_j), kept to each row's top k
  (k = 10) and normalised A~^m = D^-1/2 S^m D^-1/2. Fixed.
- **Learned structure (3.1.2, eqs. 4-5):** e'^m = W_m e^m + b_m (a linear layer per
  modality, size 64), the same kNN + normalisation on e'^m gives A^^m, recomputed at every
  step; A^m = lambda A~^m + (1 - lambda) A^^m with the skip coefficient lambda = 0.9.
- **Modality weights (3.1.3, eq. 6):** A = sum_m softmax(alpha)_m A^m, alpha learned.
- **Graph convolutions (3.2, eqs. 7-8):** h^(0) = the items' layer-0 ID embeddings,
  h^(l) = A h^(l-1) for L = 1 layer; the item embedding of the backbone becomes
  x_i + h_i / |h_i|; score = user . item; BPR loss (3.3), Adam lr 1e-3, reg 1e-4.

**Cold songs** (no training interaction, e.g. the test songs of the cold-item split) are
nodes of every item graph (built from their content) but have no collaborative embedding:
their ID embedding and backbone output are pinned to zero and never trained. Their vector
is therefore exactly ``normalise(sum_j A_ij h_j)``: the A-weighted mean of their content
neighbours' ID embeddings (neighbours that are cold themselves contribute 0). On the warm
protocol every candidate is a training song and the graph refines its embedding.

Costs: the graphs are dense n_songs x n_songs tensors (a few thousand songs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import FitContext
from recbench.errors import ConfigError
from recbench.params import Param

from .graph import available_modalities, content_features, knn_graph
from .lightgcn import CFBackboneMixin
from .mf_bpr import BPR_PARAMS, BPRRecommender

LATTICE_PARAMS = BPR_PARAMS + (
    Param("cf", str, "mf", choices=("mf", "lightgcn"), help="collaborative backbone"),
    Param("cf_layers", int, 3, min=0, help="LightGCN layers of the backbone (cf = lightgcn)"),
    Param("modalities", list, [], item_type=str,
          help="item modalities: 'audio' and/or dataset modality names (default: all)"),
    Param("knn_k", int, 10, min=1, help="neighbours kept per item (paper: 10)"),
    Param("lambda_coeff", float, 0.9, min=0.0, max=1.0,
          help="weight of the initial graph against the learned one (paper: 0.9)"),
    Param("item_layers", int, 1, min=0, help="graph convolutions on the item graph (paper: 1)"),
    Param("feat_embed_dim", int, 64, min=1, help="size of the learned feature transform"),
    Param("audio_backbone", str, "mel-stats", help="untrained backbone for 'audio' vectors"),
    Param("max_windows", int, None, min=1, help="windows averaged per song for 'audio'"),
)


class Lattice(CFBackboneMixin, BPRRecommender):
    """LATTICE: learned, modality-weighted kNN item graphs convolved over item ID
    embeddings and added (normalised) to an MF-BPR or LightGCN backbone's item vectors.

    A cold song's vector is the normalised A-weighted sum of its content neighbours' ID
    embeddings (its own embedding is zero); warm songs add that to their own.
    """

    name = "lattice"
    description = "LATTICE (Zhang et al. 2021): learned multimodal item graphs on MF/LightGCN"
    consumes = ("interactions", "audio")
    params = LATTICE_PARAMS

    def _setup(self, ctx: FitContext) -> list[Any]:
        import torch

        o = self.options
        self._cf_setup(ctx, o["cf"], o["cf_layers"])
        names = list(o["modalities"]) or available_modalities(ctx)
        have = set(available_modalities(ctx))
        for n in names:
            if n not in have:
                raise ConfigError(f"recommender.{self.name}: modality {n!r} not available "
                                  f"(have: {', '.join(sorted(have))})", key="modalities")
        feats = content_features(ctx, names, o["audio_backbone"], max_windows=o["max_windows"])
        self.modality_names = names
        dev = self._device
        self._feats = [torch.from_numpy(feats[n]).to(dev) for n in names]
        with torch.no_grad():
            self._initial = [knn_graph(f, o["knn_k"]) for f in self._feats]
        self._trs = torch.nn.ModuleList(
            [torch.nn.Linear(f.shape[1], o["feat_embed_dim"]) for f in self._feats]).to(dev)
        self._alpha = torch.nn.Parameter(torch.zeros(len(names), device=dev))
        return [*self._trs.parameters(), self._alpha]

    def _modules_state(self) -> dict:
        state = super()._modules_state()
        state["alpha"] = self._alpha
        for m, lin in enumerate(self._trs):
            state[f"trs{m}.w"], state[f"trs{m}.b"] = lin.weight, lin.bias
        return state

    def item_graph(self) -> Any:
        """The current aggregated item-item graph A (dense n_songs x n_songs tensor)."""
        o = self.options
        w = self._alpha.softmax(dim=0)
        lam = o["lambda_coeff"]
        adj = 0
        for m, (f, lin, init) in enumerate(zip(self._feats, self._trs, self._initial)):
            learned = knn_graph(lin(f), o["knn_k"]) if lam < 1 else 0
            adj = adj + w[m] * (lam * init + (1 - lam) * learned)
        return adj

    def _forward(self) -> tuple[Any, Any]:
        import torch.nn.functional as F

        users, items = self._cf_forward()
        layers = self.options["item_layers"]
        if layers == 0:
            return users, items
        adj = self.item_graph()
        h = self._item_emb.weight * self._known[:, None]
        for _ in range(layers):
            h = adj @ h
        return users, items + F.normalize(h, dim=-1, eps=1e-8)

    def fit(self, ctx: FitContext) -> None:
        """BPR training of the backbone, the feature transforms and the modality weights;
        records the learned modality weights in `fit_report`."""
        super().fit(ctx)
        w = self._alpha.detach().softmax(dim=0).cpu().numpy()
        self.fit_info["modality_weights"] = {n: float(x) for n, x in
                                             zip(self.modality_names, w)}
        self.fit_info["cold_songs"] = int((~self._known_np).sum())
        self._feats = self._initial = None  # training only


@hookimpl
def recbench_register_recommenders(register):
    register(Lattice)
