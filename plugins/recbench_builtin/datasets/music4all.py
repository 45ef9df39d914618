"""The `music4all` dataset: Music4All and Music4All-Onion, read from a local copy;
nothing is downloaded.

Published layout (Santana et al., IWSSIP 2020, https://sites.google.com/view/contact4music4all;
Onion: Moscati et al., CIKM 2022, https://zenodo.org/records/15394646). The *.csv files
are TAB-separated with one header line:

    <root>/listening_history.csv   user, song, timestamp (date and time)
    <root>/id_information.csv      id, artist, song, album_name
    <root>/id_genres.csv           id, genres  (comma-separated list)
    <root>/id_tags.csv             id, tags    (comma-separated list)
    <root>/id_metadata.csv         id, spotify_id, popularity, release, danceability,
                                   energy, key, mode, valence, tempo, duration_ms
    <root>/audios/<id>.mp3         the 30-second clips
  Music4All-Onion adds (tab-separated, optionally .bz2):
    userid_trackid_timestamp.tsv   user_id, track_id, timestamp
    id_<feature>.tsv               id, then numeric columns (e.g. id_ivec256.tsv)

Sources: AdamAldrin/lyrics-reconstruction-dissertation
src/prepare_input_dataset_music4all.py (read_csv(sep="\\t") of id_information, id_lang,
id_metadata, id_tags, id_genres; tags split on ","); gmeehan96/ACARec
data/m4a_onion/preprocessing.py (userid_trackid_timestamp.tsv read with sep="\\t",
columns user_id, track_id, timestamp as '%Y-%m-%d %H:%M:%S'; id_information.csv with
sep="\\t" and columns id, artist); listening_history.csv's columns (user, song,
timestamp) as the Music4All page describes them.

What it becomes. Users and songs are those of the listening events (sorted ids).
`events`: every listening event; sessions split a user's events at pauses longer than
`session_gap` seconds (the data has no session ids); nothing is marked skipped (the
data has no skips). `counts`: events per (user, song). `tags`: songs x tags from
id_tags.csv (`tag_source`: "genres" uses id_genres.csv, "both" prefixes "genre:" and
"tag:"). Song categories: "artist", "album" (id_information.csv), "genre" (the first
genre listed). Modalities: "metadata" (id_metadata.csv's numbers) and one per Onion
`features` file (named after it, e.g. "ivec256"); zeros for songs without a row.
Audio: audios/<id>.<ext>; songs without a clip, or whose clip does not decode, are
dropped and named (their events too; users left without events are dropped).

Bad input: an event with an empty id or a timestamp that does not parse, a metadata row
whose value is not a number, a line with the wrong number of fields or bytes that are
not UTF-8: skipped, counted under dropped.malformed_lines and named file:line (fatal
under strict). Missing files: one line naming the file expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset
from recbench.errors import DataError
from recbench.params import Param
from recbench_builtin.datasets import _realdata as R

EVENT_FILES = ("listening_history.csv", "userid_trackid_timestamp.tsv",
               "userid_trackid_timestamp.tsv.bz2")
EVENT_COLUMNS = (("user", "song", "timestamp"), ("user_id", "track_id", "timestamp"))


class Music4AllDataset(DatasetLoader):
    """Music4All / Music4All-Onion: timestamped listening events, 30-s clips, tags, genres."""

    name = "music4all"
    description = ("Music4All / Music4All-Onion (local copy): listening events with sessions, "
                   "30-s clips, tags, genres, artists, metadata and Onion features")
    params = (
        Param("root", str, required=True,
              help="the dataset folder (relative: to the suite file); nothing downloads"),
        Param("events", str, None,
              help="listening events file in root; unset: listening_history.csv, else "
                   "Onion's userid_trackid_timestamp.tsv(.bz2)"),
        Param("session_gap", float, 1800.0, min=0.0,
              help="a pause longer than this (seconds) starts a new session"),
        Param("tag_source", str, "tags", choices=("tags", "genres", "both"),
              help="what fills dataset.tags: id_tags.csv, id_genres.csv, or both"),
        Param("features", list, [], item_type=str,
              help="Onion feature files in root (id + numbers), each a modality"),
        Param("audio_dir", str, "audios", help="clips folder in root; '' for no audio"),
        Param("audio_ext", list, ["mp3", "wav", "flac", "ogg"], item_type=str,
              help="clip extensions, in order of preference"),
        Param("sample_rate", int, 22050, min=1, help="rate (Hz) clips are decoded at"),
        Param("check_audio", bool, True,
              help="decode a little of every clip at load time; drop songs that fail"),
        Param("dataset_name", str, "music4all", help="dataset name in results"),
        Param("strict", bool, False, help="malformed lines or unreadable clips are fatal"),
    )

    def _root(self, base: str | None) -> Path:
        return R.root_dir(self.name, self.options["root"], base)

    def _events_path(self, root: Path) -> Path:
        if self.options["events"]:
            return R.need_file(self.name, "events", root / self.options["events"],
                               "the listening events file")
        for name in EVENT_FILES:
            if (root / name).is_file():
                return root / name
        raise DataError(f"dataset.{self.name}.events: expected listening events at "
                        f"{root / EVENT_FILES[0]} (or Onion's {EVENT_FILES[1]}[.bz2]) "
                        "(not found)")

    def _audio_dir(self, root: Path) -> Path | None:
        a = self.options["audio_dir"]
        if not a:
            return None
        if not (root / a).is_dir():
            raise DataError(f"dataset.{self.name}.audio_dir: expected the clips folder at "
                            f"{root / a} (not found; set audio_dir = '' for no audio)")
        return root / a

    def validate(self, suite_dir: str | None = None) -> None:
        """The root, the events file, the clips folder and named feature files exist."""
        root = self._root(suite_dir)
        self._events_path(root)
        self._audio_dir(root)
        for f in self.options["features"]:
            R.need_file(self.name, "features", root / f, "an Onion feature file")
        for fname, col, _ in self._tag_files():
            R.need_file(self.name, "tag_source", root / fname, f"the {col} of each song")

    def provides(self, suite_dir: str | None = None) -> tuple[str, ...]:
        """Interactions, events, tags and song categories always; audio unless disabled;
        modalities when id_metadata.csv or Onion feature files are there."""
        out = ["interactions", "events", "tags", "song_categories"]
        if self.options["audio_dir"]:
            out.append("audio")
        try:
            root = self._root(suite_dir)
        except DataError:
            return tuple(out)
        if self.options["features"] or (root / "id_metadata.csv").is_file():
            out.append("modalities")
        return tuple(out)

    # -- loading
    def load(self, ctx: LoadContext) -> Dataset:
        """Read events, metadata, tags, features and clips (see the module docstring)."""
        from recbench import dataio
        from recbench.audio import FileAudioSource

        o = self.options
        root = self._root(ctx.suite_dir)
        self.validate(ctx.suite_dir)
        problems = dataio.Problems(strict=bool(o["strict"] or ctx.strict))
        self._tables: dict[Path, dict[str, list[str]]] = {}
        ev_path = self._events_path(root)
        user_ids, song_ids, user, song, ts, n_rows = self._read_events(ev_path, problems, ctx)
        info = {"loader": self.name, "root": str(root), "events_file": ev_path.name,
                "rows_read": n_rows}

        audio = None
        audio_dir = self._audio_dir(root)
        keep = np.ones(len(song_ids), dtype=bool)
        paths: list[str | None] = []
        if audio_dir is not None:
            index = R.index_audio(audio_dir, o["audio_ext"])
            paths = [index.get(s) for s in song_ids.tolist()]
            keep = R.check_clips(paths, song_ids, problems, o["check_audio"], ctx.progress,
                                 str(audio_dir))
            info["audio_dir"] = str(audio_dir)
        ev, keep_user, user, song = R.keep_events(keep, user, song, len(user_ids))
        ts = ts[ev]
        problems.drop("events_of_dropped_songs", int((~ev).sum()))
        problems.drop("users_without_interactions", int((~keep_user).sum()))
        user_ids, song_ids = user_ids[keep_user], song_ids[keep]
        if len(song_ids) == 0 or len(user_ids) == 0:
            raise DataError(f"{ev_path}: no listening events left after filtering "
                            f"({problems.manifest()['dropped']})")
        if audio_dir is not None:
            audio = FileAudioSource([p for p, k in zip(paths, keep) if k], o["sample_rate"],
                                    root=audio_dir)

        order = np.lexsort((np.arange(len(user)), ts, user))
        session = np.empty(len(order), dtype=np.int64)
        session[order] = R.sessions_by_gap(user[order], ts[order], o["session_gap"])
        events = R.make_events(user, song, ts, session, np.zeros(len(user), bool))
        counts = R.counts_of(user, song, np.ones(len(user), bool),
                             (len(user_ids), len(song_ids)))
        info["sessions"] = int(len(np.unique(session)))

        categories, names = self._categories(root, song_ids, problems)
        tags, tag_names = self._tags(root, song_ids, problems)
        modalities = self._modalities(root, song_ids, problems, ctx, info)
        ds = Dataset(name=o["dataset_name"], counts=counts, user_ids=user_ids,
                     song_ids=song_ids, audio=audio, tags=tags, tag_names=tag_names,
                     manifest={**info, **problems.manifest()}, song_categories=categories,
                     category_names=names, modalities=modalities, events=events)
        ds.validate_side()
        return ds

    def _read_events(self, path: Path, problems, ctx: LoadContext):
        import pyarrow as pa

        from recbench import dataio

        head = R.TsvReader(path, [], problems=None)
        cols_ = next((c for c in EVENT_COLUMNS if set(c) <= set(head.available)), None)
        if cols_ is None:
            raise DataError(f"{path}: expected a header with columns user, song, timestamp "
                            f"(or user_id, track_id, timestamp); got "
                            f"{', '.join(head.available) or 'none'}")
        ucol, scol, tcol = cols_
        reader = R.TsvReader(path, list(cols_), problems=problems, limit=ctx.limit)
        users, songs = dataio.IdCollector(), dataio.IdCollector()
        times = []
        n_rows = 0
        for row0, cols in ctx.progress(reader, desc=f"reading {path.name}"):
            t, t_ok = R.parse_times(cols[tcol])
            good = R.drop_bad(problems, reader, row0, [
                (~R.empty(cols[ucol]), f"empty {ucol}"), (~R.empty(cols[scol]), f"empty {scol}"),
                (t_ok, f"{tcol} is not a date and time (YYYY-MM-DD HH:MM[:SS])")])
            mask = pa.array(good)
            users.add(cols[ucol].filter(mask))
            songs.add(cols[scol].filter(mask))
            times.append(t[good])
            n_rows += len(good)
        user_ids, upos = users.finish()
        song_ids, spos = songs.finish()
        if len(song_ids) == 0:
            raise DataError(f"{path}: no valid listening events "
                            f"({problems.manifest()['dropped']})")
        return (user_ids, song_ids, np.concatenate(upos), np.concatenate(spos),
                np.concatenate(times), n_rows)

    def _table(self, path: Path, columns: list[str], problems) -> dict[str, list[str]]:
        """{column: values} of a tab-separated id table (rows with an empty id skipped);
        each file is read once per load, so its bad lines are counted once."""
        import pyarrow as pa

        cached = self._tables.get(path)
        if cached is None:
            head = R.TsvReader(path, columns, problems=None)
            reader = R.TsvReader(path, head.available, problems=problems)
            cached = {c: [] for c in head.available}
            for row0, cols in reader:
                good = R.drop_bad(problems, reader, row0,
                                  [(~R.empty(cols["id"]), "empty id")])
                for c in cached:
                    cached[c] += cols[c].filter(pa.array(good)).to_pylist()
            self._tables[path] = cached
        return cached

    def _categories(self, root: Path, song_ids: np.ndarray, problems):
        categories, names = {}, {}
        sources = [("id_information.csv", "artist", "artist"),
                   ("id_information.csv", "album_name", "album"),
                   ("id_genres.csv", "genres", "genre")]
        for fname, col, key in sources:
            if not (root / fname).is_file():
                continue
            t = self._table(root / fname, ["id", col], problems)
            first = {i: v.split(",")[0].strip() for i, v in zip(t["id"], t[col])}
            codes, cnames = R.categorical([first.get(s) for s in song_ids.tolist()])
            categories[key], names[f"song:{key}"] = codes, cnames
        return categories, names

    def _tag_files(self) -> list[tuple[str, str, str]]:
        """(file, column, label prefix) of the files that fill dataset.tags."""
        return {"tags": [("id_tags.csv", "tags", "")],
                "genres": [("id_genres.csv", "genres", "")],
                "both": [("id_tags.csv", "tags", "tag:"),
                         ("id_genres.csv", "genres", "genre:")]}[self.options["tag_source"]]

    def _tags(self, root: Path, song_ids: np.ndarray, problems):
        pairs = []
        for fname, col, prefix in self._tag_files():
            t = self._table(root / fname, ["id", col], problems)
            pairs += [(i, prefix + v.strip()) for i, vs in zip(t["id"], t[col])
                      for v in vs.split(",") if v.strip()]
        return R.multi_hot(song_ids, pairs)

    def _modalities(self, root: Path, song_ids: np.ndarray, problems, ctx: LoadContext,
                    info: dict) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        files = [("metadata", root / "id_metadata.csv")] if (
            root / "id_metadata.csv").is_file() else []
        for f in self.options["features"]:
            stem = Path(f).name.split(".")[0]
            files.append((stem[3:] if stem.startswith("id_") else stem, root / f))
        for key, path in files:
            head = R.TsvReader(path, ["id"], problems=None)
            numeric = [c for c in head.available if c not in ("id", "spotify_id")]
            reader = R.TsvReader(path, ["id"] + numeric, problems=problems)
            ids, mat = R.read_numeric_table(reader, "id", numeric, problems, ctx.progress)
            out[key], missing = R.align(song_ids, ids, mat)
            info[f"modality.{key}"] = {"file": path.name, "columns": len(numeric),
                                       "songs_without_row": missing}
        return out


@hookimpl
def recbench_register_datasets(register):
    register(Music4AllDataset)
