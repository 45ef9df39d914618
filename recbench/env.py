"""Provenance of a run: library versions, platform, hardware, git commit, memory."""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import platform
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


_ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the recbench checkout, when it is one (with '+dirty' if modified)."""
    return git_info(_ROOT)[0]


def git_info(root: Path) -> tuple[str | None, str | None]:
    """(commit, None) for a git checkout at `root`, else (None, why there is no commit)."""
    if not (Path(root) / ".git").exists():
        return None, "not run from a git checkout (no commit recorded)"
    commit = _git_commit(Path(root))
    return (commit, None) if commit else (None, "git commit unknown (git rev-parse failed)")


def _git_commit(root: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
                              capture_output=True, text=True, timeout=5)
        sha = proc.stdout.strip() if proc.returncode == 0 else ""
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ("+dirty" if dirty else "")) or None


def cpu_name() -> str:
    """A short CPU description."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """The `env` block of a result row (a fresh dict: the thread policy is read now)."""
    return {**_static_environment(), **thread_provenance()}


@functools.lru_cache(maxsize=1)
def _static_environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "recbench": _version("recbench"),
        "torch": _version("torch"),
        "implicit": _version("implicit"),
        "librosa": _version("librosa"),
        "numpy": _version("numpy"),
        "scikit-learn": _version("scikit-learn"),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
        **({} if git_commit() else {"git_note": git_info(_ROOT)[1]}),
    }


def thread_provenance() -> dict[str, Any]:
    """How this process ran its native threads: learned models' numbers depend on the
    intra-op thread count and on the CPU kernels (see :mod:`recbench.threads`)."""
    from .threads import current_threads, reproducible_requested

    torch = sys.modules.get("torch")
    return {
        "threads": torch.get_num_threads() if torch is not None else current_threads(),
        "reproducible": reproducible_requested(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    }


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is visible to torch, else 'cpu'."""
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                from .errors import RecbenchError

                raise RecbenchError("device 'cuda' requested but torch sees no CUDA GPU")
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_info(device: str) -> dict[str, Any]:
    """The `device` block of a result row: the device used and its name."""
    info: dict[str, Any] = {"type": device, "cpu": cpu_name()}
    if device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
