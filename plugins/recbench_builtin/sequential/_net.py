"""The torch modules of the sequential models (see :mod:`recbench_builtin.sequential.sasrec`).

- :func:`build_net`: song / position / skip-flag embeddings, a causal encoder (SASRec's
  self-attention blocks or a GRU), the layer norm, and optionally the skip summary.
- :func:`skip_summary` (``skip_summary``): reads the user's skipped tracks beside the played
  ones instead of among them, so that skips take no position of the played-track window.
  At position t (whose target is the next played track) it attends over the skipped tracks
  logged before that target, the query from the position's representation, keys and values
  from the skipped track's vector plus an embedding of its age (played tracks between the
  skip and the target, capped), with a learned "no skip" slot; the result, through a linear
  map initialised at zero (the net starts as plain SASRec), is added to the representation.

torch is imported inside the builders so that the plugin modules import cheaply.
"""

from __future__ import annotations

import math
from typing import Any


def build_net(n_songs: int, o: dict[str, Any], encoder: str, audio_dim: int = 0):
    """The torch module: song / position / skip embeddings, the encoder, the output head
    (and the skip summary when ``o["skip_summary"]``)."""
    import torch
    import torch.nn as nn

    class SeqNet(nn.Module):
        """Sequence -> a representation per position (causal)."""

        def __init__(self):
            super().__init__()
            d = o["dim"]
            self.d, self.encoder = d, encoder
            self.item = nn.Embedding(n_songs, d)
            nn.init.normal_(self.item.weight, std=d ** -0.5)
            self.bias = nn.Parameter(torch.zeros(n_songs))
            self.pos = nn.Embedding(o["max_len"], d)
            self.skip = nn.Embedding(2, d)
            self.audio = nn.Linear(audio_dim, d) if audio_dim else None
            self.drop = nn.Dropout(o["dropout"])
            if encoder == "transformer":
                layer = nn.TransformerEncoderLayer(d, o["heads"], d, o["dropout"],
                                                   batch_first=True, norm_first=True)
                self.enc = nn.TransformerEncoder(layer, o["layers"], enable_nested_tensor=False)
            else:
                self.enc = nn.GRU(d, d, num_layers=o["layers"], batch_first=True)
            self.norm = nn.LayerNorm(d)
            self.summary = skip_summary(d) if o.get("skip_summary") else None
            self.register_buffer("feats", torch.zeros(n_songs, max(audio_dim, 1)))
            self.register_buffer("id_on", torch.ones(n_songs, 1))

        def vectors(self, idx=None):
            """Song vectors (the input and output embedding), (n, d) or idx-shaped."""
            w = self.item.weight * self.id_on
            if self.audio is not None:
                w = w + self.audio(self.feats)
            return w if idx is None else w[idx]

        def forward(self, seq, skips=None, skipped=None):
            """seq (B, L) song positions, right-padded with -1 -> (B, L, d). `skips`: (B, L)
            skip flags of the inputs (``input_skips``); `skipped`: (songs (B, M), -1 pads;
            played tracks before each, counted from the window's first input (B, M)) for
            the skip summary."""
            L = seq.shape[1]
            x = self.vectors(seq.clamp(min=0)) * math.sqrt(self.d)
            x = x + self.pos(torch.arange(L, device=seq.device))[None]
            if skips is not None:
                x = x + self.skip(skips.long())
            x = self.drop(x * (seq >= 0).unsqueeze(-1))
            if self.encoder == "transformer":
                mask = nn.Transformer.generate_square_subsequent_mask(L, device=seq.device)
                h = self.enc(x, mask=mask, is_causal=True)
            else:
                h, _ = self.enc(x)
            h = self.norm(h)
            if self.summary is not None and skipped is not None:
                songs, at = skipped
                h = h + self.summary(h, self.vectors(songs.clamp(min=0)), at, songs >= 0)
            return h

    return SeqNet()


def skip_summary(d: int, ages: int = 8):
    """The skip summary module (see the module docstring); `ages`: age buckets."""
    import torch
    import torch.nn as nn

    class _SkipSummary(nn.Module):
        """(h (B, L, d), skipped vectors (B, M, d), at (B, M), valid (B, M)) -> (B, L, d)."""

        def __init__(self):
            super().__init__()
            self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.age_k, self.age_v = nn.Embedding(ages, d), nn.Embedding(ages, d)
            self.null_k = nn.Parameter(torch.zeros(d))
            self.out = nn.Linear(d, d)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

        def forward(self, h, vecs, at, valid):
            L = h.shape[1]
            age = torch.arange(1, L + 1, device=h.device)[None, :, None] - at[:, None, :]
            seen = valid[:, None, :] & (age >= 0)  # logged before the position's target
            bucket = nn.functional.one_hot(age.clamp(0, ages - 1), ages).to(h.dtype)
            q = self.q(h)
            # q . (k(v_j) + age_k(age_ij)) without the (B, L, M, d) keys
            logit = (torch.einsum("bld,bmd->blm", q, self.k(vecs))
                     + torch.einsum("bla,blma->blm", q @ self.age_k.weight.T, bucket))
            logit = (logit / math.sqrt(d)).masked_fill(~seen, float("-inf"))
            null = (q @ self.null_k / math.sqrt(d))[..., None]
            w = torch.softmax(torch.cat([null, logit], dim=-1), dim=-1)[..., 1:]
            a = (torch.einsum("blm,bmd->bld", w, self.v(vecs))
                 + torch.einsum("blm,blma->bla", w, bucket) @ self.age_v.weight)
            return self.out(a)

    return _SkipSummary()
