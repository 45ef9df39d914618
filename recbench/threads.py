"""Thread policy: how many native threads recbench uses, and how they wait.

Why: torch's OpenMP threads (libgomp in the PyPI wheels) spin while they wait for work. On
a shared machine whose other jobs keep the cores busy, every parallel region then waits
for a descheduled spinning peer: measured on 2 cores at load ~6, 30 steps of a small
conv1d net took 8.2 s with 1 thread, 31.9 s with 2 spinning threads and 3.4 s with 2
threads that wait passively. So every process recbench starts (the CLI, process and Dask
workers) gets, before torch / numpy / implicit load their runtimes:

- ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep instead of spinning; read once, when the
  OpenMP runtime loads, hence "before the import"), ``KMP_BLOCKTIME=0`` (the same for
  Intel's OpenMP, which conda builds of torch use) and ``OPENBLAS_THREAD_TIMEOUT=4``
  (OpenBLAS's own pthread pool spins 2^28 cycles by default, 2^4 with it). A value the
  user set is kept.
- one thread count for every pool: ``OMP/MKL/OPENBLAS/...NUM_THREADS`` and torch's
  intra-op threads (implicit's ALS gets the same number, BLAS 1 under it), so torch, BLAS
  and implicit never run pools of different sizes on top of each other.

The count is, in this order: an explicit request (``--threads``, ``[run] threads``),
``RECBENCH_THREADS``, a user's ``OMP_NUM_THREADS``, else the CPUs this process may really
use: its affinity mask, further capped by a cgroup CPU quota (``cpu.max`` in cgroup v2,
``cpu.cfs_quota_us / cpu.cfs_period_us`` in v1), which containers and CI runners set
while ``os.cpu_count()`` still reports the host's cores.

Reproducible mode (``[run] reproducible = true``) is for gated runs, whose numbers must
not depend on the machine: one intra-op thread (a conv's or matmul's reduction order, and
so its rounding, depends on how many threads split it: DCUE scores differ between 1 and 2
threads) and the CPU kernels pinned to AVX2 for ATen, oneDNN, MKL and OpenBLAS (they
otherwise pick AVX-512 or AVX2 code by CPU, with other rounding). See `REPRODUCIBLE_ENV`.

This module imports nothing heavy; call `configure_process` before torch or numpy load.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Mapping, MutableMapping

ENV_VAR = "RECBENCH_THREADS"
"""The thread budget of this process (set by `configure_process`, read by workers)."""

REPRODUCIBLE_VAR = "RECBENCH_REPRODUCIBLE"
"""'1' when this process runs in reproducible mode (inherited by workers)."""

CAP_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
"""Read by the OpenMP / BLAS runtimes when they load."""

WAIT_ENV = {
    "OMP_WAIT_POLICY": "PASSIVE",       # libgomp / any OpenMP: sleep, don't spin, when idle
    "KMP_BLOCKTIME": "0",               # Intel OpenMP (libiomp5): the same
    "OPENBLAS_THREAD_TIMEOUT": "4",     # OpenBLAS pthreads: spin 2^4 cycles, not 2^28
}
"""Passive waiting; set only where the user has not set the variable."""

REPRODUCIBLE_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",      # torch's own CPU kernels (default: the best ISA)
    "ONEDNN_MAX_CPU_ISA": "AVX2",       # oneDNN convolutions / matmuls
    "DNNL_MAX_CPU_ISA": "AVX2",         # the same, older oneDNN name
    "MKL_CBWR": "AVX2",                 # MKL conditional bitwise reproducibility
    "OPENBLAS_CORETYPE": "Haswell",     # numpy / scipy OpenBLAS kernels (AVX2)
}
"""Pins the kernels' instruction set so that AVX-512 and AVX2 machines round alike. Read
when the libraries load (hence set before their import). Needs an x86-64 CPU with AVX2;
on other CPUs the libraries ignore or clamp these."""


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (os.cpu_count() where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def cgroup_cpu_quota(root: str | os.PathLike = "/sys/fs/cgroup",
                     proc_cgroup: str | os.PathLike = "/proc/self/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (e.g. 1.5), or None when unlimited
    or unknown. cgroup v2: ``<root>/<own path>/cpu.max`` ("QUOTA PERIOD" or "max PERIOD"),
    else ``<root>/cpu.max`` (inside a container the namespace's root is its own cgroup);
    v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` under ``<root>/cpu`` (or
    ``cpu,cpuacct``). The smallest quota found on the way up counts."""
    root = Path(root)
    own_v2, own_v1 = "", ""
    text = _read(Path(proc_cgroup)) or ""
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            own_v2 = parts[2].lstrip("/")
        elif "cpu" in parts[1].split(","):
            own_v1 = parts[2].lstrip("/")

    def ancestors(base: Path, rel: str) -> list[Path]:
        out = [base]
        for piece in [p for p in rel.split("/") if p]:
            out.append(out[-1] / piece)
        return out

    quotas: list[float] = []
    for d in ancestors(root, own_v2):  # v2
        raw = _read(d / "cpu.max")
        if raw:
            fields = raw.split()
            try:
                if fields[0] != "max" and len(fields) >= 2 and float(fields[1]) > 0:
                    quotas.append(float(fields[0]) / float(fields[1]))
            except (ValueError, IndexError):
                pass
    for ctrl in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):  # v1
        for d in ancestors(root / ctrl, own_v1):
            q, p = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
            try:
                if q is not None and p is not None and int(q) > 0 and int(p) > 0:
                    quotas.append(int(q) / int(p))
            except ValueError:
                pass
    quotas = [q for q in quotas if q > 0]
    return min(quotas) if quotas else None


