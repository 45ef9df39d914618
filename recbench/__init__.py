"""recbench: a plugin-based benchmarking suite for music recommenders under cold start."""

from __future__ import annotations

import pluggy

from . import threads as _threads

# Passive OpenMP / BLAS waiting before torch, numpy or implicit load their runtimes (they
# read it only then), wherever recbench is imported first; the user's own values win.
# Thread counts are set by the CLI and the executors (recbench/threads.py).
_threads.set_wait_policy()

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("recbench")
"""Marker for plugin hook implementations: ``@recbench.hookimpl``."""

__all__ = ["hookimpl", "__version__"]
