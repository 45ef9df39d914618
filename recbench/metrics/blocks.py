"""Blocks of (users x candidate songs): input checks, chunks of users, order-preserving
ranking keys, and stacking per-user rows."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError

DEFAULT_CHUNK = 256  # users per chunk: keeps a chunk's sort and haystack in cache

_MASKED_KEY = np.uint32(0xFFFFFFFF)  # above the key of +inf (0xFF800000): masked sort last
_SIGN = np.uint32(0x80000000)
# dtypes whose every value is exactly a float32
_EXACT_IN_F32 = {np.dtype(t) for t in (np.bool_, np.int8, np.uint8, np.int16, np.uint16,
                                       np.float16, np.float32)}


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else a  # scipy.sparse labels or masks


def _as_block(scores, labels, mask):
    s = np.asarray(_dense(scores))
    y = np.asarray(_dense(labels))
    if s.ndim != 2 or y.shape != s.shape:
        raise DataError(f"scores and labels must be 2-D arrays of the same shape (users, songs); "
                        f"got {s.shape} and {y.shape}")
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == np.bool_) or np.iscomplexobj(s):
        raise DataError(f"scores must be real numbers, got dtype {s.dtype}")
    m = None
    if mask is not None:
        m = np.asarray(_dense(mask), dtype=bool)
        if m.shape != s.shape:
            raise DataError(f"mask must have the shape of scores {s.shape}, got {m.shape}")
    return s, y, m


def _chunks(n_rows: int, chunk: int):
    chunk = max(1, int(chunk))
    for a in range(0, n_rows, chunk):
        yield a, min(n_rows, a + chunk)


def _check_nan(s: np.ndarray, m: np.ndarray | None) -> None:
    if np.issubdtype(s.dtype, np.floating) and s.size and np.isnan(s.max()):  # max: no copy
        bad = np.isnan(s)
        if m is not None:
            bad &= m
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise DataError(f"scores contain NaN for {int(bad.sum())} candidate pair(s) "
                            f"(first at block row {r}, column {c}); the model must score every "
                            "candidate")



def n_excluded(values: np.ndarray) -> int:
    """Number of users whose per-user value is undefined (NaN in the first column)."""
    v = np.asarray(values, dtype=float)
    if v.ndim > 1:
        v = v.reshape(len(v), -1)[:, 0]
    return int(np.isnan(v).sum())


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"the cutoff K must be a positive integer, got {k!r}")
    return int(k)


def _desc_keys(s: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    """uint32 keys with the reverse order and the ties of the scores `s` (2-D, no NaN among
    candidates), exactly: smaller key = better score; masked pairs get the largest key
    (rank last).

    float32-exact inputs map bit-wise (IEEE order trick, in place on one copy); others
    (float64, int64…) map to their dense rank within the block, which preserves order and
    ties exactly.
    """
    f = s.astype(np.float32)
    if s.dtype in _EXACT_IN_F32:
        exact = True
    elif np.issubdtype(s.dtype, np.integer):  # integers up to 2**24 are exact floats
        exact = not s.size or (s.min() >= -2**24 and s.max() <= 2**24)
    else:
        eq = f == s  # NaN only where masked (checked), where it must not spoil exactness
        exact = bool(eq.all()) or bool(np.all(eq | np.isnan(s)))
    if not exact:
        _, inv = np.unique(s, return_inverse=True)
        # descending dense ranks that never reach the masked key
        dk = (np.uint32(0xFFFFFFFE) - inv.reshape(s.shape)).astype(np.uint32)
    else:
        f += np.float32(0.0)  # -0.0 -> +0.0 so that the two zeros tie
        dk = f.view(np.uint32)
        # ascending key: negative floats flip all bits, positive ones set the sign bit; the
        # descending key is its complement: negative floats keep their bits, positive ones
        # flip all but the sign bit. Candidate keys stay <= 0xFF800000 (-inf).
        t = f.view(np.int32) >> 31  # -1 where negative, 0 elsewhere
        np.invert(t, out=t)
        tu = t.view(np.uint32)
        tu &= np.uint32(0x7FFFFFFF)
        dk ^= tu
    if m is not None:
        np.copyto(dk, _MASKED_KEY, where=~m)
    return dk



def stack_rows(parts) -> np.ndarray:
    """Concatenate 2-D blocks of per-user rows along users, NaN-padding to the widest."""
    parts = [np.asarray(p) for p in parts]
    if not parts:
        return np.zeros((0, 0))
    if parts[0].ndim == 1:
        return np.concatenate(parts)
    width = max(p.shape[1] for p in parts)
    dtype = np.result_type(*parts)
    out = np.full((sum(len(p) for p in parts), width), np.nan, dtype=dtype)
    row = 0
    for p in parts:
        out[row:row + len(p), :p.shape[1]] = p
        row += len(p)
    return out
