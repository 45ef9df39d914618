"""RunLock: one run at a time per output folder (filelock)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import results
from ..errors import RecbenchError

if TYPE_CHECKING:
    import filelock


# --------------------------------------------------------------------------- driver side


class RunLock:
    """An exclusive lock on OUT so that two runs never write into the same folder.

    ``OUT/.lock`` is an OS lock (`filelock`: flock where the filesystem has it), released by
    the kernel when the process dies, so neither a crash nor a full disk leaves a lock that
    blocks later runs. The holder's pid and host go to the side file ``OUT/.lock.owner``,
    only for the "in use by" message."""

    def __init__(self, out: Path):
        self.path = out / ".lock"
        self.owner_path = out / ".lock.owner"
        self._lock: filelock.BaseFileLock | None = None

    def __enter__(self) -> RunLock:
        import filelock

        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(self.path), timeout=0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            pid, host = self._owner()
            raise RecbenchError(
                f"{self.path.parent} is in use by another recbench run (pid {pid} on "
                f"{host}); wait for it to finish") from None
        try:
            results.atomic_write_text(self.owner_path,
                                      f"{os.getpid()} {socket.gethostname()}\n")
        except BaseException:
            lock.release()
            raise
        self._lock = lock
        return self

    def _owner(self) -> tuple[int | str, str]:
        try:
            pid, host = self.owner_path.read_text().split()[:2]
            return int(pid), host
        except (OSError, ValueError):
            return "?", "?"

    def __exit__(self, *exc: Any) -> None:
        if self._lock is not None:
            try:
                self.owner_path.unlink(missing_ok=True)
            except OSError:
                pass
            self._lock.release()
            self._lock = None
