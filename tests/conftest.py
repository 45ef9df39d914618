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


@pytest.fixture(autouse=True)
def _restore_process_state():
    """In-process CLI runs and executors apply the thread policy to `os.environ` and to
    torch's intra-op threads; restore both so that no test sees another's settings."""
    import os
    import sys

    environ = dict(os.environ)
    torch = sys.modules.get("torch")
    threads = torch.get_num_threads() if torch is not None else None
    yield
    if os.environ != environ:
        os.environ.clear()
        os.environ.update(environ)
    torch = sys.modules.get("torch")
    if torch is not None and threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
