"""Small synth-msd datasets with user features and sessions, shared by the issue-14 tests."""

from __future__ import annotations

import functools
import tempfile


@functools.lru_cache(maxsize=8)
def synth(preset: str = "tiny", seed: int = 0, **knobs):
    """A synth-msd dataset with the given side knobs (cached per process; no audio read)."""
    from recbench.components import LoadContext
    from recbench.registry import default_registry

    loader = default_registry().create("dataset", "synth-msd", preset=preset, seed=seed,
                                       **knobs)
    return loader.load(LoadContext(cache_dir=tempfile.mkdtemp(prefix="users14-")))
