"""Text-level helpers of the table reader: UTF-8 checks, bounded quotations of bad lines,
cut-off last lines, blank rows, and parsing numbers out of string columns."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import Any

import numpy as np

class _Retry(Exception):
    """Internal: read the text table again through :class:`_MarkingUtf8Stream`."""


_MARK = "\ufffd"  # what _MarkingUtf8Stream puts for bytes that are not UTF-8
SNIPPET_CHARS = 80  # characters of a bad line quoted in a problem report


def _snippet(text: str) -> str:
    """A bounded quotation of a bad line (repr, at most SNIPPET_CHARS characters)."""
    text = str(text)
    cut = text[:SNIPPET_CHARS]
    return repr(cut) + (f" ... ({len(text)} characters)" if len(text) > len(cut) else "")


def _casts_to_string(a: Any) -> bool:
    import pyarrow as pa

    try:
        a.cast(pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def is_utf8(b: bytes) -> bool:
    """Whether `b` decodes as UTF-8 (a raw table cell or line)."""
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _as_text(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="backslashreplace")
    return "" if v is None else str(v)


def _complete_end(path: str) -> tuple[int | None, str | None]:
    """(bytes up to the last newline, text of the cut-off last line) when a plain file
    does not end with a newline; (None, None) when it does (or is compressed/empty)."""
    if path.lower().endswith((".gz", ".bz2", ".zst")):
        return None, None
    size = os.path.getsize(path)
    if size == 0:
        return None, None
    with open(path, "rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None, None
        pos, tail = size, b""
        while pos > 0 and b"\n" not in tail:
            step = min(pos, 1 << 16)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
    cut = tail.rsplit(b"\n", 1)
    end = size - len(cut[-1])
    return end, cut[-1].decode("utf-8", errors="backslashreplace")


@contextlib.contextmanager
def _quiet_undecodable_rows():
    """Silence the traceback Python prints when pyarrow cannot decode a malformed row
    for the row handler (the read then fails and is retried through the decoder)."""
    previous = sys.unraisablehook

    def hook(info):
        if isinstance(info.exc_value, UnicodeDecodeError):
            return
        previous(info)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


class _MarkingUtf8Stream(io.RawIOBase):
    """A file read through a UTF-8 decoder that replaces bad bytes with U+FFFD (rows
    holding it are then skipped as not UTF-8); `end` bounds the bytes read."""

    def __init__(self, path: str, end: int | None = None):
        import codecs

        import pyarrow as pa

        self._src = pa.input_stream(path)  # decompresses .gz/.bz2/.zst by extension
        self._left = end
        self._dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while len(self._buf) < len(b) and not self._eof:
            want = 1 << 20 if self._left is None else min(1 << 20, self._left)
            raw = self._src.read(want) if want else b""
            if self._left is not None:
                self._left -= len(raw)
            self._eof = not raw
            self._buf += self._dec.decode(raw, final=self._eof).encode("utf-8")
        k = min(len(b), len(self._buf))
        b[:k] = self._buf[:k]
        self._buf = self._buf[k:]
        return k

    def close(self) -> None:
        self._src.close()
        super().close()


def _blank_rows(cols: dict[str, Any], n: int) -> np.ndarray | None:
    """Mask of rows whose every column is empty (blank lines), or None if there are none."""
    import pyarrow.compute as pcc

    if not cols or n == 0:
        return None
    arrays = list(cols.values())
    first = pcc.equal(arrays[0], "")
    if not pcc.any(first).as_py():  # the common case: one cheap pass over one column
        return None
    blank = first.to_numpy(zero_copy_only=False)
    for a in arrays[1:]:
        blank &= pcc.equal(a, "").to_numpy(zero_copy_only=False)
    return blank if blank.any() else None


def _arrow_msg(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200] or type(exc).__name__


_NUMBER = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"


def parse_numbers(a: Any) -> tuple[np.ndarray, np.ndarray]:
    """Parse a pyarrow string array as numbers: (float64 values, bool ok) of len(a).

    Values are 0 where not ok (empty, not a number, NaN, infinite).
    """
    import pyarrow as pa
    import pyarrow.compute as pcc

    ok = pcc.match_substring_regex(a, _NUMBER)
    cleaned = pcc.if_else(ok, pcc.utf8_trim_whitespace(a), "0")
    values = pcc.cast(cleaned, pa.float64()).to_numpy(zero_copy_only=False)
    ok_np = ok.to_numpy(zero_copy_only=False).astype(bool)
    finite = np.isfinite(values)
    values = np.where(finite & ok_np, values, 0.0)
    return values, ok_np & finite
