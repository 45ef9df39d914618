"""Built-in executors: `local` (in this process), `process` (a pool of local processes) and
`dask` (a Dask cluster: a local one on loopback, or an existing scheduler).

Every executor runs its cells under the thread policy of `recbench.threads` (passive
OpenMP / BLAS waiting, one thread count for torch, BLAS, OpenMP and implicit). The local
executor gives its cells the usable CPUs (or `threads`); parallel executors give every
cell a budget (`threads`, default 1) so that `workers x threads` matches the cores instead
of every worker using them all.

The runner's items are fit units (a model and seed: fitted once, then evaluated by every
task that applies, returning one row per task), independent of each other: executors map
over them with no grouping of their own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Any, Callable, Iterable, Iterator

from recbench import hookimpl
from recbench.components import Executor
from recbench.errors import RecbenchError
from recbench.params import Param
from recbench.threads import (CAP_VARS, ENV_VAR, configure_process, policy_env,
                              reproducible_requested, usable_cpus)

# The policy lives in recbench.threads: passive OpenMP / BLAS waiting, one thread count for
# every pool (torch, BLAS, OpenMP, implicit), the usable CPUs from affinity and cgroup quota.
THREAD_ENV = CAP_VARS + (ENV_VAR,)


def usable_cores() -> int:
    """CPUs this process can use: affinity mask capped by the cgroup CPU quota, at least 1."""
    return usable_cpus()


def thread_env(threads: int) -> dict[str, str]:
    """The environment of a worker with `threads` threads: pools capped at `threads`,
    passive waiting (unless the user chose otherwise), reproducible-mode pins inherited."""
    return policy_env(threads, reproducible=reproducible_requested())


def apply_thread_budget(threads: int) -> None:
    """Cap BLAS, OpenMP and torch intra-op threads at `threads` for the calling thread.

    Sets the environment (read by torch and BLAS libraries loaded later), then threadpoolctl
    limits and `torch.set_num_threads` for those already loaded. OpenMP's limit belongs to
    the calling thread, so call this in the thread that runs the cell.
    """
    configure_process(threads)


def _init_process_worker(threads: int, parent: int | None = None) -> None:
    """ProcessPoolExecutor initializer: thread budget; Ctrl-C is the parent's to handle;
    with `parent` (the run's pid), the worker ends itself when that process is gone.
    Passive waiting is in place before torch loads here: the spawned worker inherits the
    parent's environment and `import recbench` (to unpickle this function) sets it."""
    # The terminal sends SIGINT to the whole process group; the parent cancels and ends
    # the workers itself, so a worker must not die half-way through pickling a result.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    apply_thread_budget(threads)
    if parent is not None:
        _exit_with_parent(parent)


def _exit_with_parent(parent: int, every_s: float = 0.5) -> None:
    """A daemon thread that ends this process (exit status 1) once its parent is no longer
    `parent`: a run killed with SIGKILL cannot stop its workers, which would otherwise
    finish their fits (minutes of CPU) for nobody. Nothing is lost: a cell's result is
    only written by the run itself, and `--resume` reruns the unfinished ones."""
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="recbench-exit-with-parent", daemon=True).start()


def call_with_threads(fn: Callable[[Any], Any], threads: int, item: Any) -> Any:
    """`fn(item)` under a thread budget applied in the executing thread (Dask workers)."""
    apply_thread_budget(threads)
    return fn(item)


def _worker_lost(exc: BaseException, lost: list[tuple[int, Any]], executor: str
                 ) -> RecbenchError:
    """One line naming the cells lost with a worker: the `cell_ids` of runner fit units,
    else the items' positions."""
    names: list[str] = []
    for i, item in sorted(lost, key=lambda p: p[0]):
        ids = getattr(item, "cell_ids", None)
        if ids:
            names.extend(str(c) for c in ids)
        else:
            names.append(str(i))
    cells = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return RecbenchError(
        f"{executor} executor: lost a worker; unfinished cell(s) {cells} "
        f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); a worker dies most "
        f"often of running out of memory: use fewer --workers; finished cells are kept, "
        f"rerun with --resume")


# --------------------------------------------------------------------------- local


