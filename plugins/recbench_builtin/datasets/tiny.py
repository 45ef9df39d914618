"""`tiny`: a small deterministic interactions-only dataset for tests and smoke runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset
from recbench.params import Param

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp


def make_tiny_counts(seed: int, users: int, songs: int, factors: int = 4) -> sp.csr_matrix:
    """Play counts (users x songs CSR float32) from a low-rank taste model with popularity skew.

    Song popularity follows a power law (exponent 0.8, random order of songs); each user plays
    3 to ~songs/3 songs drawn without replacement in proportion to popularity x exp(taste),
    with 1 + geometric play counts. Every song and every user has at least one play.
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    pop = (1.0 + rng.permutation(songs)) ** -0.8
    u_f = rng.normal(size=(users, factors))
    s_f = rng.normal(size=(songs, factors))
    logits = u_f @ s_f.T / np.sqrt(factors) * 1.5 + np.log(pop)[None, :]
    hi = max(4, songs // 3)
    n_per_user = np.minimum(rng.integers(3, hi + 1, size=users), songs)
    dense = np.zeros((users, songs), dtype=np.float32)
    for u in range(users):
        p = np.exp(logits[u] - logits[u].max())
        chosen = rng.choice(songs, size=n_per_user[u], replace=False, p=p / p.sum())
        dense[u, chosen] = 1.0 + rng.geometric(0.5, size=len(chosen))
    # Songs nobody played get one listener, so every column exists in every split.
    for s in np.flatnonzero(dense.sum(axis=0) == 0):
        dense[rng.integers(users), s] = 1.0
    return sp.csr_matrix(dense)


class TinyDataset(DatasetLoader):
    """A tiny deterministic interactions-only dataset (no audio, no tags)."""

    name = "tiny"
    description = "Tiny deterministic interactions-only dataset (60 users x 40 songs; synthetic)"
    synthetic = True
    provides = ("interactions",)  # no audio, no tags (suites check tasks' `needs`)
    params = (
        Param("seed", int, 0, "generator seed"),
        Param("users", int, 60, "number of users", min=2),
        Param("songs", int, 40, "number of songs", min=5),
    )

    def load(self, ctx: LoadContext) -> Dataset:
        o = self.options
        counts = make_tiny_counts(o["seed"], o["users"], o["songs"])
        return Dataset(
            name=self.name, counts=counts,
            user_ids=np.array([f"u{i:04d}" for i in range(o["users"])]),
            song_ids=np.array([f"s{i:04d}" for i in range(o["songs"])]),
            synthetic=True, manifest={"generator": "tiny", **o})


@hookimpl
def recbench_register_datasets(register):
    register(TinyDataset)
