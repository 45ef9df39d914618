"""The one place where the core names built-in plugins: the defaults a suite gets when it
leaves a section out, and the protocol names splits declare.

Everything else in `recbench/` works with whatever plugins are registered; a third-party
distribution can replace any of these by name without touching the core.
"""

from __future__ import annotations

EXECUTOR = "local"
"""Executor of a suite without ``[run] executor`` (runs cells in this process)."""

SPLIT = "cold-item"
"""Split of a suite without ``[split] name``: the paper's cold-song protocol."""

TASK = "recommendation"
"""Task of a suite without ``[[tasks]]``, and of a ``[[references]]`` row without `task`;
the leaderboard plot shows this task's board when there is one."""

SYNTHETIC_DATASET = "synth-msd"
"""Dataset that ``recbench data synth`` writes."""

SYNTHETIC_PRESET = "tiny"
"""Its preset when ``--preset`` is not given."""

COLD_ITEM = "cold-item"
"""The protocol of cold songs (no training interactions at all), the paper's."""

PROTOCOLS = (COLD_ITEM, "warm", "cold-user")
"""What a split's numbers measure (``Split.protocol``): cold songs, held-out interactions
of known users and songs, or held-out users."""