class LocalExecutor(Executor):
    """Runs cells one after another in this process, under the thread policy: `threads`
    (default: RECBENCH_THREADS, else the usable CPUs) for torch, BLAS and OpenMP alike."""

    name = "local"
    description = "Run cells one after another in this process (default)"
    in_process = True
    params = (
        Param("threads", int, None, "BLAS / OpenMP / torch threads (default: usable CPUs, "
              "or RECBENCH_THREADS)", min=1),
    )

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        configure_process(self.options["threads"])
        for i, item in enumerate(items):
            yield i, fn(item)


# --------------------------------------------------------------------------- process


class ProcessExecutor(Executor):
    """Runs cells in parallel worker processes on this machine (spawned, not forked:
    torch and fork do not mix). `fn` and the items must be picklable (`fn` a top-level
    function). Each worker loads the dataset once and keeps it, so memory grows with
    `workers`. A script that uses it needs the `if __name__ == "__main__":` guard."""

    name = "process"
    description = "Run cells in parallel local processes (--workers, per-cell threads)"
    params = (
        Param("workers", int, None, "Worker processes (default: usable cores // threads)",
              min=1),
        Param("threads", int, 1, "BLAS / OpenMP / torch threads per cell", min=1),
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._pool = None
        self._pending: set = set()

    @property
    def workers(self) -> int:
        """Number of worker processes."""
        return self.options["workers"] or max(1, usable_cores() // self.options["threads"])

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, ProcessPoolExecutor, wait

        indexed = list(enumerate(items))
        if not indexed:
            return
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=min(self.workers, len(indexed)),
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_process_worker,
                initargs=(self.options["threads"], os.getpid()))
        futures = {self._pool.submit(fn, item): (i, item) for i, item in indexed}
        self._pending = set(futures)
        try:
            while self._pending:
                # wait() rather than as_completed(): when a pool breaks, every unfinished
                # future fails at once, possibly alongside finished ones; those are yielded
                # first so that no finished cell is lost, and _pending names the lost ones
                done, _ = wait(self._pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: f.exception() is not None):
                    self._pending.discard(fut)
                    try:
                        result = fut.result()
                    except BrokenExecutor as exc:  # a worker was killed (OOM, signal)
                        # the whole pool is broken: every unfinished item is lost
                        lost = [futures[f] for f in {fut, *self._pending}]
                        raise _worker_lost(exc, lost, self.name) from exc
                    yield futures[fut][0], result
        except BaseException:  # KeyboardInterrupt, a lost worker, or the consumer stopped
            self._abort()
            raise

    def _abort(self) -> None:
        """Cancel queued cells and end the workers without waiting for running cells."""
        pool, self._pool = self._pool, None
        self._pending = set()
        if pool is None:
            return
        # Snapshot before shutdown, which forgets them; ProcessPoolExecutor has no public
        # way to stop a running call before Python 3.14's terminate_workers().
        procs = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():  # pragma: no cover - ignored SIGTERM
                p.kill()
                p.join(timeout=5)

    def close(self) -> None:
        """Shut the pool down: gracefully when every cell finished, else `_abort`."""
        if self._pool is None:
            return
        if self._pending:
            self._abort()
            return
        pool, self._pool = self._pool, None
        pool.shutdown(wait=True)


# --------------------------------------------------------------------------- dask


@contextlib.contextmanager
def _sigint_ignored():
    """Ignore SIGINT while worker processes start: they inherit the ignored disposition
    across exec (Python then installs no KeyboardInterrupt handler), so a Ctrl-C in the
    terminal, sent to the whole process group, reaches only this process, which stops them.
    A Ctrl-C during those seconds is lost; only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _import_distributed():
    try:
        import distributed
    except ImportError as exc:
        raise RecbenchError(f"the dask executor needs Dask: pip install 'dask[distributed]' "
                            f"({exc})") from None
    return distributed


@contextlib.contextmanager
def _environ_restored():
    """Undo changes to os.environ: a Nanny writes its pre-spawn variables into the
    environment of the process that starts it (this one) before spawning a worker."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


async def _close_nannies(nannies: list, timeout: float) -> None:
    import asyncio

    await asyncio.gather(*(n.close(timeout=timeout) for n in nannies), return_exceptions=True)


class DaskExecutor(Executor):
    """Runs cells on a Dask cluster: the one at `scheduler`, else a LocalCluster of
    `workers` processes on 127.0.0.1 (no dashboard) that `close()` shuts down.

    Each worker runs one fit unit at a time (the runner caches data per process and seeds
    global RNGs, so units must not share a process concurrently): start remote workers with
    `dask worker ADDRESS --nthreads 1`. Remote workers need recbench and the same plugins
    installed, and the same paths (suite folder, data, cache) visible.
    """

    name = "dask"
    description = "Run cells on a Dask cluster (--scheduler ADDRESS, else a local one)"
    params = (
        Param("scheduler", str, None, "Dask scheduler address (default: start a local cluster)"),
        Param("workers", int, 2, "Worker processes of the local cluster", min=1),
        Param("threads", int, 1, "BLAS / OpenMP / torch threads per cell", min=1),
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        self._client = None
        self._cluster = None
        self._pending: set = set()

    def _connect(self):
        if self._client is not None:
            return self._client
        distributed = _import_distributed()
        import dask

        address = self.options["scheduler"]
        if address:
            try:
                self._client = distributed.Client(address, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise RecbenchError(f"cannot reach the Dask scheduler at {address!r}: "
                                    f"{' '.join(str(exc).split())[:300]}") from None
            return self._client
        config = {
            # Nanny-spawned workers are daemonic by default, and daemons may not start
            # processes of their own (a model's data loader might).
            "distributed.worker.daemon": False,
            # Set before each worker process starts, so before numpy / torch load. Replaces
            # Dask's default, whose MALLOC_TRIM_THRESHOLD_ makes glibc return (and then
            # page-fault back) every large numpy buffer: numpy-heavy cells ran 1.7x slower,
            # which the rows' timings and throughput would report.
            # Passive waiting too: read when a worker's OpenMP runtime loads.
            "distributed.nanny.pre-spawn-environ": thread_env(self.options["threads"]),
        }
        with dask.config.set(config), _sigint_ignored(), _environ_restored():
            self._cluster = distributed.LocalCluster(
                n_workers=self.options["workers"], threads_per_worker=1, processes=True,
                host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
        try:
            self._client = distributed.Client(self._cluster)
        except BaseException:
            self._cluster.close()
            self._cluster = None
            raise
        return self._client

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        indexed = list(enumerate(items))
        if not indexed:
            return
        client = self._connect()
        distributed = _import_distributed()
        from concurrent.futures import CancelledError

        from distributed.scheduler import KilledWorker

        futures = {client.submit(call_with_threads, fn, self.options["threads"], item,
                                 pure=False): (i, item) for i, item in indexed}
        self._pending = set(futures)
        try:
            for fut in distributed.as_completed(list(futures)):
                try:
                    result = fut.result()
                except (KilledWorker, CancelledError) as exc:  # worker or scheduler lost
                    raise _worker_lost(exc, [futures[fut]], self.name) from exc
                self._pending.discard(fut)
                yield futures[fut][0], result
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Cancel unfinished cells; end a local cluster's workers without waiting for them."""
        pending, self._pending = list(self._pending), set()
        # best effort throughout: the cluster may already be gone; close() follows anyway
        if pending and self._client is not None:
            with contextlib.suppress(Exception):
                self._client.cancel(pending, force=True)
        if pending and self._cluster is not None:
            # a nanny gives a busy worker 4 s to finish before killing it; 0.4 s here
            with contextlib.suppress(Exception):
                self._cluster.sync(_close_nannies, list(self._cluster.workers.values()), 0.5)
        self._shutdown()

    def close(self) -> None:
        """Close the client and, when this executor started it, the local cluster (without
        waiting for running cells when some are unfinished)."""
        if self._pending:
            self._abort()
        else:
            self._shutdown()

    def _shutdown(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        self._pending = set()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


@hookimpl
def recbench_register_executors(register):
    register(LocalExecutor)
    register(ProcessExecutor)
    register(DaskExecutor)
