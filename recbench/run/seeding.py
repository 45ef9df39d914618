"""Seeding of the global random streams before a fit (a trial's or the unit's real one)."""

from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, NumPy's global stream and torch (when installed) with
    `seed`, so that a model drawing from them is reproducible."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass
