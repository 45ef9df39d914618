"""Streaming TSV, CSV and Parquet tables as pyarrow string columns (:class:`TableReader`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from .problems import Problems
from .text import (_MARK, _arrow_msg, _as_text, _blank_rows, _casts_to_string, _complete_end,
                   _MarkingUtf8Stream, _quiet_undecodable_rows, _Retry, _snippet, is_utf8)

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
