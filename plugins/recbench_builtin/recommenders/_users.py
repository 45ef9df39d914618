"""What user cold-start models know about a user: side information and first songs.

Shared by ``deezer_coldstart.py`` and ``coldstart_baselines.py``. A model declares the side
information it reads in the class attribute ``side_info`` (a subset of
:data:`SIDE_INFO`), recorded in its rows through ``fit_report()["uses"]``: the core's
``consumes`` only knows interactions / audio / test interactions.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from recbench.components import Recommender

SIDE_INFO = ("user_features", "user_categories", "events")
"""Side information a user model may declare in ``side_info``."""


class UsesMixin(Recommender):
    """A recommender that records in its fit report which information it used."""

    side_info: ClassVar[tuple[str, ...]] = ()

    def uses(self) -> list[str]:
        """``consumes`` plus the declared side information (what the row's label states)."""
        return list(type(self).consumes) + list(type(self).side_info)

    def fit_report(self) -> dict[str, Any]:
        """The fit facts plus ``uses``: every kind of information the model read."""
        return {**super().fit_report(), "uses": self.uses()}


def revealed_k(split: Any, option: int | None) -> int:
    """k, the songs a new user reveals: the model's option, else the split's ``revealed``,
    else 0."""
    if option is not None:
        return int(option)
    return int((getattr(split, "params", None) or {}).get("revealed", 0) or 0)


def side_matrix(dataset: Any, features: bool = True, categories: bool = True
                ) -> tuple[np.ndarray, list[str]]:
    """Users x D float32: the standardised dense user features and a one-hot column per
    user category code (unknown = -1 gets no column), and the column names. D may be 0."""
    cols, names = [], []
    uf = getattr(dataset, "user_features", None)
    if features and uf is not None and uf.size:
        x = np.asarray(uf, dtype=np.float64)
        x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-9)
        cols.append(x)
        fnames = list(getattr(dataset, "user_feature_names", []) or [])
        names += fnames if len(fnames) == x.shape[1] else [f"f{i}" for i in range(x.shape[1])]
    for key in sorted(getattr(dataset, "user_categories", {}) or {}) if categories else ():
        codes = np.asarray(dataset.user_categories[key])
        n = int(codes.max()) + 1 if len(codes) else 0
        onehot = np.zeros((len(codes), n))
        known = codes >= 0
        onehot[np.flatnonzero(known), codes[known]] = 1.0
        cols.append(onehot)
        names += [f"{key}={c}" for c in range(n)]
    n_users = dataset.counts.shape[0]
    out = np.hstack(cols) if cols else np.zeros((n_users, 0))
    return out.astype(np.float32), names


def first_songs(train: sp.csr_matrix, k: int, times: sp.csr_matrix | None,
                seed: int) -> sp.csr_matrix:
    """Users x songs 0/1 CSR: each user's first `k` training songs, by first-play rank
    (`times`, see :func:`recbench_builtin.splits_users.first_play_time`) when given, else in
    a seeded random order. Users with fewer keep all theirs."""
    train = sp.csr_matrix(train)
    rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    cols = train.indices
    rng = np.random.default_rng(seed)
    key = rng.random(len(rows))
    if times is not None:
        t = np.asarray(times[rows, cols]).ravel()
        key = np.where(t > 0, t, np.inf) + key * 1e-3  # random ties / unknown times
    order = np.lexsort((key, rows))
    starts = np.r_[0, np.flatnonzero(np.diff(rows[order])) + 1] if len(rows) else np.zeros(0, int)
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - np.repeat(starts, np.diff(np.r_[starts, len(rows)]))
    keep = rank < k
    return sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32),
                          (rows[keep], cols[keep])), shape=train.shape)


def listeners(train: sp.csr_matrix, users: np.ndarray | None = None) -> np.ndarray:
    """(n_songs,) float64 number of `users` (default: all) with a training play of each song."""
    m = sp.csr_matrix(train)
    if users is not None:
        m = m[np.asarray(users)]
    return np.asarray((m > 0).sum(axis=0), dtype=np.float64).ravel()
