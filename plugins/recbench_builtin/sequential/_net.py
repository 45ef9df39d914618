"""The torch modules of the sequential models (see :mod:`recbench_builtin.sequential.sasrec`).

- :func:`build_net`: song / position / skip-flag embeddings, a causal encoder (SASRec's
  self-attention blocks or a GRU), the layer norm, and optionally the skip summary.
- :func:`skip_summary` (``skip_summary``): reads the user's skipped tracks beside the played
  ones instead of among them, so that skips take no position of the played-track window.
  At position t (whose target is the next played track) the skipped tracks logged before
  that target are grouped: those of the target's session by age (played tracks between
  the skip and the target: 0, 1, ..., 6 and older), those of earlier sessions together;
  each group's mean song vector goes through its own linear map (zero at initialisation:
  the net starts as plain SASRec) and the sum is added to the representation. A skip in
  this session and one sessions ago can so mean opposite things (not now / a sound the
  user is served, so likes).

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
            skip flags of the inputs (``input_skips``); `skipped`, for the skip summary:
            (songs (B, M), -1 pads; played tracks before each, counted from the window's
            first input (B, M); their sessions (B, M); each position's target session
            (B, L))."""
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
                songs, at, ses, target_ses = skipped
                same = ses[:, None, :] == target_ses[:, :, None]  # (B, L, M)
                h = h + self.summary(h, self.vectors(songs.clamp(min=0)), at, songs >= 0,
                                     same)
            return h

    return SeqNet()


def skip_summary(d: int, ages: int = 8):
    """The skip summary module (see the module docstring); `ages`: buckets (ages 0 to
    ages - 2 within the target's session, the last for every earlier session)."""
    import torch
    import torch.nn as nn

    class _SkipSummary(nn.Module):
        """(h (B, L, d), skipped vectors (B, M, d), at (B, M), valid (B, M), same (B, L,
        M): the skip is in the session of the position's target) -> (B, L, d): sum over
        buckets a of W_a (mean vector of the skips in bucket a) + c_a."""

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(ages, d, d))
            self.c = nn.Parameter(torch.zeros(ages, d))

        def forward(self, h, vecs, at, valid, same):
            L = h.shape[1]
            age = torch.arange(1, L + 1, device=h.device)[None, :, None] - at[:, None, :]
            seen = valid[:, None, :] & (age >= 0)  # logged before the position's target
            bucket = torch.where(same, age.clamp(0, ages - 2), ages - 1)
            hot = nn.functional.one_hot(bucket.clamp(min=0), ages).to(h.dtype)
            hot = hot * seen[..., None].to(h.dtype)  # (B, L, M, ages)
            n = hot.sum(dim=2)  # (B, L, ages)
            mean = torch.einsum("blma,bmd->blad", hot, vecs) / n.clamp(min=1)[..., None]
            return (torch.einsum("blad,ade->ble", mean, self.w)
                    + (n > 0).to(h.dtype) @ self.c)

    return _SkipSummary()
