"""Old path of `recbench compare` (kept for one release): use `recbench.leaderboard.compare`."""

from __future__ import annotations

from .leaderboard.compare import (EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, Change, compare,
                                  direction, load_leaderboard, paired_change, render)

__all__ = ["EXIT_OK", "EXIT_REGRESSION", "EXIT_USAGE", "Change", "compare", "direction", "load_leaderboard", "paired_change", "render"]
