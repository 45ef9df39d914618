"""Shared test fixtures: isolate caches and outputs in temporary folders."""

from __future__ import annotations

import pytest


def pytest_ignore_collect(collection_path, config):
    """Benchmarks run only when asked for (`pytest tests/benchmarks --benchmark-only`)."""
    if collection_path.name == "benchmarks" and not any(
            "benchmarks" in str(a) for a in config.args):
        return True
    return None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache; nothing is written into the repository."""
    monkeypatch.setenv("RECBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
