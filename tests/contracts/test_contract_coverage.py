"""Every plugin the built-in distribution registers has a contract test class here."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from recbench.registry import build_registry
from recbench.testing import CONTRACTS, covered

HERE = Path(__file__).resolve().parent


def test_every_builtin_plugin_has_a_contract_test():
    sys.path.insert(0, str(HERE))
    classes = []
    for path in sorted(HERE.glob("test_contract_*.py")):
        module = importlib.import_module(path.stem)
        classes += [c for c in vars(module).values()
                    if isinstance(c, type) and c.__module__ == module.__name__
                    and issubclass(c, tuple(CONTRACTS.values()))]
    registry = build_registry()
    builtin = {(e.kind, e.name) for e in registry.all() if e.dist == "recbench"}
    assert builtin, "no built-in plugin registered: is recbench installed?"
    assert set(CONTRACTS) == {kind for kind, _ in builtin}, "a kind without a contract"
    missing = builtin - covered(classes)
    assert not missing, f"built-in plugins without a contract test: {sorted(missing)}"


# The pytest11 entry point provides these once recbench is installed; imported here so that
# the test also runs from a checkout that was installed before the entry point existed.
from recbench.testing.pytest_plugin import (  # noqa: E402,F401
    audible_world, fake_song_features, make_fit_context, recbench_registry)


def test_pytest_plugin_fixtures(fake_song_features, make_fit_context, audible_world):
    from recbench.components import SongFeaturesLike

    assert isinstance(fake_song_features, SongFeaturesLike)
    assert fake_song_features.song_windows([3])[0].shape == (1, 8, 8)  # silent: one window
    ctx = make_fit_context(audible_world.dataset, audible_world.split,
                           features=fake_song_features)
    assert ctx.features("logmel") is fake_song_features
    assert ctx.create("loss", "hinge").name == "hinge"