def usable_cpus(root: str | os.PathLike = "/sys/fs/cgroup",
                proc_cgroup: str | os.PathLike = "/proc/self/cgroup") -> int:
    """CPUs this process can really use: its affinity mask, capped by the cgroup quota
    (rounded up: a 1.5-CPU quota runs 2 threads well), at least 1."""
    n = affinity_cpus()
    quota = cgroup_cpu_quota(root, proc_cgroup)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota - 1e-9)))
    return max(1, n)


def _positive_int(value: object) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n >= 1 else None


def resolve_threads(requested: int | None = None,
                    environ: Mapping[str, str] | None = None) -> int:
    """The thread budget: `requested` (--threads / [run] threads), else RECBENCH_THREADS,
    else a user's OMP_NUM_THREADS, else `usable_cpus()`."""
    environ = os.environ if environ is None else environ
    for value in (requested, environ.get(ENV_VAR), environ.get("OMP_NUM_THREADS")):
        n = _positive_int(value) if value is not None else None
        if n is not None:
            return n
    return usable_cpus()


def reproducible_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when RECBENCH_REPRODUCIBLE is set to a true value."""
    environ = os.environ if environ is None else environ
    return environ.get(REPRODUCIBLE_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def policy_env(threads: int, *, reproducible: bool = False,
               environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a process (or worker) running with `threads` threads: passive
    waiting (keeping the user's own wait settings), every pool capped at `threads`, and in
    reproducible mode the kernels pinned (`REPRODUCIBLE_ENV`)."""
    environ = os.environ if environ is None else environ
    env = {k: environ.get(k, v) for k, v in WAIT_ENV.items()}
    env.update({k: str(threads) for k in CAP_VARS})
    env[ENV_VAR] = str(threads)
    if reproducible:
        env.update(REPRODUCIBLE_ENV)
        env[REPRODUCIBLE_VAR] = "1"
    return env


NATIVE_MODULES = ("torch", "numpy", "implicit", "scipy", "sklearn")
"""Modules whose native runtimes read the policy's variables when they load."""

STATE: dict = {"wait_policy_set_with_loaded": None, "isa_pinned_with_loaded": None}
"""Which of `NATIVE_MODULES` were already loaded when this process first set the waiting
policy (and the ISA pins): an empty list means the policy reached every runtime."""


def _loaded() -> list[str]:
    return [m for m in NATIVE_MODULES if m in sys.modules]


