"""The MSD's id files: mismatches, manually accepted matches, tracks, 7digital ids.

Formats (public copies; see the package docstring for the sources):

- `sid_mismatches.txt`: `ERROR: <SONG TRACK> artist  -  title  !=  artist  -  title`;
- `sid_matches_manually_accepted.txt`: the same lines in `diff` form
  (`< ERROR: <SONG TRACK> ...`); a listed (song, track) pair was checked by hand and is
  NOT a mismatch, so the clean rule keeps it;
- `unique_tracks.txt`: `TRACK<SEP>SONG<SEP>ARTIST<SEP>TITLE`; titles may hold any byte
  (control characters 0x1c-0x1f, `\\r`, Latin-1): only the two ids are read, lines end
  at `\\n` alone;
- `track_metadata.db`: SQLite table `songs` (track_id text PRIMARY KEY, title, song_id,
  release, artist_id, artist_mbid, artist_name, duration, artist_familiarity,
  artist_hotttnesss, year, track_7digitalid int, shs_perf, shs_work), as created by
  `tbertinmahieux/MSongsDB` `Tasks_Demos/SQLite/create_track_metadata_db.py`;
- an id map: two columns per line, a track id and a 7digital id (tab, comma or spaces).
"""

from __future__ import annotations

import re
from pathlib import Path

from recbench.errors import DataError

_MISMATCH = re.compile(rb"^ERROR: <([A-Za-z0-9]+)\s+([A-Za-z0-9]+)>")
_ACCEPTED = re.compile(rb"^(?:[<>]\s*)?ERROR: <([A-Za-z0-9]+)\s+([A-Za-z0-9]+)>")
_ID_MAP_SPLIT = re.compile(r"[\t, ;]+")


def read_mismatch_pairs(path: Path, problems) -> set[tuple[str, str]]:
    """(song, track) pairs of `sid_mismatches.txt`; a malformed line is counted."""
    out: set[tuple[str, str]] = set()
    with open(path, "rb") as f:  # ids are ASCII; artist and title may be any bytes
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            m = _MISMATCH.match(line)
            if m is None:
                problems.bad("malformed_mismatch_lines", f"{path}:{ln}",
                             "expected 'ERROR: <SONG_ID TRACK_ID> ...'")
                continue
            out.add((m.group(1).decode("ascii"), m.group(2).decode("ascii")))
    return out


def read_accepted_pairs(path: Path) -> set[tuple[str, str]]:
    """(song, track) pairs of `sid_matches_manually_accepted.txt` (diff lines such as
    `< ERROR: <SO... TR...> ...`; diff headers and other lines are skipped)."""
    out: set[tuple[str, str]] = set()
    with open(path, "rb") as f:
        for line in f:
            m = _ACCEPTED.match(line.strip())
            if m is not None:
                out.add((m.group(1).decode("ascii"), m.group(2).decode("ascii")))
    return out


def read_tracks(path: Path, problems):
    """Table (track, song) of `unique_tracks.txt` in file order.

    Read in binary, line by line at `\\n`: a title with control characters, `\\r` or bytes
    that are not UTF-8 neither splits nor drops its line (pyarrow's CSV reader would end a
    row at `\\r`). A line whose first two fields are not plain ASCII ids is counted as
    `malformed_track_lines` and skipped."""
    import pyarrow as pa

    tracks: list[str] = []
    songs: list[str] = []
    bad = 0
    first = None
    try:
        f = open(path, "rb")  # noqa: SIM115 - the open error alone is reported as data
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    with f:
        for ln, line in enumerate(f, 1):
            parts = line.rstrip(b"\r\n").split(b"<SEP>", 2)
            if len(parts) == 1 and not parts[0].strip():
                continue
            if len(parts) < 2 or not parts[0].isalnum() or not parts[1].isalnum():
                bad += 1
                first = first or ln
                continue
            tracks.append(parts[0].decode("ascii"))
            songs.append(parts[1].decode("ascii"))
    if bad:
        problems.bad("malformed_track_lines", f"{path}:{first}",
                     "expected TRACK<SEP>SONG<SEP>ARTIST<SEP>TITLE with ASCII ids", n=bad)
    if not tracks:
        raise DataError(f"{path}: no line of the form TRACK<SEP>SONG<SEP>ARTIST<SEP>TITLE")
    return pa.table({"track": pa.array(tracks, pa.string()),
                     "song": pa.array(songs, pa.string())})


