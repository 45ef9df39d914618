"""Deprecated alias kept for one release: the data objects moved to
:mod:`recbench.io.dataset`. Import from ``recbench.io`` instead."""

from __future__ import annotations

from .io.dataset import SIDE_PARTS, AudioSource, Dataset, Events, Split, hash_arrays

__all__ = ["SIDE_PARTS", "AudioSource", "Dataset", "Events", "Split", "hash_arrays"]
