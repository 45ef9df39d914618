"""The generic on-disk dataset format, and the table readers the loaders share.

A dataset folder (written by :func:`write_dataset`, read by the ``folder`` dataset)::

    dataset.json       name, synthetic flag, sample_rate, feature_params, tag names, audio
                       index, the source dataset's manifest
    interactions.tsv   user<TAB>song<TAB>count, with a header line
    users.txt          user ids in row order (one per line; also users without interactions)
    songs.txt          song ids in column order
    tags.tsv           song<TAB>tag (plus <TAB>value when a tag weight is not 1), with a header
    audio/<song>.wav   one clip per song; ids are %-quoted when they contain unsafe characters
    features/<name>.npy  precomputed per-song features (Dataset.features), if any

Only interactions.tsv is needed by the ``folder`` loader; the rest is optional.

Audio identities. `Dataset.fingerprint` hashes every song's audio identity. Clips are
written as 32-bit float WAV at the dataset's sample rate, which decodes back to exactly
the samples the source returned (float32, mono, no resampling). `dataset.json` records,
per song, the source identity and the SHA-256, size and mtime of the written file. On
reading, a song gets its source identity back only when its file is provably the one
written (same size and mtime, or else the same SHA-256); otherwise its identity is the
file's content hash and the fingerprint changes, as it should. With a lossy
`audio_subtype` (e.g. PCM_16) identities are never restored: the audio differs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import scipy.sparse as sp

from .data import Dataset
from .errors import DataError

FORMAT_NAME = "recbench-dataset"
FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
LOSSLESS_SUBTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64}
MAX_NAMED = 1000  # songs named individually in a manifest list; the rest are only counted
MAX_EXAMPLES = 5  # located examples kept per kind of problem
MAX_EXAMPLE_CHARS = 300  # characters kept of one example (file:line: reason)
MAX_REASON_CHARS = 200  # characters kept of a dropped song's reason

_UNSAFE = re.compile(r"[\t\r\n]")


# --------------------------------------------------------------------------- problems


class Problems:
    """What loading dropped or repaired: counts per kind, a few located examples.

    `bad(kind, where, reason)` records a malformed input (fatal under `strict`);
    `drop(kind, n)` counts values removed by a documented rule (e.g. non-positive counts);
    `repair(kind, n)` counts values fixed (e.g. duplicate rows summed).
    `drop_song(song, reason, file)` names a dropped song. `manifest()` renders all this
    as the plain dict stored in `Dataset.manifest`. What it keeps is bounded whatever the
    input: MAX_EXAMPLES located examples per kind of problem, each on one line of at most
    MAX_EXAMPLE_CHARS characters (a quoted bad line at most SNIPPET_CHARS), MAX_NAMED
    dropped songs with reasons of at most MAX_REASON_CHARS; the rest is only counted.
    """

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.dropped: dict[str, int] = {}
        self.repaired: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}
        self.dropped_songs: list[dict[str, str]] = []
        self.n_dropped_songs = 0

    def bad(self, kind: str, where: str, reason: str, n: int = 1) -> None:
        """Record `n` malformed inputs; the first is located at `where` (file:line)."""
        if n <= 0:
            return
        if self.strict:
            raise DataError(f"{where}: {reason} (strict mode; set strict = false to skip "
                            "and count such input)")
        self.dropped[kind] = self.dropped.get(kind, 0) + n
        ex = self.examples.setdefault(kind, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(_bounded(f"{where}: {reason}", MAX_EXAMPLE_CHARS))

    def drop(self, kind: str, n: int) -> None:
        """Count `n` items dropped by a documented rule (not an error)."""
        if n > 0:
            self.dropped[kind] = self.dropped.get(kind, 0) + int(n)

    def repair(self, kind: str, n: int) -> None:
        """Count `n` items repaired (kept in a fixed form)."""
        if n > 0:
            self.repaired[kind] = self.repaired.get(kind, 0) + int(n)

    def drop_song(self, song: str, reason: str, file: str | None = None,
                  fatal: bool = True) -> None:
        """Name a song dropped for `reason` (fatal under strict when `fatal`)."""
        if self.strict and fatal:
            raise DataError(f"{file or song}: {reason} (song {song}; strict mode)")
        self.n_dropped_songs += 1
        if len(self.dropped_songs) < MAX_NAMED:
            entry = {"song": _bounded(str(song), MAX_REASON_CHARS),
                     "reason": _bounded(str(reason), MAX_REASON_CHARS)}
            if file:
                entry["file"] = str(file)
            self.dropped_songs.append(entry)

    def manifest(self) -> dict[str, Any]:
        """{"dropped": {...}, "repaired": {...}, "examples": {...}, "dropped_songs": [...]}."""
        out: dict[str, Any] = {"dropped": dict(self.dropped), "repaired": dict(self.repaired)}
        if self.examples:
            out["examples"] = {k: list(v) for k, v in self.examples.items()}
        out["dropped_songs"] = list(self.dropped_songs)
        out["n_dropped_songs"] = self.n_dropped_songs
        if self.n_dropped_songs > len(self.dropped_songs):
            out["dropped_songs_truncated"] = True
        return out


def _bounded(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters (the cut marked with '...')."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# --------------------------------------------------------------------------- tables


def table_format(path: str | os.PathLike) -> str:
    """"tsv", "csv" or "parquet" from a file name (.tsv/.txt/.csv/.parquet/.pq, optionally
    compressed .gz/.bz2/.zst for text)."""
    name = Path(path).name.lower()
    for comp in (".gz", ".bz2", ".zst"):
        name = name.removesuffix(comp)
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".tsv", ".txt", ".tab")):
        return "tsv"
    raise DataError(f"{path}: unknown table format (expected .tsv, .txt, .csv or .parquet)")


class TableReader:
    """Streams columns of a TSV, CSV or Parquet file as pyarrow string arrays.

    path:      the file.
    columns:   the columns wanted. With `header`, names in the header line (or Parquet
               schema); without, the file's columns are named `names` in order.
    optional:  columns that may be absent (reported by `present`).
    problems:  receives malformed lines (wrong number of fields, bytes that are not
               UTF-8), located by line; None to ignore them silently (a second pass over
               the same file).
    limit:     read at most this many data rows.
    complete_lines: the file is known to end each line with a newline (e.g. the published
               MSD triplets): a last line without one was cut off (a truncated copy) and is
               skipped and counted as `truncated_lines`, never read as a shorter number.

    A line with bytes that are not UTF-8 is skipped and counted like a line with the
    wrong number of fields; it never rejects the whole table. Text is read natively; only
    when pyarrow itself cannot go on (a line both malformed and not UTF-8) is the file
    read again through a decoder that marks the bad bytes, the rows already yielded
    being skipped and every problem reported once.

    Iterating yields (first_row, {column: pyarrow.Array of strings}) batches; row numbers
    count data rows kept so far (blank and malformed lines excluded). `where(rows)` turns
    such row numbers into "file:line" strings (Parquet: "file: row N").
    """

    def __init__(self, path: str | os.PathLike, columns: Sequence[str], *, header: bool = True,
                 names: Sequence[str] | None = None, optional: Sequence[str] = (),
                 problems: Problems | None = None, limit: int | None = None,
                 block_size: int = 8 << 20, complete_lines: bool = False):
        self.path = os.fspath(path)
        self.format = table_format(self.path)
        self.header = header
        self.names = list(names) if names is not None else None
        self.problems = problems
        self.limit = limit
        self.block_size = block_size
        self._skipped: list[int] = []  # physical lines of malformed / blank rows, ascending
        self._strict_error: str | None = None
        self._reported: set[int] = set()  # physical lines already given to `problems`
        self._sanitised = False  # reading through _MarkingUtf8Stream (second attempt)
        self._yielded = 0  # data rows yielded so far
        self._end: int | None = None  # bytes to read (a cut-off last line excluded)
        self._cut_line: str | None = None  # the cut-off last line's text, if any
        self.complete_lines = complete_lines
        self.blank_lines = 0
        self.available = self._columns_in_file()
        missing = [c for c in columns if c not in self.available and c not in optional]
        if missing:
            raise DataError(
                f"{self.path}: no column {', '.join(map(repr, missing))} (columns: "
                f"{', '.join(self.available) or 'none'}); set the *_col parameters or "
                f"header = {str(not header).lower()}")
        self.present = [c for c in columns if c in self.available]

    # -- schema
    def _columns_in_file(self) -> list[str]:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                return list(pq.ParquetFile(self.path).schema_arrow.names)
            except Exception as exc:  # noqa: BLE001
                raise DataError(f"{self.path}: not a readable Parquet file ({exc})") from None
        if not self.header:
            if self.names is None:
                raise ValueError("names are required without a header")
            return list(self.names)
        import pyarrow.csv as pc

        import pyarrow as pa

        try:
            # only the first line: a bad data line further on must not fail the header
            with pa.input_stream(self.path) as f:
                head = f.read(1 << 16)
            while b"\n" not in head and len(head) < (16 << 20):
                with pa.input_stream(self.path) as f:
                    more = f.read(4 * len(head))
                if len(more) == len(head):
                    break
                head = more
            head = head.split(b"\n", 1)[0] + b"\n"
            reader = pc.open_csv(pa.BufferReader(head), read_options=pc.ReadOptions(
                block_size=1 << 16, use_threads=False),
                parse_options=self._parse_options(lambda row: "skip"),
                convert_options=pc.ConvertOptions(include_columns=[]))
            names = list(reader.schema.names)
            reader.close()
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{self.path}: cannot read the header line ({_arrow_msg(exc)})"
                            ) from None
        return names

    def _parse_options(self, handler: Callable | None):
        import pyarrow.csv as pc

        if self.format == "tsv":
            return pc.ParseOptions(delimiter="\t", quote_char=False, ignore_empty_lines=False,
                                   invalid_row_handler=handler)
        return pc.ParseOptions(delimiter=",", ignore_empty_lines=False,
                               invalid_row_handler=handler)

    # -- locating rows
    @property
    def first_line(self) -> int:
        return 2 if self.header and self.format != "parquet" else 1

    def lines(self, rows: np.ndarray) -> np.ndarray:
        """Physical line numbers (1-based) of data rows (numbers as yielded)."""
        rows = np.asarray(rows, dtype=np.int64)
        s = np.asarray(self._skipped, dtype=np.int64)
        # A skipped line j is preceded by (s_j - first_line - j) kept rows.
        kept_before = s - self.first_line - np.arange(len(s))
        return self.first_line + rows + np.searchsorted(kept_before, rows, side="right")

    def where(self, row: int) -> str:
        """'file:line' of a data row (Parquet: 'file: row N')."""
        line = int(self.lines(np.array([row]))[0])
        if self.format == "parquet":
            return f"{self.path}: row {line}"
        return f"{self.path}:{line}"

    # -- reading
    def _handler(self, row) -> str:
        if row.text.strip() == "":
            self._skipped.append(row.number)
            self.blank_lines += 1
            return "skip"
        reason = (f"expected {row.expected_columns} "
                  f"{'tab-separated' if self.format == 'tsv' else 'comma-separated'} fields, "
                  f"got {row.actual_columns}: {_snippet(row.text)}")
        if _MARK in row.text:
            reason = "not valid UTF-8 text, and " + reason
        where = f"{self.path}:{row.number}"
        if self.problems is not None:
            if self.problems.strict:
                self._strict_error = f"{where}: {reason}"
                return "error"
            self._report(row.number, "malformed_lines", where, reason)
        self._skipped.append(row.number)
        return "skip"

    def _report(self, line: int, kind: str, where: str, reason: str) -> None:
        """Give one malformed line to `problems`, once (a re-read reports nothing twice)."""
        if self.problems is None or line in self._reported:
            return
        self._reported.add(line)
        self.problems.bad(kind, where, reason)

    def _drop_rows(self, n: int, cols: dict[str, Any], bad: np.ndarray, row0: int,
                       problem: Callable[[int, int], tuple[str, str]], unit: str
                       ) -> tuple[int, dict[str, Any]]:
        """Report the rows flagged in `bad` (each as `problem(index in batch, line)` ->
        (where, reason)) as malformed, or raise in strict mode; return the batch without
        them."""
        import pyarrow as pa

        idx = np.flatnonzero(bad)
        lines = self.lines(row0 + idx)
        for j, line in zip(idx.tolist(), lines.tolist()):
            where, reason = problem(j, line)
            if self.problems is not None and self.problems.strict:
                raise DataError(f"{where}: {reason} (strict mode; set strict = false to "
                                f"skip and count such {unit})")
            self._report(line, "malformed_lines", where, reason)
        self._skipped = sorted(self._skipped + lines.tolist())
        keep = pa.array(~bad)
        return n - len(idx), {c: a.filter(keep) for c, a in cols.items()}

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.format == "parquet":
            yield from self._iter_parquet()
        else:
            yield from self._iter_text()

    def _iter_text(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.complete_lines:
            self._end, self._cut_line = _complete_end(self.path)
        try:
            yield from self._text_pass()
        except _Retry:
            # pyarrow stopped at a line it could not even show us (malformed and not
            # UTF-8): read again with the bad bytes marked; nothing is yielded twice
            self._sanitised = True
            self._skipped, self.blank_lines = [], 0
            yield from self._text_pass()
        if self._cut_line is not None and (self.limit is None or self._yielded < self.limit):
            last = max([int(self.lines(np.array([self._yielded - 1]))[0])
                        if self._yielded else self.first_line - 1] + self._skipped[-1:])
            reason = ("the file ends without a newline: its last line was cut off (a "
                      f"truncated copy?) and is skipped: {_snippet(self._cut_line)}")
            where = f"{self.path}:{last + 1}"
            if self.problems is not None:
                if self.problems.strict:
                    raise DataError(f"{where}: {reason} (strict mode; set strict = false to "
                                    "skip and count it)")
                self._report(last + 1, "truncated_lines", where, reason)

    def _text_pass(self) -> Iterator[tuple[int, dict[str, Any]]]:
        import pyarrow as pa
        import pyarrow.csv as pc

        read = pc.ReadOptions(block_size=self.block_size, use_threads=False,
                              column_names=None if self.header else self.names)
        kind = pa.string() if self._sanitised else pa.binary()  # binary: UTF-8 checked here
        convert = pc.ConvertOptions(include_columns=self.present, strings_can_be_null=False,
                                    column_types={c: kind for c in self.present},
                                    quoted_strings_can_be_null=False)
        row0 = 0  # data rows kept so far in this pass
        try:
            with _quiet_undecodable_rows():
                reader = pc.open_csv(self._source(), read_options=read,
                                     parse_options=self._parse_options(self._handler),
                                     convert_options=convert)
            while True:
                with _quiet_undecodable_rows():
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                cols = {c: batch.column(c) for c in self.present}
                n = batch.num_rows
                n, cols = self._drop_non_utf8(row0, n, cols)
                blank = _blank_rows(cols, n)
                if blank is not None:
                    # A blank line parses as a row of empty strings: drop it, keep the
                    # line arithmetic right by recording it as skipped.
                    idx = np.flatnonzero(blank)
                    lines = self.lines(row0 + idx)
                    self._skipped = sorted(self._skipped + lines.tolist())
                    self.blank_lines += len(idx)
                    keep = pa.array(~blank)
                    cols = {c: a.filter(keep) for c, a in cols.items()}
                    n -= len(idx)
                n, cols = self._clip(row0, n, cols)
                if row0 + n > self._yielded:  # a re-read skips the rows already yielded
                    done = max(self._yielded - row0, 0)
                    if done:
                        cols = {c: a.slice(done) for c, a in cols.items()}
                    self._yielded = row0 + n
                    yield row0 + done, cols
                row0 += n
                if self.limit is not None and row0 >= self.limit:
                    break
        except (DataError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - arrow raises ArrowInvalid / OSError
            if self._strict_error:
                raise DataError(f"{self._strict_error} (strict mode; set strict = false to "
                                "skip and count malformed lines)") from None
            if not self._sanitised and isinstance(exc, (ValueError, UnicodeDecodeError)):
                raise _Retry() from None
            raise DataError(f"{self.path}: cannot read ({_arrow_msg(exc)})") from None

    def _source(self):
        """What pyarrow reads: the path, a bounded view of it, or the marking decoder."""
        import pyarrow as pa

        if self._sanitised:
            return _MarkingUtf8Stream(self.path, self._end)
        if self._end is None:
            return self.path
        return pa.BufferReader(pa.memory_map(self.path).read_buffer(self._end))

    def _drop_non_utf8(self, row0: int, n: int, cols: dict[str, Any]
                       ) -> tuple[int, dict[str, Any]]:
        """Skip and count the rows of a batch whose fields are not UTF-8; cast to strings."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        bad = None
        if self._sanitised:
            for a in cols.values():
                m = pcc.match_substring(a, _MARK).to_numpy(zero_copy_only=False)
                bad = m if bad is None else bad | m
            if bad is not None and not bad.any():
                bad = None
        else:
            out = {}
            for c, a in cols.items():
                try:  # a zero-copy view, validated: as cheap as parsing to strings
                    out[c] = a.view(pa.string())
                    out[c].validate(full=True)
                except pa.ArrowInvalid:
                    m = np.array([v is not None and not is_utf8(v)
                                  for v in a.to_pylist()], dtype=bool)
                    bad = m if bad is None else bad | m
            if bad is None:
                return n, out
        if bad is not None:
            def line_problem(j: int, line: int) -> tuple[str, str]:
                text = "\t".join(_as_text(cols[c][j].as_py()) for c in self.present)
                return f"{self.path}:{line}", f"not valid UTF-8 text: {_snippet(text)}"

            n, cols = self._drop_rows(n, cols, bad, row0, line_problem, "lines")
        if not self._sanitised:
            cols = {c: a.view(pa.string()) for c, a in cols.items()}  # validated above
        return n, cols

    def _clip(self, row0: int, n: int, cols: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The first rows of a block that fit under `limit` (all of them without one)."""
        if self.limit is not None and row0 + n > self.limit:
            n = max(self.limit - row0, 0)
            cols = {c: a.slice(0, n) for c, a in cols.items()}
        return n, cols

    def _iter_parquet(self) -> Iterator[tuple[int, dict[str, Any]]]:
        import pyarrow as pa
        import pyarrow.compute as pcc
        import pyarrow.parquet as pq

        row0 = 0
        try:
            pf = pq.ParquetFile(self.path)
            for batch in pf.iter_batches(batch_size=1 << 20, columns=self.present):
                cols = {}
                n = batch.num_rows
                bad = np.zeros(n, dtype=bool)
                for c in self.present:
                    a = batch.column(c)
                    if (pa.types.is_binary(a.type) or pa.types.is_large_binary(a.type)) and \
                            not _casts_to_string(a):
                        bad |= np.array([v is not None and not is_utf8(v)
                                         for v in a.to_pylist()], dtype=bool)
                    cols[c] = a
                if bad.any():  # binary values that are not UTF-8: skip and count the rows
                    n, cols = self._drop_rows(
                        n, cols, bad, row0,
                        lambda j, r: (f"{self.path}: row {r}", "not valid UTF-8 text"), "rows")
                for c, a in cols.items():
                    if not pa.types.is_string(a.type) and not pa.types.is_large_string(a.type):
                        a = pcc.cast(a, pa.string())
                    cols[c] = pcc.fill_null(a, "")
                n, cols = self._clip(row0, n, cols)
                if n:
                    yield row0, cols
                row0 += n
                if self.limit is not None and row0 >= self.limit:
                    break
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{self.path}: cannot read Parquet ({_arrow_msg(exc)})") from None


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


def first_bad_rows(mask_bad: np.ndarray, k: int = MAX_EXAMPLES) -> np.ndarray:
    """Positions of the first `k` True entries."""
    return np.flatnonzero(mask_bad)[:k]


def report_bad_rows(problems: Problems, reader: TableReader, row0: int, bad: np.ndarray,
                    reason: Callable[[int], str], kind: str = "malformed_lines") -> None:
    """Record the rows flagged in `bad` (a bool mask over a batch starting at row0)."""
    n = int(bad.sum())
    if not n:
        return
    pos = first_bad_rows(bad, 1 if problems.strict else MAX_EXAMPLES)
    for j, p in enumerate(pos):
        problems.bad(kind, reader.where(row0 + int(p)), reason(int(p)),
                     n=1 if j < len(pos) - 1 else n - len(pos) + 1)


class IdCollector:
    """Collects string ids batch by batch; assigns dense positions at the end.

    `add(array)` dictionary-encodes a pyarrow string array and returns a batch number;
    `finish(fixed)` fixes the order (the `fixed` ids first, in their order, then the
    others sorted) and returns (ids, positions of batch 0, 1, ...). One hash pass over all
    distinct ids: no per-row Python objects.
    """

    def __init__(self) -> None:
        self._dicts: list[Any] = []
        self._codes: list[np.ndarray] = []

    def add(self, a: Any) -> int:
        import pyarrow.compute as pcc

        enc = pcc.dictionary_encode(a)
        if hasattr(enc, "combine_chunks"):
            enc = enc.combine_chunks()
        self._dicts.append(enc.dictionary)
        self._codes.append(enc.indices.to_numpy(zero_copy_only=False).astype(np.int32))
        return len(self._codes) - 1

    def finish(self, fixed: Sequence[str] | None = None
               ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(ids as a numpy str array, [int64 positions of each added batch's rows])."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        all_ids = pa.concat_arrays([d.cast(pa.string()) for d in self._dicts]
                                   or [pa.array([], pa.string())])
        uniq = pcc.unique(all_ids)
        if fixed:
            fixed_a = pa.array(list(fixed), pa.string())
            others = pcc.filter(uniq, pcc.invert(pcc.is_in(uniq, value_set=fixed_a)))
        else:
            fixed_a, others = pa.array([], pa.string()), uniq
        others = pcc.take(others, pcc.sort_indices(others))
        order = pa.concat_arrays([fixed_a, others])
        pos_all = pcc.index_in(all_ids, value_set=order).to_numpy(
            zero_copy_only=False).astype(np.int64)
        out, k = [], 0
        for d, codes in zip(self._dicts, self._codes):
            out.append(pos_all[k:k + len(d)][codes])
            k += len(d)
        ids = np.asarray(order.to_pylist(), dtype=str) if len(order) else np.array([], str)
        return ids, out


# --------------------------------------------------------------------------- writing


def _check_id(value: str, what: str) -> str:
    s = str(value)
    if _UNSAFE.search(s) or s == "":
        raise DataError(f"cannot write {what} {s!r}: ids must be non-empty and contain no "
                        "tab or newline")
    return s


def audio_file_name(song_id: str, ext: str = "wav") -> str:
    """The file name of a song's clip: the id, %-quoted when it has unsafe characters."""
    safe = quote(str(song_id), safe="-_.+=@,~ ")
    if safe in ("", ".", "..") or safe.startswith("."):
        safe = quote(safe, safe="")
        safe = safe.replace(".", "%2E", 1) if safe.startswith(".") else safe
    return f"{safe}.{ext}"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 10_000 else f"<array {obj.shape} {obj.dtype}>"
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def write_dataset(dataset: Dataset, out_dir: str | os.PathLike, *,
                  audio_subtype: str = "FLOAT", overwrite: bool = False,
                  progress: Callable[..., Any] | None = None) -> Path:
    """Write `dataset` as a dataset folder (see the module docstring); returns its path.

    audio_subtype: soundfile subtype of the WAV clips: "FLOAT" (default, lossless for
                   float32 sources, so the fingerprint survives a round trip) or e.g.
                   "PCM_16" (half the size; the audio and the fingerprint change).
    overwrite:     replace an existing dataset folder's files (otherwise DataError).
    progress:      `progress(iterable, total=, desc=)` around the audio loop.
    Songs whose audio cannot be read are listed in dataset.json["audio"]["unreadable"].
    """
    out = Path(out_dir)
    if (out / DATASET_JSON).exists() and not overwrite:
        raise DataError(f"{out}: already holds a dataset ({DATASET_JSON}); choose another "
                        "folder or pass overwrite")
    out.mkdir(parents=True, exist_ok=True)
    user_ids = [_check_id(u, "user id") for u in dataset.user_ids]
    song_ids = [_check_id(s, "song id") for s in dataset.song_ids]
    if len(set(user_ids)) != len(user_ids) or len(set(song_ids)) != len(song_ids):
        raise DataError(f"{dataset.name}: user or song ids are not unique; cannot write")
    tag_names = [_check_id(t, "tag name") for t in dataset.tag_names]

    (out / "users.txt").write_text("".join(u + "\n" for u in user_ids), encoding="utf-8")
    (out / "songs.txt").write_text("".join(s + "\n" for s in song_ids), encoding="utf-8")

    m = sp.csr_matrix(dataset.counts).tocoo()
    _write_tsv(out / "interactions.tsv", ["user", "song", "count"],
               [np.asarray(user_ids, dtype=object)[m.row],
                np.asarray(song_ids, dtype=object)[m.col], _fmt_numbers(m.data)])

    files: dict[str, Any] = {"interactions": "interactions.tsv", "users": "users.txt",
                             "songs": "songs.txt", "tags": None, "audio_dir": None}
    if dataset.tags is not None:
        t = sp.csr_matrix(dataset.tags).tocoo()
        cols = [np.asarray(song_ids, dtype=object)[t.row],
                np.asarray(tag_names, dtype=object)[t.col]]
        header = ["song", "tag"]
        if t.nnz and not np.all(t.data == 1):
            header.append("value")
            cols.append(_fmt_numbers(t.data))
        _write_tsv(out / "tags.tsv", header, cols)
        files["tags"] = "tags.tsv"

    meta: dict[str, Any] = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": dataset.name,
        "synthetic": bool(dataset.synthetic),
        "sample_rate": int(dataset.audio.sample_rate) if dataset.audio is not None else None,
        "n_users": int(dataset.n_users), "n_songs": int(dataset.n_songs),
        "n_interactions": int(dataset.counts.nnz), "fingerprint": dataset.fingerprint,
        "files": files, "tag_names": tag_names, "tags_shape": (
            list(dataset.tags.shape) if dataset.tags is not None else None),
        "feature_params": _json_safe(dataset.manifest.get("feature_params")),
        "manifest": _json_safe(dataset.manifest),
    }
    if dataset.audio is not None:
        meta["audio"] = _write_audio(dataset, out, song_ids, audio_subtype, progress)
        files["audio_dir"] = "audio"
    if dataset.features:
        (out / "features").mkdir(exist_ok=True)
        feats = {}
        for name, arr in dataset.features.items():
            rel = f"features/{name}.npy"
            np.save(out / rel, np.asarray(arr))
            feats[name] = {"file": rel, "shape": list(np.shape(arr)),
                           "dtype": str(np.asarray(arr).dtype)}
        meta["features"] = feats
    tmp = out / (DATASET_JSON + ".tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, out / DATASET_JSON)  # written last: its presence means "complete"
    return out


def _fmt_numbers(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if np.all(v == np.round(v)) and (v.size == 0 or np.abs(v).max() < 2**53):
        return v.astype(np.int64).astype(str).astype(object)
    # 9 significant digits round-trip float32 exactly; 17 for float64.
    fmt = "%.9g" if v.dtype == np.float32 else "%.17g"
    return np.char.mod(fmt, v).astype(object)


def _write_tsv(path: Path, header: list[str], cols: list[np.ndarray]) -> None:
    import pandas as pd

    df = pd.DataFrame({h: c for h, c in zip(header, cols)})
    df.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE, lineterminator="\n")


def _write_audio(dataset: Dataset, out: Path, song_ids: list[str], subtype: str,
                 progress: Callable[..., Any] | None) -> dict[str, Any]:
    import hashlib

    import soundfile as sf

    audio = dataset.audio
    assert audio is not None
    (out / "audio").mkdir(exist_ok=True)
    sr = int(audio.sample_rate)
    files: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    lossless_dtype = LOSSLESS_SUBTYPES.get(subtype.upper())
    it = range(len(audio))
    if progress is not None:
        it = progress(it, total=len(audio), desc="writing audio")
    for i in it:
        sid = song_ids[i]
        try:
            x = np.asarray(audio.waveform(i))
        except Exception as exc:  # noqa: BLE001 - recorded, the song is left without audio
            unreadable[sid] = " ".join(str(exc).split())[:200] or type(exc).__name__
            continue
        rel = "audio/" + audio_file_name(sid, "wav")
        sf.write(out / rel, x, sr, subtype=subtype, format="WAV")
        data = (out / rel).read_bytes()
        st = os.stat(out / rel)
        lossless = (lossless_dtype is not None and x.ndim == 1 and x.dtype == lossless_dtype)
        files[sid] = {"file": rel, "source_identity": audio.identity(i),
                      "lossless": bool(lossless),
                      "sha256": hashlib.sha256(data).hexdigest(), "size": st.st_size,
                      "mtime_ns": st.st_mtime_ns}
    return {"dir": "audio", "subtype": subtype, "sample_rate": sr, "files": files,
            "unreadable": unreadable}


# --------------------------------------------------------------------------- reading


def read_dataset_json(root: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed dataset.json of a dataset folder, or None if it has none."""
    p = Path(root) / DATASET_JSON
    if not p.exists():
        return None
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DataError(f"{p}: not a recbench dataset description (expected "
                        f"\"format\": \"{FORMAT_NAME}\")")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise DataError(f"{p}: dataset format version {meta.get('version')} is newer than "
                        f"this recbench reads ({FORMAT_VERSION})")
    return meta


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Ids, one per line (blank lines ignored); DataError naming the line when one is not
    UTF-8 (these files are written by `write_dataset`: a bad one is a damaged copy)."""
    out = []
    with open(path, "rb") as f:
        for ln, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{ln}: not valid UTF-8 text: "
                                f"{_snippet(_as_text(raw.rstrip(bytes([10, 13]))))}; expected "
                                "one id per line (a damaged copy? delete it to use the table "
                                "order)") from None
            if line.strip():
                out.append(line.rstrip("\r\n"))
    return out


def restored_identity(root: Path, entry: dict[str, Any], path: str) -> str | None:
    """The source identity recorded for a written clip, if the file is provably unchanged.

    Unchanged = same size and mtime as recorded, or else the same SHA-256 (a copy).
    Returns None when the clip was written lossily or the file changed.
    """
    from .audio import file_sha256

    if not entry.get("lossless") or not entry.get("source_identity"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_size != entry.get("size"):
        return None
    if st.st_mtime_ns == entry.get("mtime_ns"):
        return str(entry["source_identity"])
    if file_sha256(path) == entry.get("sha256"):
        return str(entry["source_identity"])
    return None


def coo_to_csr(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
               shape: tuple[int, int]) -> tuple[sp.csr_matrix, int]:
    """CSR float32 matrix summing duplicate (row, col) entries; also returns the number
    of input entries merged into an earlier one."""
    m = sp.coo_matrix((np.asarray(values, dtype=np.float64),
                       (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64))),
                      shape=shape).tocsr()  # tocsr sums duplicates
    m.sum_duplicates()
    merged = len(values) - m.nnz
    m.eliminate_zeros()
    out = sp.csr_matrix((m.data.astype(np.float32), m.indices, m.indptr), shape=shape)
    out.sort_indices()
    return canonical_csr(out), merged


def canonical_csr(m: sp.csr_matrix) -> sp.csr_matrix:
    """A CSR matrix with int32 indices (when they fit) and float32 data, sorted indices.

    The dataset fingerprint hashes the raw index arrays, so every loader builds its
    matrices this same way.
    """
    m = sp.csr_matrix(m)
    idx_dtype = np.int32 if max(m.shape + (m.nnz,)) < 2**31 else np.int64
    out = sp.csr_matrix((m.data.astype(np.float32, copy=False),
                         m.indices.astype(idx_dtype, copy=False),
                         m.indptr.astype(idx_dtype, copy=False)), shape=m.shape)
    out.sort_indices()
    return out
