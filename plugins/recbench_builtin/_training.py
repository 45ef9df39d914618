"""Training utilities shared by the built-in torch models (DCUE, WMF+Regression,
content-profile, the tagging MLP) and meant for every new one.

- :class:`EarlyStopping`: best validation value, the weights that reached it, patience.
- :func:`make_optimizer`: SGD (Nesterov momentum) or Adam with the Keras-style learning
  rate decay of the DCUE paper, lr_t = lr / (1 + decay * t), as a ``LambdaLR``.
- :func:`amp_dtype`, :func:`autocast`: mixed precision for a device.
- :func:`with_head`: a backbone's module, with a linear head when its output size is not
  the size the model asks for.
- :func:`validation_data`, :func:`validation_auc`: the per-user AUC on the validation
  songs that early stopping watches (never the test interactions).
- :func:`embed_songs`: a song's vector = the mean of a network's outputs over the song's
  consecutive windows (van den Oord et al. 2013's averaging of 3-s windows).

torch is imported inside the functions so that plugin modules importing this one stay
cheap to import.
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Any, Callable, Sequence

import numpy as np


class EarlyStopping:
    """Keeps the best value of a validation metric (higher is better) and a copy of the
    state that reached it; says when `patience` evaluations in a row did not improve.

    Usage::

        stopper = EarlyStopping(patience=5)
        for epoch in range(1, max_epochs + 1):
            ...train...
            stopper.update(epoch, valid_auc, net.state_dict)
            if stopper.should_stop:
                break
        stopper.restore(net.load_state_dict)

    A NaN value never improves. ``best`` is -inf and ``best_state`` None until a value
    improved; ``stop_reason`` is "patience" once patience ran out (callers may set
    another reason, e.g. "max_minutes", with :meth:`stop`).
    """

    def __init__(self, patience: int):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.patience = patience
        self.best = -math.inf
        self.best_state: Any = None
        self.best_epoch = 0
        self.bad = 0
        self.stop_reason = ""

    def update(self, epoch: int, value: float, snapshot: Callable[[], Any]) -> bool:
        """Record `value` at `epoch`; on improvement keep a deep copy of `snapshot()`.

        Returns whether the value improved. Inside a tuning search with a pruner, the value
        is also reported as the trial's intermediate value at step `epoch`
        (:func:`recbench.tuning.report`), which may stop a hopeless trial there
        (``optuna.TrialPruned``); outside a search nothing more happens.
        """
        if math.isfinite(value):
            from recbench.tuning import report

            report(value, epoch)
        if value > self.best:
            self.best, self.best_epoch, self.bad = value, epoch, 0
            self.best_state = copy.deepcopy(snapshot())
            return True
        self.bad += 1
        if self.bad >= self.patience and not self.stop_reason:
            self.stop_reason = "patience"
        return False

    def stop(self, reason: str) -> None:
        """Stop for another reason (time budget...), unless already stopped."""
        self.stop_reason = self.stop_reason or reason

    @property
    def should_stop(self) -> bool:
        """Whether patience ran out or :meth:`stop` was called."""
        return bool(self.stop_reason)

    @property
    def improved_once(self) -> bool:
        return self.best_state is not None

    def restore(self, load: Callable[[Any], Any]) -> bool:
        """Call `load(best_state)` if a best state was kept; returns whether it was."""
        if self.best_state is None:
            return False
        load(self.best_state)
        return True


def make_optimizer(kind: str, param_groups: Sequence[Any], lr: float, decay: float = 0.0,
                   momentum: float = 0.9, nesterov: bool | None = None,
                   weight_decay: float = 0.0) -> tuple[Any, Any]:
    """(optimizer, scheduler): "sgd" (momentum; Nesterov by default when momentum > 0) or
    "adam", with the Keras-style decay lr_t = lr / (1 + decay * t), t = scheduler steps.

    `param_groups` is a list of tensors or of torch param-group dicts (groups may set their
    own "lr"; the decay factor applies to each). Call ``scheduler.step()`` once per
    optimiser step.
    """
    import torch

    if kind == "sgd":
        opt = torch.optim.SGD(param_groups, lr=lr, momentum=momentum,
                              nesterov=momentum > 0 if nesterov is None else nesterov,
                              weight_decay=weight_decay)
    elif kind == "adam":
        opt = torch.optim.Adam(param_groups, lr=lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"unknown optimizer {kind!r} (expected 'sgd' or 'adam')")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1.0 + decay * t))
    return opt, sched


def amp_dtype(device: str) -> Any:
    """The autocast dtype for `device`: bf16 on CPU; bf16 on CUDA if supported, else fp16."""
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def autocast(device: Any, enabled: bool, dtype: Any = None) -> Any:
    """``torch.autocast`` for `device` (a str or torch.device) when `enabled`, else a
    no-op context. `dtype` defaults to :func:`amp_dtype`."""
    import torch

    if not enabled:
        return contextlib.nullcontext()
    device_type = device.type if isinstance(device, torch.device) else str(device).split(":")[0]
    return torch.autocast(device_type=device_type,
                          dtype=dtype if dtype is not None else amp_dtype(str(device)))


def with_head(backbone: Any, time_steps: int, channels: int, out_dim: int, *,
              head: str = "mismatch") -> Any:
    """Build `backbone`'s module for (B, time_steps, channels) windows, adapted to `out_dim`.

    The backbone's output size is the module's ``out_features`` attribute, or else
    :meth:`recbench.components.Backbone.out_features`. `head`:
    "mismatch" adds a ``Linear(size, out_dim)`` when the size differs from `out_dim`;
    "trainable" also adds one when the backbone is not learnable (so that something
    trains); "never" adds none. A non-learnable backbone's parameters are frozen. The
    returned module has an ``out_features`` attribute: the size of its output.
    """
    from torch import nn

    module = backbone.build(time_steps, channels, out_dim)
    size = getattr(module, "out_features", None)  # the module's word first (older plugins)
    if size is None:
        size = backbone.out_features(time_steps, channels, out_dim)
    if not backbone.learnable:
        for p in module.parameters():
            p.requires_grad_(False)
    needs = {"mismatch": size != out_dim,
             "trainable": size != out_dim or not backbone.learnable,
             "never": False}[head]
    if not needs:
        if getattr(module, "out_features", None) != size:
            module.out_features = size
        return module
    net = nn.Sequential(module, nn.Linear(size, out_dim))
    net.out_features = out_dim
    return net


def embed_songs(net: Any, feats: Any, songs: np.ndarray, device: Any, batch: int = 256,
                max_windows: int | None = None, *, songs_per_chunk: int | None = None,
                include_silent: bool = False, amp: bool = False, dtype: Any = None
                ) -> np.ndarray:
    """Mean of `net`'s outputs over each song's consecutive windows
    (``feats.song_windows``): float32 (len(songs), net.out_features).

    Songs without audio (length 0) get zeros, or with `include_silent` the output for their
    one zero-padded window. Windows go through `net` `batch` at a time, `songs_per_chunk`
    songs per window gather (default: about `batch` windows' worth), in eval mode without
    gradients (the mode is restored after), under autocast when `amp`. Sums are float64.
    """
    import torch

    songs = np.asarray(songs, dtype=np.int64)
    out = np.zeros((len(songs), net.out_features), dtype=np.float32)
    has_audio = np.flatnonzero(feats.lengths[songs] > 0)
    rows = np.arange(len(songs)) if include_silent else has_audio
    if songs_per_chunk is None:
        per_song = max(1, int(np.ceil(np.mean(np.maximum(
            feats.lengths[songs[has_audio]] // feats.window, 1))))) if has_audio.size else 1
        if max_windows is not None:
            per_song = min(per_song, max_windows)
        songs_per_chunk = max(1, batch // per_song)
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(rows), songs_per_chunk):
                pos = rows[start:start + songs_per_chunk]
                windows, owner = feats.song_windows(songs[pos], max_windows)
                sums = np.zeros((len(pos), out.shape[1]), dtype=np.float64)
                for w0 in range(0, len(windows), batch):
                    x = torch.from_numpy(windows[w0:w0 + batch]).to(device)
                    with autocast(device, amp, dtype):
                        y = net(x)
                    np.add.at(sums, owner[w0:w0 + batch], y.float().cpu().numpy())
                n = np.bincount(owner, minlength=len(pos))[:, None]
                out[pos] = sums / np.maximum(n, 1)
    finally:
        net.train(was)
    return out


def standardise_on_train(vecs: np.ndarray, has_audio: np.ndarray, train_songs: Any,
                         eps: float = 1e-12) -> np.ndarray:
    """(n_songs, D) song vectors standardised per column by the mean and std of the
    training songs that have audio (a std below `eps` divides by 1); songs without audio
    become 0. Returns a new float64 array; never reads validation or test songs."""
    vecs = np.asarray(vecs, dtype=np.float64)
    train = np.asarray(train_songs, dtype=np.int64)
    ref = train[has_audio[train]]
    mu = vecs[ref].mean(axis=0) if ref.size else np.zeros(vecs.shape[1])
    sd = vecs[ref].std(axis=0) if ref.size else np.ones(vecs.shape[1])
    out = (vecs - mu) / np.where(sd > eps, sd, 1.0)
    out[~has_audio] = 0.0
    return out


def validation_data(split: Any, max_users: int | None = None) -> tuple | None:
    """(users, songs, labels, mask) of the validation songs for early stopping, or None when
    there are none or no user has a validation interaction. labels: (U, S) bool plays;
    mask: (U, S) True where a song is a candidate (not already in the user's training
    interactions, for warm splits). `max_users`: a fixed (seed 0) subsample of that many
    users keeps validation cheap. Never reads split.test."""
    songs = np.asarray(split.valid_songs, dtype=np.int64)
    if len(songs) == 0 or split.valid is None:
        return None
    valid = split.valid.tocsr()[:, songs]
    users = np.flatnonzero(np.asarray((valid > 0).sum(axis=1)).ravel() > 0)
    if len(users) == 0:
        return None
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(0).choice(users, max_users, replace=False))
    labels = valid[users].toarray() > 0
    mask = split.train.tocsr()[users][:, songs].toarray() <= 0
    return users, songs, labels, mask


def validation_auc(scores: np.ndarray, data: tuple) -> float:
    """Mean over users of the per-user ROC AUC of `scores` (U, S) against `data` from
    :func:`validation_data` (NaN when no user has both classes)."""
    from recbench.metrics import roc_auc_per_user

    _, _, labels, mask = data
    aucs = np.asarray(roc_auc_per_user(scores, labels, mask), dtype=float)
    return float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan")
