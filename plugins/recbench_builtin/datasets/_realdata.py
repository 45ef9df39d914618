"""Helpers shared by the loaders of published music datasets (mssd, music4all, jamendo,
deezer-coldstart, melon): file checks, field parsers, id-keyed tables, events.

Every parser returns (values, ok) so that a loader can skip, count and locate the bad
rows with :func:`recbench.dataio.report_bad_rows`; nothing here raises on a bad value.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from recbench import dataio
from recbench.errors import DataError

TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d")


def resolve_path(path: str, base: str | os.PathLike | None) -> Path:
    """`path` with ~ expanded, relative paths taken from `base` (default: cwd)."""
    p = Path(os.path.expanduser(path))
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return p


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's text on one line, at most `limit` characters."""
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def root_dir(loader: str, root: str, base: str | None) -> Path:
    """The dataset folder, or a one-line DataError naming it."""
    p = resolve_path(root, base)
    if not p.is_dir():
        raise DataError(f"dataset.{loader}.root: {p} is not a folder (the local copy of the "
                        "dataset; nothing is downloaded)")
    return p


def need_file(loader: str, key: str, path: Path, what: str) -> Path:
    """`path` if it is a file, else a one-line DataError naming the file expected."""
    if not path.is_file():
        raise DataError(f"dataset.{loader}.{key}: expected {what} at {path} (not found)")
    return path


def find_files(loader: str, key: str, root: Path, pattern: str, what: str) -> list[Path]:
    """Files matching `pattern` (a file, a folder of *.csv*, or a glob, relative to root),
    sorted; a one-line DataError naming what was expected when there are none."""
    p = root / pattern
    if p.is_file():
        return [p]
    if p.is_dir():
        found = sorted(q for q in p.iterdir() if q.is_file() and ".csv" in q.name)
    else:
        found = sorted(Path(q) for q in glob.glob(str(p)) if os.path.isfile(q))
    if not found:
        raise DataError(f"dataset.{loader}.{key}: expected {what} at {p} (none found)")
    return found


class TsvReader(dataio.TableReader):
    """A TableReader that splits on tabs whatever the extension (Music4All's *.csv files
    are tab-separated)."""

    def __init__(self, path, columns, **kw):
        super().__init__(path, columns, **kw)
        self.format = "tsv"

    def _parse_options(self, handler):
        import pyarrow.csv as pc

        return pc.ParseOptions(delimiter="\t", quote_char=False, ignore_empty_lines=False,
                               invalid_row_handler=handler)


def empty(a: Any) -> np.ndarray:
    """True where a pyarrow string array is empty or blank."""
    import pyarrow.compute as pcc

    return pcc.equal(pcc.utf8_length(pcc.utf8_trim_whitespace(a)), 0).to_numpy(
        zero_copy_only=False).astype(bool)


def parse_bools(a: Any) -> tuple[np.ndarray, np.ndarray]:
    """(bool values, ok) of a string array holding true/false/1/0 (any case)."""
    import pyarrow.compute as pcc

    s = pcc.utf8_lower(pcc.utf8_trim_whitespace(a)).to_numpy(zero_copy_only=False)
    s = np.asarray(s, dtype=object)
    true = np.isin(s, ["true", "1", "1.0", "t", "yes"])
    false = np.isin(s, ["false", "0", "0.0", "f", "no"])
    return true, true | false


