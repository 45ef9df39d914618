"""Last.fm tags of the selected songs: sources (SQLite / JSON) and the two tag presets.

Presets (`tag_preset`):

- ``top50-count`` (recbench's default): the `n_tags` tags carried by the most selected
  songs, a (track, tag) pair counting when its Last.fm weight >= `tag_min_val`. On the
  real data this admits non-audio tags ("favorites", "seen live", "Love").
- ``choi50`` (the paper's labels): the fixed, curated 50 tags of the MSD tagging split
  (K. Choi, `keunwoochoi/MSD_split_for_tagging`, README "top-50 tags" = `tags.py`; the
  same list as `jongpillee/music_dataset_split` `MSD_split/50tagList.txt`), a pair
  counting only when its Last.fm weight is > 50 ("I only count tag as valid if the
  ground truth > 50"). Names are matched exactly (Last.fm's case: "Mellow", "Hip-Hop");
  all 50 columns are kept in the list's order, even a tag no selected song carries.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from recbench.errors import DataError

# keunwoochoi/MSD_split_for_tagging (README.md "top-50 tags", tags.py), in its order.
CHOI50_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance",
    "00s", "alternative rock", "jazz", "beautiful", "metal", "chillout", "male vocalists",
    "classic rock", "soul", "indie rock", "Mellow", "electronica", "80s", "folk", "90s",
    "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal",
    "Progressive rock", "60s", "rnb", "indie pop", "sad", "House", "happy",
)
CHOI50_MIN_VAL = 50.0  # strictly greater

TAG_RULES = {
    "top50-count": "top50-count: the n_tags tags on most selected songs (Last.fm weight >= "
                   "tag_min_val)",
    "choi50": "choi50: the curated 50 Last.fm tags of Choi et al.'s MSD tagging split "
              "(keunwoochoi/MSD_split_for_tagging), weight > 50",
}


class TagSteps:
    """The tag step of the build (a mixin of the builder)."""

    def read_tags(self, song_ids: np.ndarray, tracks):
        """(songs x tags binary CSR, tag names) or (None, [])."""
        preset = self.o["tag_preset"]
        sources = self.loader._tag_sources(self.root)
        if not sources or tracks is None:
            self.info["tags"] = "none"
            return None, []
        self.info["tag_rule"] = TAG_RULES[preset]
        import pyarrow as pa
        import pyarrow.compute as pcc

        from recbench.dataio import coo_to_csr

        sel = tracks.filter(pcc.is_in(tracks["song"],
                                      value_set=pa.array(list(song_ids), pa.string())))
        track_ids = sel["track"].to_pylist()
        track_song = dict(zip(track_ids, sel["song"].to_pylist()))
        pairs: dict[tuple[str, str], float] = {}
        used = []
        for src in sources:
            if src.is_file():
                it = _tags_sqlite(src, track_ids)
            else:
                it = _tags_json(src, track_ids, self.problems)
            used.append(str(src))
            for tid, tag, val in it:
                k = (track_song[tid], tag)
                if val > pairs.get(k, -np.inf):
                    pairs[k] = val
        if preset == "choi50":
            vocab = set(CHOI50_TAGS)
            kept = [(s, t) for (s, t), v in pairs.items() if v > CHOI50_MIN_VAL and t in vocab]
            names = list(CHOI50_TAGS)
            min_val = f"> {CHOI50_MIN_VAL:g}"
        else:
            kept = [(s, t) for (s, t), v in pairs.items() if v >= self.o["tag_min_val"]]
            by_tag: dict[str, int] = {}
            for _, t in kept:
                by_tag[t] = by_tag.get(t, 0) + 1
            names = sorted(by_tag, key=lambda t: (-by_tag[t], t))[: self.o["n_tags"]]
            min_val = self.o["tag_min_val"]
        self.info["tags"] = {"sources": used, "preset": preset, "min_val": min_val,
                             "song_tag_pairs": len(kept)}
        song_pos = {s: i for i, s in enumerate(song_ids)}
        tag_pos = {t: j for j, t in enumerate(names)}
        rows = np.array([song_pos[s] for s, t in kept if t in tag_pos], dtype=np.int64)
        cols = np.array([tag_pos[t] for s, t in kept if t in tag_pos], dtype=np.int64)
        tags, _ = coo_to_csr(rows, cols, np.ones(len(rows)), (len(song_ids), len(names)))
        self.info["tags"]["songs_with_tags"] = int((np.diff(tags.indptr) > 0).sum())
        empty = int((np.diff(tags.tocsc().indptr) == 0).sum())
        if empty:
            self.info["tags"]["tags_without_songs"] = empty
        return tags, names


def check_tags_db(path: Path) -> None:
    """DataError (one line naming the file) unless `path` is an SQLite database with the
    Last.fm tables tids, tags and tid_tag. Cheap: reads the header and the schema."""
    import sqlite3

    expected = "expected the Last.fm tags SQLite database with tables tids, tags, tid_tag"
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise DataError(f"dataset.msd.tags: {path}: cannot read ({exc.strerror})") from None
    if size == 0:
        raise DataError(f"dataset.msd.tags: {path} is empty (0 bytes); {expected} "
                        "(or set tags = [] for none)")
    if head != b"SQLite format 3\x00":
        raise DataError(f"dataset.msd.tags: {path} is not an SQLite database; {expected} "
                        "(or set tags = [] for none)")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise DataError(f"dataset.msd.tags: {path}: unreadable SQLite database ({exc}); "
                        f"{expected}") from None
    missing = sorted({"tids", "tags", "tid_tag"} - names)
    if missing:
        raise DataError(f"dataset.msd.tags: {path} has no table {', '.join(missing)}; "
                        f"{expected}")


def _tags_sqlite(path: Path, track_ids: list[str]) -> Iterable[tuple[str, str, float]]:
    """(track, tag, val) rows of lastfm_tags.db for the given tracks."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise DataError(f"{path}: cannot open SQLite database ({exc})") from None
    try:
        con.execute("CREATE TEMP TABLE want (tid TEXT PRIMARY KEY)")
        con.executemany("INSERT OR IGNORE INTO temp.want VALUES (?)", ((t,) for t in track_ids))
        rows = con.execute(
            "SELECT tids.tid, tags.tag, tid_tag.val FROM temp.want "
            "JOIN tids ON tids.tid = want.tid "
            "JOIN tid_tag ON tid_tag.tid = tids.ROWID "
            "JOIN tags ON tags.ROWID = tid_tag.tag").fetchall()
    except sqlite3.Error as exc:
        raise DataError(f"{path}: not a Last.fm tags database (expected tables tids, tags, "
                        f"tid_tag: {exc})") from None
    finally:
        con.close()
    return [(t, g, float(v)) for t, g, v in rows]


def _tags_json(folder: Path, track_ids: list[str], problems) -> list[tuple[str, str, float]]:
    """(track, tag, val) from a Last.fm JSON folder (A/B/C/TR....json or flat)."""
    out = []
    for tid in track_ids:
        cands = [folder / tid[2] / tid[3] / tid[4] / f"{tid}.json"] if len(tid) > 4 else []
        cands.append(folder / f"{tid}.json")
        p = next((c for c in cands if c.is_file()), None)
        if p is None:
            continue
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
            for tag, val in doc.get("tags", []):
                out.append((tid, str(tag), float(val)))
        except (ValueError, TypeError, OSError) as exc:
            problems.bad("malformed_tag_files", str(p),
                         f"expected JSON with \"tags\": [[tag, weight], ...] ({exc})")
    return out


