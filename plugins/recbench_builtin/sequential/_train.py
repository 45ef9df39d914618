"""Training of the sequential models (see :mod:`recbench_builtin.sequential.sasrec`):
the training windows, one optimisation step (next-item loss + the optional skip term) and
the validation MRR that drives early stopping, as a mixin of :class:`SASRec`.

Next-item loss (``next_loss``): ``"softmax"``, cross-entropy over all songs at every
position (the catalogue size here allows it), or ``"bce"``, SASRec's own (Kang & McAuley
2018, Sec. III-E): binary cross-entropy of the next track against ``sampled_negatives``
songs drawn uniformly among the others at each position (SASRec: one). With ``"bce"`` the
session's skipped tracks, through the skip term, are the only hard negatives the model
sees, as in seed 004's set-up (Seshadri & Knees, arXiv 2309.11623).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recbench.components import FitContext
from recbench_builtin.sequential._data import training_histories


def sample_negatives(targets: Any, n_songs: int, k: int) -> Any:
    """(B, k) songs drawn uniformly from the n_songs - 1 songs other than each row's target
    (torch's global generator): draw from 0..n_songs - 2 and shift those >= the target."""
    import torch

    r = torch.randint(0, n_songs - 1, (len(targets), k), device=targets.device)
    return r + (r >= targets[:, None]).long()


def bce_loss(pos: Any, neg: Any) -> Any:
    """SASRec's next-item loss (Kang & McAuley 2018, Sec. III-E): mean over positions of
    -log sigmoid(pos) - sum_k log(1 - sigmoid(neg_k)); pos (B,), neg (B, k) scores."""
    import torch.nn.functional as F

    return (F.softplus(-pos) + F.softplus(neg).sum(dim=1)).mean()


def skip_scores(skip_loss: Any, h: Any, vecs: Any, bias: Any, pos: Any, neg: Any):
    """(B,) scores of the played next tracks `pos` and (B, K) of the skipped tracks `neg`
    (song indices) for the representations h (B, d), as the skip loss asks: its
    ``scores(h, pos vectors, neg vectors, pos biases, neg biases)`` when it has one (the
    ``skip-contrastive`` loss: dot product + bias, or cosine), else dot product + bias."""
    import torch

    if hasattr(skip_loss, "scores"):
        return skip_loss.scores(h, vecs[pos], vecs[neg], bias[pos], bias[neg])
    return ((h * vecs[pos]).sum(-1) + bias[pos],
            torch.einsum("bd,bmd->bm", h, vecs[neg]) + bias[neg])


def state_term(skip_loss: Any, h: Any, x: Any, k: Any, sess: Any) -> Any:
    """Seed 004's term in its authors' code (pseshadri9/sequential-music-recommendation,
    models/models.py at 07331e0: ``get_negative_samples`` and InfoNCE on the encoder
    output): among the encoder states h (B, L, d) of windows whose inputs x (B, L; -1
    pads) include skipped tracks (flags k (B, L)), the state at each played input is the
    query, the state at the next played input of the same session (sess (B, L)) the
    positive, and the states at that session's skipped inputs (earlier or later) the
    negatives; scored by ``skip_loss.pairwise`` (one (B, L, L) matrix) and reduced by
    ``skip_loss`` (queries with no later played input or no skip in their session add
    nothing)."""
    import torch

    L = x.shape[1]
    valid = x >= 0
    same = (sess[:, :, None] == sess[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    played = valid & ~k
    later = torch.ones(L, L, dtype=torch.bool, device=x.device).triu(1)
    cand = same & played[:, None, :] & later[None]  # (B, L, L): j > i played, same session
    pos_at = cand.to(torch.int8).argmax(dim=-1)  # the first such j
    negm = same & k[:, None, :]
    b, i = (played & cand.any(-1) & negm.any(-1)).nonzero(as_tuple=True)
    sim = skip_loss.pairwise(h)
    return skip_loss(sim[b, i, pos_at[b, i]], sim[b, i].masked_fill(~negm[b, i],
                                                                     float("-inf")))


class TrainingMixin:
    """Training windows, the loss step and the validation set of a sequential model (uses
    ``self.options``, ``self.net`` and ``self._device``)."""

    def _flags(self) -> bool:
        """Whether the net reads skip flags (skipped tracks as inputs, flagged)."""
        return self.options["input_skips"] and self.options["skip_flags"]

    def _inputs(self, songs: np.ndarray, skipped: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.ones(len(songs), bool) if self.options["input_skips"] else ~skipped
        return songs[keep], skipped[keep]

    def _windows(self, hist, sess):
        """(inputs, targets, skip flags, skip negatives, summary skips (songs, at,
        sessions; see :meth:`_summary_skips`), each position's target session, each
        input's session) arrays of the training windows."""
        o = self.options
        L, M = o["max_len"], o["max_skips"]
        xs, ys, ks, negs, sss, ats, ses_in = [], [], [], [], [], [], []
        for u, (songs, skipped) in enumerate(hist):
            s_in, k_in = self._inputs(songs, skipped)
            if len(s_in) < 2:
                continue
            plays_before = np.cumsum(~skipped) - ~skipped  # played tracks before each event
            # the session's skipped songs for each input position's next played track
            s_of = sess[u] if sess is not None else np.zeros(len(songs), np.int64)
            keep = np.ones(len(songs), bool) if o["input_skips"] else ~skipped
            sess_in = s_of[keep]
            ev_in = np.flatnonzero(keep)  # event index of each input
            skip_ev = {int(s): np.flatnonzero((s_of == s) & skipped) for s in np.unique(s_of)}
            before = o["skip_negatives"] == "before"
            for end in range(len(s_in), 1, -L):
                start = max(0, end - L - 1)
                w, kw, sw = s_in[start:end], k_in[start:end], sess_in[start:end]
                x = np.full(L, -1, np.int64)
                y = np.full(L, -1, np.int64)
                k = np.zeros(L, bool)
                neg = np.full((L, M), -1, np.int64)
                n = len(w) - 1
                x[:n], y[:n], k[:n] = w[:-1], w[1:], kw[:-1]
                y[:n][kw[1:]] = -1  # a skipped next track is not a target
                for i in range(n):
                    sk = skip_ev.get(int(sw[i + 1]), np.zeros(0, np.int64))
                    if before:  # only the skips logged before the target
                        sk = sk[sk < ev_in[start + i + 1]]
                    sk = songs[sk[-M:] if before else sk[:M]]
                    neg[i, :len(sk)] = sk
                    neg[i][neg[i] == y[i]] = -1  # skipped and replayed: not a negative
                ss, at, ses = self._summary_skips(songs, skipped, plays_before, start,
                                                  end - 1, s_of)
                ts = np.full(L, -2, np.int64)  # each position's target session
                ts[:n] = sw[1:]
                si = np.full(L, -2, np.int64)  # each input's session
                si[:n] = sw[:-1]
                xs.append(x), ys.append(y), ks.append(k), negs.append(neg)
                sss.append(np.stack([ss, at, ses])), ats.append(ts), ses_in.append(si)
        if not xs:
            z = np.zeros((0, L), np.int64)
            zs = np.zeros((0, 3, o["summary_skips"]), np.int64)
            return z, z, z.astype(bool), np.zeros((0, L, M), np.int64), zs, z, z
        return (np.stack(xs), np.stack(ys), np.stack(ks), np.stack(negs), np.stack(sss),
                np.stack(ats), np.stack(ses_in))

    def _summary_skips(self, songs, skipped, plays_before, start: int, last: int, sess):
        """The skip summary's input for a window whose first input is played track `start`
        (counted over the history's played tracks) and whose last target is played track
        `last`: the most recent `summary_skips` skipped tracks logged before that target
        (-1 pads), for each the played tracks before it minus `start`, and its session
        (`sess`: per event)."""
        m = self.options["summary_skips"]
        out, at, ses = np.full(m, -1, np.int64), np.zeros(m, np.int64), np.full(m, -1, np.int64)
        idx = np.flatnonzero(skipped & (plays_before <= last))[-m:]
        out[:len(idx)], at[:len(idx)] = songs[idx], plays_before[idx] - start
        ses[:len(idx)] = sess[idx]
        return out, at, ses

    def _step(self, windows, b, skip_loss, opt) -> tuple[float, float]:
        import torch
        import torch.nn.functional as F

        dev = self._device
        x, y, k, neg, ss, ts, si = (torch.as_tensor(a[b], device=dev) for a in windows)
        h = self.net(x, k if self._flags() else None, (ss[:, 0], ss[:, 1], ss[:, 2], ts))
        valid = y >= 0
        if not bool(valid.any()):
            return 0.0, 0.0
        hv, yv = h[valid], y[valid]
        vecs = self.net.vectors()
        if self.options["next_loss"] == "bce":  # SASRec Sec. III-E: sampled negatives
            sn = sample_negatives(yv, vecs.shape[0], self.options["sampled_negatives"])
            loss = bce_loss((hv * vecs[yv]).sum(-1) + self.net.bias[yv],
                            torch.einsum("bd,bkd->bk", hv, vecs[sn]) + self.net.bias[sn])
        else:
            loss = F.cross_entropy(hv @ vecs.T + self.net.bias, yv)
        skip_val = 0.0
        if skip_loss is not None and self.options["skip_form"] == "states":
            extra = state_term(skip_loss, h, x, k, si)
            loss = loss + self.options["skip_weight"] * extra
            skip_val = float(extra.detach())
        elif skip_loss is not None:
            nv = neg[valid]
            tv, tb = vecs, self.net.bias
            if self.options["skip_detach_items"]:
                tv, tb = tv.detach(), tb.detach()
            pos, ns = skip_scores(skip_loss, hv, tv, tb, yv, nv.clamp(min=0))
            ns = ns.masked_fill(nv < 0, float("-inf"))
            extra = skip_loss(pos, ns)
            loss = loss + self.options["skip_weight"] * extra
            skip_val = float(extra.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach()) - self.options["skip_weight"] * skip_val, skip_val

    def _valid_set(self, ctx: FitContext, hist, rng):
        """(histories, first played song of the validation session) for a user sample."""
        if not hasattr(ctx.split, "event_part"):
            return None
        vhist = training_histories(ctx.dataset, ctx.split, ctx.seed, parts=(1,))
        users = [u for u, (s, k) in enumerate(vhist) if (~k).any() and len(hist[u][0])]
        if not users:
            return None
        users = rng.permutation(users)[:self.options["valid_users"]]
        out, targets = [], []
        for u in users:  # the history, then the session's skips before its first play
            first = int(np.argmax(~vhist[u][1]))
            out.append((np.r_[hist[u][0], vhist[u][0][:first]],
                        np.r_[hist[u][1], vhist[u][1][:first]],
                        np.r_[np.zeros(len(hist[u][0]), bool), np.ones(first, bool)]))
            targets.append(vhist[u][0][first])
        return out, np.array(targets)

    def _valid_mrr(self, valid) -> float:
        hists, targets = valid
        s = self.score_next(hists, np.arange(self.net.item.num_embeddings))
        t = s[np.arange(len(targets)), targets]
        return float(np.mean(1.0 / (1.0 + (s > t[:, None]).sum(axis=1))))
