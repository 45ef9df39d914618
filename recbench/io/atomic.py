"""Atomic writes, the one helper every writer of recbench uses (results, boards, feature
cache entries, dataset folders): a reader sees the old file or the new one, never a part,
and an interrupted write leaves no temporary file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def new_file_mode() -> int:
    """The mode of a newly created file (0666 less the umask), as open() would give it."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path in `target`'s folder for writers that want a file name
    (``np.save``, ``open_memmap``, ``np.savez``, ``DataFrame.to_csv``); on success the file
    there replaces `target` (with the permissions of a new file), on failure it is deleted.
    `suffix` ends the temporary name (``np.save`` adds ``.npy`` to a name without it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())  # mkstemp makes 0600; written files are all alike
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> None:
    """Write `data` to `path` so that readers see the old or the new file, never a part.
    Without `fsync` the write survives a killed process but not a power cut (the cell
    files: results.jsonl holds the same row, fsync'd)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = True) -> None:
    """Write `text` (UTF-8) to `path` atomically (see `atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)
