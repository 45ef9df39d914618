"""Cache entries' integrity: the record written with an entry, checked on every read; locks."""

from __future__ import annotations

import contextlib
import hashlib
import os
from typing import Any

import numpy as np


_FORMAT = "recbench-features-v3"  # bump when the stored layout or the maths change
# v3: the .npz carries the array's integrity record and the reasons of dropped songs

_CHECKSUM = "sha256"


# --------------------------------------------------------------------------- integrity


class CacheEntryDamaged(Exception):
    """A cache entry that does not match its integrity record (the message says how)."""


# npy path -> (size, mtime_ns, inode, checksum) of the file version whose checksum this
# process verified (or wrote): later reads in the process check size and shape only
_VERIFIED: dict[str, tuple[int, int, int, str]] = {}


def _key_of(npy_path: str) -> str:
    return os.path.basename(npy_path)[:-len(".npy")]


def _checksum(path: str) -> str:
    h = hashlib.new(_CHECKSUM)
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 22)
            if not block:
                break
            h.update(block)
    return f"{_CHECKSUM}:{h.hexdigest()}"


def _file_record(path: str, shape: tuple[int, ...]) -> dict[str, Any]:
    return {"size": os.path.getsize(path), "shape": list(shape), "dtype": "float16",
            "checksum": _checksum(path)}


def _read_entry(npy_path: str, npz_path: str, n_songs: int, n_channels: int
                ) -> tuple[np.ndarray, dict[str, Any], str]:
    """(memory-mapped array, npz contents, how verified) of a cache entry, or
    CacheEntryDamaged naming what does not match."""
    try:
        with np.load(npz_path) as z:
            meta = {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001 - zip/CRC/pickle errors of a damaged file
        raise CacheEntryDamaged(f"{os.path.basename(npz_path)} is unreadable "
                                f"({type(exc).__name__}: {exc})") from None
    need = ("lengths", "sums", "sumsq", "failed", "messages", "format", "key", "npy_size",
            "npy_shape", "npy_dtype", "npy_checksum")
    missing = [k for k in need if k not in meta]
    if missing:
        raise CacheEntryDamaged(f"{os.path.basename(npz_path)} lacks {', '.join(missing)}")
    if str(meta["format"]) != _FORMAT or str(meta["key"]) != _key_of(npy_path):
        raise CacheEntryDamaged(f"{os.path.basename(npz_path)} belongs to "
                                f"{meta['format']}/{meta['key']}, not this entry")
    size, shape = int(meta["npy_size"]), tuple(int(x) for x in meta["npy_shape"])
    try:
        st = os.stat(npy_path)
    except OSError as exc:
        raise CacheEntryDamaged(f"array file unreadable ({exc.strerror})") from None
    if st.st_size != size:
        raise CacheEntryDamaged(f"array file has {st.st_size} bytes, the record says {size} "
                                "(truncated or overwritten)")
    try:
        arr = np.load(npy_path, mmap_mode="r")
    except Exception as exc:  # noqa: BLE001
        raise CacheEntryDamaged(f"array file unreadable ({type(exc).__name__}: {exc})"
                                ) from None
    if arr.shape != shape or str(arr.dtype) != str(meta["npy_dtype"]) or \
            arr.dtype != np.float16:
        raise CacheEntryDamaged(f"array has shape {arr.shape} {arr.dtype}, the record says "
                                f"{shape} {meta['npy_dtype']}")
    if shape[0] != n_songs or shape[2] != n_channels:
        raise CacheEntryDamaged(f"array has shape {shape}; expected ({n_songs}, steps, "
                                f"{n_channels})")
    lengths, sums, sumsq = meta["lengths"], meta["sums"], meta["sumsq"]
    if lengths.shape != (n_songs,) or sums.shape != (n_songs, n_channels) or \
            sumsq.shape != sums.shape:
        raise CacheEntryDamaged("statistics do not match the array's shape")
    if lengths.min(initial=0) < 0 or lengths.max(initial=0) > shape[1]:
        raise CacheEntryDamaged("song lengths exceed the array")
    if not (np.isfinite(sums).all() and np.isfinite(sumsq).all()):
        raise CacheEntryDamaged("statistics hold NaN or infinite values")
    checksum = str(meta["npy_checksum"])
    seen = _VERIFIED.get(npy_path)
    if seen == (st.st_size, st.st_mtime_ns, st.st_ino, checksum):
        how = "size, shape and record (checksum verified earlier in this process)"
    else:
        got = _checksum(npy_path)
        if got != checksum:
            raise CacheEntryDamaged(f"array checksum {got[:20]}... differs from the record "
                                    f"{checksum[:20]}... (overwritten or corrupted)")
        _VERIFIED[npy_path] = (st.st_size, st.st_mtime_ns, st.st_ino, checksum)
        how = f"size, shape, record and {_CHECKSUM} checksum"
    return arr, meta, how


@contextlib.contextmanager
def _file_lock(path: str):
    """An exclusive lock on `path` across processes, released by the kernel if the holder
    dies (`filelock`: flock on POSIX, msvcrt on Windows, where the hand-written flock
    version was a no-op). The same lock library guards the run folder."""
    import filelock

    with filelock.FileLock(path):
        yield