def parse_times(a: Any) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since the epoch as float64, ok) of a string array of ISO dates / times
    ('2019-02-20 01:00[:00]', '...T...', a date) or of epoch seconds."""
    import pyarrow as pa
    import pyarrow.compute as pcc

    a = pcc.utf8_trim_whitespace(a)
    out = np.zeros(len(a))
    ok = np.zeros(len(a), dtype=bool)
    for fmt in TIME_FORMATS:
        if ok.all():
            break
        t = pcc.strptime(a, format=fmt, unit="s", error_is_null=True)
        got = pcc.is_valid(t).to_numpy(zero_copy_only=False) & ~ok
        if got.any():
            secs = pcc.cast(pcc.fill_null(t, pa.scalar(0, pa.timestamp("s"))), pa.int64())
            out[got] = secs.to_numpy(zero_copy_only=False)[got]
            ok |= got
    if not ok.all():
        v, num_ok = dataio.parse_numbers(a)
        got = num_ok & ~ok
        out[got] = v[got]
        ok |= got
    return out, ok


def first_reason(checks: Sequence[tuple[np.ndarray, str]], i: int) -> str:
    """The message of the first failed check at row `i` (checks: (ok mask, message))."""
    return next((msg for ok, msg in checks if not ok[i]), "malformed")


def drop_bad(problems, reader, row0: int, checks: Sequence[tuple[np.ndarray, str]]
             ) -> np.ndarray:
    """Report rows failing any (ok, message) check, located; return the good-row mask."""
    good = np.ones(len(checks[0][0]), dtype=bool)
    for ok, _ in checks:
        good &= ok
    if not good.all():
        dataio.report_bad_rows(problems, reader, row0, ~good,
                               lambda p: first_reason(checks, p))
    return good


def read_numeric_table(reader: dataio.TableReader, id_col: str, columns: Sequence[str],
                       problems, progress: Callable = lambda it, **kw: it
                       ) -> tuple[list[str], np.ndarray]:
    """(ids, rows x len(columns) float32) of an id-keyed table of numbers; rows with an
    empty id or a value that is not a finite number are skipped, counted and located."""
    import pyarrow as pa

    ids: list[str] = []
    blocks: list[np.ndarray] = []
    for row0, cols in progress(reader, desc=f"reading {Path(reader.path).name}"):
        n = len(cols[id_col])
        vals = np.zeros((n, len(columns)), dtype=np.float32)
        checks = [(~empty(cols[id_col]), f"empty {id_col}")]
        for j, c in enumerate(columns):
            v, ok = dataio.parse_numbers(cols[c])
            vals[:, j] = v
            checks.append((ok, f"{c} is not a finite number"))
        good = drop_bad(problems, reader, row0, checks)
        ids.extend(cols[id_col].filter(pa.array(good)).to_pylist())
        blocks.append(vals[good])
    mat = np.concatenate(blocks) if blocks else np.zeros((0, len(columns)), np.float32)
    return ids, mat


def align(song_ids: np.ndarray, ids: Sequence[str], mat: np.ndarray
          ) -> tuple[np.ndarray, int]:
    """songs x D rows of `mat` in `song_ids` order (zeros for songs without a row; a
    repeated id keeps its last row) and the number of songs without a row."""
    pos = {s: i for i, s in enumerate(song_ids.tolist())}
    out = np.zeros((len(song_ids),) + mat.shape[1:], dtype=mat.dtype)
    have = np.zeros(len(song_ids), dtype=bool)
    for k, sid in enumerate(ids):
        i = pos.get(sid)
        if i is not None:
            out[i] = mat[k]
            have[i] = True
    return out, int((~have).sum())


def categorical(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """(int64 codes, sorted names) of one value per item; None or '' -> -1 (unknown)."""
    names = sorted({v for v in values if v})
    index = {v: i for i, v in enumerate(names)}
    return np.array([index.get(v, -1) if v else -1 for v in values], dtype=np.int64), names


def multi_hot(song_ids: np.ndarray, pairs: Sequence[tuple[str, str]]):
    """(songs x labels binary CSR, label names sorted) from (song, label) pairs; pairs of
    unknown songs are ignored (the caller counts them)."""
    pos = {s: i for i, s in enumerate(song_ids.tolist())}
    kept = [(pos[s], t) for s, t in pairs if s in pos and t]
    names = sorted({t for _, t in kept})
    tpos = {t: j for j, t in enumerate(names)}
    rows = np.array([i for i, _ in kept], dtype=np.int64)
    cols = np.array([tpos[t] for _, t in kept], dtype=np.int64)
    m, _ = dataio.coo_to_csr(rows, cols, np.ones(len(rows)), (len(song_ids), len(names)))
    m.data[:] = 1.0
    return m, names


def sessions_by_gap(user: np.ndarray, ts: np.ndarray, gap: float) -> np.ndarray:
    """Session ids (0, 1, ... in (user, time) order) for events sorted by (user, ts): a
    new session starts at each user's first event and after a pause longer than `gap`."""
    if len(user) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.ones(len(user), dtype=bool)
    new[1:] = (user[1:] != user[:-1]) | (np.diff(ts) > gap)
    return np.cumsum(new).astype(np.int64) - 1