def set_wait_policy(environ: MutableMapping[str, str] | None = None) -> None:
    """Passive waiting (`WAIT_ENV`), keeping what the user set; cheap, loads nothing. Run
    at `import recbench`, so that it precedes torch wherever recbench is imported first."""
    environ = os.environ if environ is None else environ
    for key, value in WAIT_ENV.items():
        environ.setdefault(key, value)
    if environ is os.environ and STATE["wait_policy_set_with_loaded"] is None:
        STATE["wait_policy_set_with_loaded"] = _loaded()


def configure_process(threads: int | None = None, *, reproducible: bool | None = None,
                      environ: MutableMapping[str, str] | None = None) -> int:
    """Apply the policy to this process: call it before torch / numpy / implicit load (the
    waiting policy and ISA pins are read only then); calling it again later still caps the
    pools already loaded (`apply_budget`). Returns the thread count (1 in reproducible
    mode)."""
    environ = os.environ if environ is None else environ
    if reproducible is None:
        reproducible = reproducible_requested(environ)
    n = 1 if reproducible else resolve_threads(threads, environ)
    set_wait_policy(environ)
    if (reproducible and environ is os.environ and STATE["isa_pinned_with_loaded"] is None
            and environ.get(REPRODUCIBLE_VAR) != "1"):
        STATE["isa_pinned_with_loaded"] = _loaded()
        if "torch" in sys.modules or "numpy" in sys.modules:
            import logging

            logging.getLogger("recbench").warning(
                "reproducible mode set after torch/numpy loaded (%s): their kernels are not "
                "pinned to AVX2 in this process; run through the `recbench` command, or set "
                "RECBENCH_REPRODUCIBLE=1 before importing them", ", ".join(_loaded()))
    environ.update(policy_env(n, reproducible=reproducible, environ=environ))
    if environ is os.environ:
        apply_budget(n)
    return n


def apply_budget(threads: int) -> None:
    """Cap the pools already loaded in this process at `threads`: torch's intra-op threads
    and, through threadpoolctl, BLAS and OpenMP. Loads nothing new (a library loaded later
    reads the environment that `configure_process` set). OpenMP's limit belongs to the
    calling thread: call it in the thread that runs the work."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    if "numpy" in sys.modules or torch is not None or "implicit" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - a dependency of recbench
            return
        threadpool_limits(limits=threads)


def current_threads() -> int:
    """The budget this process runs with (RECBENCH_THREADS, else resolved afresh)."""
    return resolve_threads()


def _peek_run_table(suite_path: str, overrides: list[str]) -> dict:
    """The suite's ``[run]`` table with ``--set run.KEY=VALUE`` applied, read without
    validation (the suite is validated later; this only chooses the policy early)."""
    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return {}
    try:
        with open(suite_path, "rb") as f:
            run = dict(tomllib.load(f).get("run") or {})
    except (OSError, ValueError):
        return {}
    for ov in overrides or []:
        key, sep, value = ov.partition("=")
        if not sep or not key.strip().startswith("run."):
            continue
        try:
            run[key.strip()[4:]] = tomllib.loads(f"v = {value}")["v"]
        except ValueError:
            run[key.strip()[4:]] = value
    return run


def configure_cli(command: str, *, suite: str | None = None, overrides: list[str] | None = None,
                  threads: int | None = None) -> int:
    """The CLI's first act, before any heavy import: the policy for this process, from
    ``--threads``, else the suite's ``[run] threads`` / ``reproducible`` (for `run`), else
    the environment and the usable CPUs."""
    run = _peek_run_table(suite, overrides or []) if command == "run" and suite else {}
    reproducible = run.get("reproducible") is True or reproducible_requested()
    requested = threads if threads else run.get("threads")
    if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
        requested = None
    return configure_process(requested, reproducible=reproducible)


def executor_params(run: Mapping, params: dict, accepted: set[str]) -> dict:
    """The executor's parameters under the policy: ``[run] threads`` fills the `threads`
    of an executor that declares one and got none (the local executor; parallel ones
    default to 1 per cell); in reproducible mode every cell gets 1 thread."""
    params = dict(params)
    if run.get("reproducible") or reproducible_requested():
        configure_process(reproducible=True)
        if "threads" in accepted:
            params["threads"] = 1
    elif "threads" in accepted and params.get("threads") is None and run.get("threads"):
        params["threads"] = run["threads"]
    return params
