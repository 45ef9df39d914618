"""recbench: a plugin-based benchmarking suite for music recommenders under cold start."""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("recbench")
"""Marker for plugin hook implementations: ``@recbench.hookimpl``."""

__all__ = ["hookimpl", "__version__"]