def check_track_metadata(path: Path, key: str = "dataset.msd.track_metadata") -> None:
    """DataError (one line) unless `path` is an SQLite file with table `songs` holding
    columns track_id and track_7digitalid."""
    import sqlite3

    expected = ("expected the MSD's track_metadata.db (SQLite table songs with columns "
                "track_id, track_7digitalid)")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise DataError(f"{key}: {path}: cannot read ({exc.strerror})") from None
    if head != b"SQLite format 3\x00":
        raise DataError(f"{key}: {path} is not an SQLite database; {expected}")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cols = {r[1] for r in con.execute("PRAGMA table_info(songs)")}
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise DataError(f"{key}: {path}: unreadable SQLite database ({exc}); {expected}"
                        ) from None
    missing = sorted({"track_id", "track_7digitalid"} - cols)
    if missing:
        what = "table songs" if not cols else "column " + ", ".join(missing)
        raise DataError(f"{key}: {path} has no {what}; {expected}")


class SevenDigitalIds:
    """Track id -> 7digital preview id, from track_metadata.db and/or an id map file."""

    def __init__(self, db: Path | None, id_map: Path | None, problems):
        self.db = db
        self.id_map = id_map
        self._map: dict[str, str] | None = None
        if id_map is not None:
            self._map = self._read_map(id_map, problems)

    @property
    def source(self) -> str:
        """What the ids come from (for messages and the manifest)."""
        return " and ".join(str(p.name) for p in (self.db, self.id_map) if p is not None)

    @staticmethod
    def _read_map(path: Path, problems) -> dict[str, str]:
        out: dict[str, str] = {}
        with open(path, encoding="utf-8", errors="replace") as f:
            for ln, line in enumerate(f, 1):
                parts = [p for p in _ID_MAP_SPLIT.split(line.strip()) if p]
                if not parts:
                    continue
                if len(parts) == 2 and parts[1].isdigit() and parts[0].startswith("TR"):
                    out[parts[0]] = str(int(parts[1]))
                elif len(parts) == 2 and parts[0].isdigit() and parts[1].startswith("TR"):
                    out[parts[1]] = str(int(parts[0]))
                elif ln > 1:  # the first line may be a header
                    problems.bad("malformed_id_map_lines", f"{path}:{ln}",
                                 "expected a track id and a 7digital id")
        return out

    def lookup(self, track_ids: list[str]) -> dict[str, str]:
        """{track: 7digital id} for those of `track_ids` that have one."""
        out: dict[str, str] = {}
        if self.db is not None and track_ids:
            import sqlite3

            con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
            try:
                con.execute("CREATE TEMP TABLE want (tid TEXT PRIMARY KEY)")
                con.executemany("INSERT OR IGNORE INTO temp.want VALUES (?)",
                                ((t,) for t in track_ids))
                rows = con.execute("SELECT songs.track_id, songs.track_7digitalid FROM "
                                   "temp.want JOIN songs ON songs.track_id = want.tid"
                                   ).fetchall()
            except sqlite3.Error as exc:
                raise DataError(f"{self.db}: cannot read table songs ({exc})") from None
            finally:
                con.close()
            for t, d in rows:
                try:
                    d = int(d)
                except (TypeError, ValueError):
                    continue
                if d > 0:
                    out[t] = str(d)
        if self._map:
            for t in track_ids:
                if t not in out and t in self._map:
                    out[t] = self._map[t]
        return out
