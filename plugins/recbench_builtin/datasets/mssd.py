"""The `mssd` dataset: Spotify's Music Streaming Sessions Dataset (the WSDM Cup 2019
sequential skip prediction challenge), read from a local copy; nothing is downloaded.

Published layout (Brost et al., WWW 2019; https://www.aicrowd.com/challenges/spotify-
sequential-skip-prediction-challenge), as read by public code:

    <root>/training_set/log_*.csv      session logs (also gzipped: log_*.csv.gz),
                                       comma-separated, one header line:
        session_id, session_position, session_length, track_id_clean, skip_1, skip_2,
        skip_3, not_skipped, context_switch, no_pause_before_play, ..., hour_of_day, date,
        premium, context_type, hist_user_behavior_reason_start, ..._reason_end
        (booleans written true/false; date YYYY-MM-DD)
    <root>/track_features/tf_*.csv     track features, comma-separated, one header line:
        track_id, duration, release_year, us_popularity_estimate, acousticness, ...,
        mode (major/minor), ..., acoustic_vector_0 ... acoustic_vector_7

Sources: the column list and sample rows in PCudrano/RecSysKNNCosineBias
Data_manager/SpotifySkipPrediction/SpotifySkipPredictionReader.py; the folder layout
(data/training_set/log_*.csv, data/track_features/tf_000000000000.csv) in
NeuraSearch/Spotify-XRL-Skipping-Prediction README.md.

What it becomes. The dataset has no user ids: each listening session is a user (a row),
and its one session in `events`. Songs are the tracks of the logs (sorted ids).
`events` holds every play: timestamp = date + hour_of_day hours + session_position
seconds (the logs give no finer time; the position keeps the order within a session),
skipped = the `skip_flag` column (default skip_2, the challenge's target; `not_skipped`
means skipped = not not_skipped). `counts` counts the plays that were not skipped
(`count_skipped = true`: all plays). Track features: numeric columns as the modality
"track_features" (songs x D float32, zeros for tracks without a row, counted in
`track_features.songs_without_row`), `mode` as the song category "mode".

Bad input: a log or feature row with an empty id, a position, hour or feature value
that is not a number, a flag that is not true/false or a date that does not parse is
skipped, counted under dropped.malformed_lines and named file:line (fatal under strict);
so are lines with the wrong number of fields or bytes that are not UTF-8.
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

SKIP_FLAGS = ("skip_1", "skip_2", "skip_3", "not_skipped")
LOG_COLUMNS = ("session_id", "session_position", "track_id_clean", "date", "hour_of_day")
CATEGORY_COLUMNS = ("mode",)


class MSSDDataset(DatasetLoader):
    """Spotify Music Streaming Sessions Dataset: sessions with skips, track features."""

    name = "mssd"
    description = ("Spotify Music Streaming Sessions Dataset (local copy): sessions as users, "
                   "skips as events, track features as a modality")
    params = (
        Param("root", str, required=True,
              help="the dataset folder (relative: to the suite file); nothing downloads"),
        Param("logs", str, "training_set",
              help="session logs: a folder of log_*.csv, one file, or a glob (in root; "
                   "e.g. 'training_set/log_0_*.csv' for some of the 660 files)"),
        Param("track_features", str, "track_features",
              help="track features: a folder of tf_*.csv, one file, or a glob; '' none"),
        Param("skip_flag", str, "skip_2", choices=SKIP_FLAGS,
              help="which column marks a skip (not_skipped: skipped = not not_skipped)"),
        Param("count_skipped", bool, False,
              help="counts include skipped plays (default: only plays not skipped)"),
        Param("dataset_name", str, "mssd", help="dataset name in results"),
        Param("strict", bool, False, help="malformed lines are fatal"),
    )

    def _root(self, base: str | None) -> Path:
        return R.root_dir(self.name, self.options["root"], base)

    def _log_files(self, root: Path) -> list[Path]:
        return R.find_files(self.name, "logs", root, self._pattern(root, "logs", "log_*.csv*"),
                            "session logs (training_set/log_*.csv)")

    def _pattern(self, root: Path, key: str, default_glob: str) -> str:
        p = self.options[key]
        return f"{p}/{default_glob}" if (root / p).is_dir() else p

    def _tf_files(self, root: Path) -> list[Path]:
        if not self.options["track_features"]:
            return []
        return R.find_files(self.name, "track_features", root,
                            self._pattern(root, "track_features", "tf_*.csv*"),
                            "track features (track_features/tf_*.csv); set "
                            "track_features = '' for none")

    def validate(self, suite_dir: str | None = None) -> None:
        """The root, at least one log file and (unless disabled) a track features file."""
        root = self._root(suite_dir)
        self._log_files(root)
        self._tf_files(root)

    def provides(self, suite_dir: str | None = None) -> tuple[str, ...]:
        """interactions and events; modalities and song_categories with track features."""
        base = ("interactions", "events")
        return base + (("modalities", "song_categories") if self.options["track_features"]
                       else ())

    def load(self, ctx: LoadContext) -> Dataset:
        """Read the logs and track features (see the module docstring)."""
        import pyarrow as pa

        from recbench import dataio

        o = self.options
        root = self._root(ctx.suite_dir)
        logs, tfs = self._log_files(root), self._tf_files(root)
        problems = dataio.Problems(strict=bool(o["strict"] or ctx.strict))
        sessions, tracks = dataio.IdCollector(), dataio.IdCollector()
        times, skips = [], []
        n_rows = 0
        flag = o["skip_flag"]
        for path in logs:
            left = None if ctx.limit is None else ctx.limit - n_rows
            if left is not None and left <= 0:
                break
            reader = dataio.TableReader(path, list(LOG_COLUMNS) + [flag], problems=problems,
                                        limit=left)
            for row0, cols in ctx.progress(reader, desc=f"reading {path.name}"):
                pos, pos_ok = dataio.parse_numbers(cols["session_position"])
                hour, hour_ok = dataio.parse_numbers(cols["hour_of_day"])
                day, day_ok = R.parse_times(cols["date"])
                skip, skip_ok = R.parse_bools(cols[flag])
                good = R.drop_bad(problems, reader, row0, [
                    (~R.empty(cols["session_id"]), "empty session_id"),
                    (~R.empty(cols["track_id_clean"]), "empty track_id_clean"),
                    (pos_ok, "session_position is not a number"),
                    (hour_ok & (hour >= 0) & (hour < 24), "hour_of_day is not an hour 0-23"),
                    (day_ok, "date is not a date (YYYY-MM-DD)"),
                    (skip_ok, f"{flag} is not true/false")])
                mask = pa.array(good)
                sessions.add(cols["session_id"].filter(mask))
                tracks.add(cols["track_id_clean"].filter(mask))
                times.append((day + 3600.0 * hour + pos)[good])
                skips.append((~skip if flag == "not_skipped" else skip)[good])
                n_rows += len(good)
        user_ids, upos = sessions.finish()
        song_ids, spos = tracks.finish()
        if len(song_ids) == 0:
            raise DataError(f"{logs[0]}: no valid session log rows "
                            f"({problems.manifest()['dropped']})")
        user = np.concatenate(upos)
        song = np.concatenate(spos)
        ts = np.concatenate(times)
        skipped = np.concatenate(skips).astype(bool)
        events = R.make_events(user, song, ts, user, skipped)
        counts = R.counts_of(events.user, events.song,
                             np.ones(len(events), bool) if o["count_skipped"]
                             else ~events.skipped, (len(user_ids), len(song_ids)))
        info = {"loader": self.name, "root": str(root), "log_files": [p.name for p in logs],
                "rows_read": n_rows, "events": len(events), "skip_flag": flag,
                "skipped_events": int(skipped.sum()),
                "counts": "all plays" if o["count_skipped"] else "plays not skipped",
                "users_are": "sessions"}
        modalities, categories, names = {}, {}, {}
        if tfs:
            modalities, categories, names, info["track_features"] = self._read_features(
                tfs, song_ids, problems, ctx)
        manifest = {**info, **problems.manifest()}
        ds = Dataset(name=o["dataset_name"], counts=counts, user_ids=user_ids,
                     song_ids=song_ids, manifest=manifest, modalities=modalities,
                     song_categories=categories, category_names=names, events=events)
        ds.validate_side()
        return ds

    def _read_features(self, files: list[Path], song_ids: np.ndarray, problems,
                       ctx: LoadContext):
        from recbench import dataio

        ids: list[str] = []
        blocks: list[np.ndarray] = []
        cat_values: dict[str, dict[str, str]] = {c: {} for c in CATEGORY_COLUMNS}
        columns = None
        for path in files:
            head = dataio.TableReader(path, ["track_id"], problems=None)
            numeric = [c for c in head.available if c != "track_id"
                       and c not in CATEGORY_COLUMNS]
            if columns is None:
                columns = numeric
            elif numeric != columns:
                raise DataError(f"{path}: feature columns differ from {files[0].name}'s "
                                f"(expected {', '.join(columns)})")
            cats = [c for c in CATEGORY_COLUMNS if c in head.available]
            reader = dataio.TableReader(path, ["track_id"] + columns + cats, problems=problems)
            file_ids, mat = R.read_numeric_table(reader, "track_id", columns, problems,
                                                 ctx.progress)
            if cats:  # a second, cheap pass for the text columns of the rows kept
                kept = set(file_ids)
                for _, cols in dataio.TableReader(path, ["track_id"] + cats, problems=None):
                    for c in cats:
                        for t, v in zip(cols["track_id"].to_pylist(), cols[c].to_pylist()):
                            if t in kept:
                                cat_values[c][t] = v.strip()
            ids += file_ids
            blocks.append(mat)
        mat = np.concatenate(blocks) if blocks else np.zeros((0, len(columns or [])))
        aligned, missing = R.align(song_ids, ids, mat.astype(np.float32))
        categories, names = {}, {}
        for c, values in cat_values.items():
            if values:
                codes, cnames = R.categorical([values.get(s) for s in song_ids.tolist()])
                categories[c], names[f"song:{c}"] = codes, cnames
        info = {"files": [p.name for p in files], "columns": list(columns or []),
                "rows": len(ids), "songs_without_row": missing}
        return {"track_features": aligned}, categories, names, info


@hookimpl
def recbench_register_datasets(register):
    register(MSSDDataset)