def make_events(user: np.ndarray, song: np.ndarray, ts: np.ndarray, session: np.ndarray,
                skipped: np.ndarray):
    """An :class:`recbench.data.Events` sorted by (user, timestamp), ties in input order."""
    from recbench.data import Events

    order = np.lexsort((np.arange(len(user)), ts, user))
    return Events(user=np.asarray(user, np.int64)[order], song=np.asarray(song, np.int64)[order],
                  timestamp=np.asarray(ts, np.float64)[order],
                  session=np.asarray(session, np.int64)[order],
                  skipped=np.asarray(skipped, bool)[order])


def counts_of(user: np.ndarray, song: np.ndarray, keep: np.ndarray, shape: tuple[int, int]):
    """users x songs play counts of the events where `keep` (canonical CSR)."""
    m, _ = dataio.coo_to_csr(user[keep], song[keep], np.ones(int(keep.sum())), shape)
    return m


def lines(path: Path, problems, limit: int | None = None
          ) -> Iterator[tuple[int, str]]:
    """(line number, text) of a text file's non-blank lines; a line that is not UTF-8
    is skipped, counted and located (for files with a variable number of fields, which
    TableReader rejects)."""
    n = 0
    with open(path, "rb") as f:
        for no, raw in enumerate(f, 1):
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.bad("malformed_lines", f"{path}:{no}", "not valid UTF-8 text")
                continue
            yield no, text
            n += 1
            if limit is not None and n >= limit:
                return


def index_audio(folder: Path, exts: Sequence[str]) -> dict[str, str]:
    """{file stem: path} of the audio files under `folder` (searched recursively); when
    a stem has several files, the first extension of `exts` wins."""
    rank = {e.lower().lstrip("."): k for k, e in enumerate(exts)}
    index: dict[str, str] = {}
    best: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for fn in sorted(filenames):
            stem, dot, ext = fn.rpartition(".")
            if dot and ext.lower() in rank and rank[ext.lower()] < best.get(stem, len(rank)):
                best[stem] = rank[ext.lower()]
                index[stem] = os.path.join(dirpath, fn)
    return index


def check_clips(paths: Sequence[str | None], song_ids: np.ndarray, problems, check: bool,
                progress: Callable = lambda it, **kw: it, where: str = "",
                missing_reason: Callable[[str], str] = lambda sid: "no audio file"
                ) -> np.ndarray:
    """Keep mask over songs: a song without a clip (reason: `missing_reason(song id)`), or
    whose clip does not decode (a cheap probe, when `check`), is dropped, named in
    `dropped_songs` and counted."""
    from recbench.audio import AudioDecodeError, probe_audio

    keep = np.ones(len(song_ids), dtype=bool)
    for i in progress(range(len(song_ids)), total=len(song_ids), desc="checking audio"):
        sid, p = str(song_ids[i]), paths[i]
        if p is None:
            problems.drop_song(sid, missing_reason(sid), os.path.join(where, sid))
            problems.drop("songs_without_audio_file", 1)
            keep[i] = False
        elif check:
            try:
                probe_audio(p)
            except AudioDecodeError as exc:
                problems.drop_song(sid, str(exc).split(": ", 1)[-1], p)
                problems.drop("songs_unreadable_audio", 1)
                keep[i] = False
    return keep


def keep_events(keep_song: np.ndarray, user: np.ndarray, song: np.ndarray, n_users: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drop the events of songs not kept, then the users left without events: (event
    mask, kept users mask, new user positions, new song positions) of the kept events."""
    ev = keep_song[song]
    keep_user = np.zeros(n_users, dtype=bool)
    keep_user[user[ev]] = True
    new_u = np.cumsum(keep_user) - 1
    new_s = np.cumsum(keep_song) - 1
    return ev, keep_user, new_u[user[ev]], new_s[song[ev]]
