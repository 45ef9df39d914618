"""The `folder` dataset: any interactions table (TSV/CSV/Parquet) plus optional audio and tags.

Also reads the folders written by :func:`recbench.dataio.write_dataset` (`recbench data
synth --out DIR`), restoring their name, synthetic flag, row/column order, tag order and
(when the clips are provably unchanged) audio identities, so the fingerprint survives.

Bad input is handled by documented rules, all counted in `Dataset.manifest`:
- malformed lines (wrong number of fields, bytes that are not UTF-8, empty ids, counts
  that are not numbers; in Parquet, binary ids that are not UTF-8): skipped and counted
  with the first few located as file:line (quoted at most 80 characters), or fatal under
  `strict`; a `users.txt`/`songs.txt` line that is not UTF-8 is a one-line error;
- duplicate (user, song) rows: summed (`repaired.duplicate_rows`);
- counts <= 0: dropped (`dropped.non_positive_counts`);
- tags of unknown songs: dropped (`dropped.tags_unknown_songs`);
- songs whose audio is missing or does not decode (a cheap probe of each file at load
  time): dropped and named in `dropped_songs` (fatal under `strict`); users left without
  interactions by this are dropped too (`dropped.users_without_interactions`);
- nothing left: DataError.
Side parts (user_features.tsv, user_categories.tsv, song_categories.tsv, modalities/,
events.tsv with an optional ``propensity`` column for off-policy evaluation; the files of
:mod:`recbench.io.side`) are read when present, keyed by id, with
the rules listed there. `embeddings` attaches pretrained per-song embeddings as
``features["embedding"]`` (:mod:`recbench.features.pretrained`): their identity enters the
fingerprint.
Id order: ids listed in users.txt / songs.txt (written datasets) first, then sorted ids,
so reordering the lines of a table does not change the fingerprint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset
from recbench.errors import DataError
from recbench.params import Param

from ._realdata import check_clips, index_audio, resolve_path

DEFAULT_AUDIO_EXT = ["wav", "flac", "mp3", "ogg"]


class FolderDataset(DatasetLoader):
    """Interactions from a TSV/CSV/Parquet table, optional audio folder and tags table."""

    name = "folder"
    description = "Any interactions table (TSV/CSV/Parquet) + optional audio folder and tags"
    params = (
        Param("root", str, required=True, help="dataset folder (relative: to the suite file)"),
        Param("interactions", str, "interactions.tsv",
              help="interactions file in root; format by extension (.tsv/.txt/.csv/.parquet)"),
        Param("header", bool, True,
              help="text tables start with a header line; without one the columns are "
                   "user, song, count (user, song when count_col is '')"),
        Param("user_col", str, "user", help="user id column"),
        Param("song_col", str, "song", help="song id column (also in the tags file)"),
        Param("count_col", str, None,
              help="play count column; unset: 'count' if present, else each row counts 1; "
                   "'' ignores counts"),
        Param("audio_dir", str, None,
              help="folder of <song_id>.<ext> clips (searched recursively); unset: the "
                   "written dataset's, else 'audio' if it exists; '' for no audio"),
        Param("audio_ext", list, DEFAULT_AUDIO_EXT, item_type=str,
              help="audio file extensions, in order of preference"),
        Param("tags", str, None,
              help="tags table (song, tag[, value]); unset: 'tags.tsv' if it exists; '' none"),
        Param("tag_col", str, "tag", help="tag column of the tags table"),
        Param("sample_rate", int, None, min=1,
              help="audio sample rate (Hz); unset: the written dataset's, else 22050"),
        Param("check_audio", bool, True,
              help="decode a little of every clip at load time; drop songs that fail"),
        Param("audio_identity", str, "stat", choices=("stat", "content"),
              help="audio identity in the fingerprint: path+size+mtime, or SHA-256 of bytes"),
        Param("dataset_name", str, None, help="dataset name; unset: the written name or the folder"),
        Param("strict", bool, False, help="malformed lines or unreadable audio are fatal"),
        Param("side", bool, True, help="read the side parts (user_features.tsv, "
              "user/song_categories.tsv, modalities/, events.tsv) when present"),
        Param("embeddings", str, None,
              help="pretrained song embeddings: a folder of <song>.npy, a .npy matrix (+ "
                   "ids) or a .parquet (relative: to root); read as features 'embedding'"),
        Param("embeddings_ids", str, None,
              help="id list of an embeddings matrix (default <matrix stem>.ids.txt)"),
        Param("embeddings_id_col", str, "song", help="song id column of embeddings Parquet"),
        Param("embeddings_identity", str, "stat", choices=("stat", "content"),
              help="embeddings identity in the fingerprint: sizes+mtimes or SHA-256"),
    )

    # -- paths
    def _root(self, base: str | None) -> Path:
        return resolve_path(self.options["root"], base)

    def validate(self, suite_dir: str | None = None) -> None:
        """Check that the root, the interactions file and named tags/audio paths exist."""
        o = self.options
        root = self._root(suite_dir)
        if not root.is_dir():
            raise DataError(f"dataset.folder.root: {root} is not a folder")
        inter = root / o["interactions"]
        if not inter.is_file():
            raise DataError(f"dataset.folder.interactions: {inter} does not exist")
        from recbench.dataio import table_format

        table_format(inter)
        if o["tags"]:
            if not (root / o["tags"]).is_file():
                raise DataError(f"dataset.folder.tags: {root / o['tags']} does not exist")
            table_format(root / o["tags"])
        if o["audio_dir"] and not (root / o["audio_dir"]).is_dir():
            raise DataError(f"dataset.folder.audio_dir: {root / o['audio_dir']} is not a folder")
        if o["embeddings"] and not resolve_path(o["embeddings"], root).exists():
            raise DataError(f"dataset.folder.embeddings: {resolve_path(o['embeddings'], root)}"
                            " does not exist")

    # -- loading
    def load(self, ctx: LoadContext) -> Dataset:
        """Read the folder (see the module docstring for the rules)."""
        from recbench import dataio
        from recbench.audio import FileAudioSource

        o = self.options
        self.validate(ctx.suite_dir)
        root = self._root(ctx.suite_dir)
        meta = dataio.read_dataset_json(root)
        problems = dataio.Problems(strict=bool(o["strict"] or ctx.strict))
        files = (meta or {}).get("files") or {}

        fixed_users = fixed_songs = None
        if meta is not None:
            if files.get("users") and (root / files["users"]).is_file():
                fixed_users = dataio.read_id_list(root / files["users"])
            if files.get("songs") and (root / files["songs"]).is_file():
                fixed_songs = dataio.read_id_list(root / files["songs"])

        counts, user_ids, song_ids, read_info = self._read_interactions(
            root / o["interactions"], problems, ctx, fixed_users, fixed_songs)

        tag_path = self._tags_path(root)
        tags, tag_names = None, []
        if tag_path is not None:
            tags, tag_names = self._read_tags(tag_path, song_ids, problems, ctx,
                                              (meta or {}).get("tag_names"))

        sample_rate = o["sample_rate"] or (meta or {}).get("sample_rate") or 22050
        audio_dir = self._audio_dir(root, meta)
        audio = None
        keep = np.ones(len(song_ids), dtype=bool)
        if audio_dir is not None:
            paths = self._match_audio(audio_dir, song_ids, problems, keep, meta, ctx)
            kept = np.flatnonzero(keep)
            identities = None
            audio_meta = (meta or {}).get("audio") or {}
            if audio_meta.get("files"):
                entries = audio_meta["files"]
                identities = [dataio.restored_identity(root, entries[song_ids[i]], paths[i])
                              if song_ids[i] in entries else None for i in kept]
            audio = FileAudioSource([paths[i] for i in kept], sample_rate, root=audio_dir,
                                    identity=o["audio_identity"], identities=identities)

        features: dict[str, np.ndarray] = {}
        for fname, entry in ((meta or {}).get("features") or {}).items():
            arr = np.load(root / entry["file"], mmap_mode="r")
            features[fname] = arr if keep.all() else np.asarray(arr[np.flatnonzero(keep)])

        if not keep.all():
            counts, user_ids, tags, song_ids = self._drop_songs(
                counts, user_ids, tags, song_ids, keep, problems)
        if counts.nnz == 0:
            raise DataError(f"{root / o['interactions']}: no interactions left after "
                            f"filtering ({_summary(problems)})")

        side: dict[str, Any] = {}
        if o["side"]:
            from recbench.io.side import read_side

            side = read_side(root, meta, user_ids, song_ids, problems, fixed_songs)

        # A written dataset keeps its source manifest (e.g. synth-msd's feature_params,
        # which the feature extractor reads); this read's own counts override its keys.
        manifest: dict[str, Any] = dict((meta or {}).get("manifest") or {})
        if (meta or {}).get("feature_params") is not None:
            manifest["feature_params"] = meta["feature_params"]
        manifest.update({"loader": "folder", "root": str(root),
                         "interactions_file": o["interactions"], **read_info})
        manifest.update(problems.manifest())
        if audio_dir is not None:
            manifest["audio_dir"] = str(audio_dir)
        ds = Dataset(
            name=o["dataset_name"] or (meta or {}).get("name") or root.name,
            counts=counts, user_ids=user_ids, song_ids=song_ids, audio=audio, tags=tags,
            tag_names=list(tag_names), synthetic=bool((meta or {}).get("synthetic", False)),
            manifest=manifest, features=features, **side)
        if side:
            try:
                ds.validate_side()
            except ValueError as exc:
                raise DataError(f"{root}: {exc}") from None
        if meta is not None and meta.get("fingerprint"):
            manifest["fingerprint_at_write"] = meta["fingerprint"]
            manifest["fingerprint_matches_written"] = ds.fingerprint == meta["fingerprint"]
        if o["embeddings"]:
            from recbench.features.pretrained import attach_embeddings

            ids = o["embeddings_ids"]
            attach_embeddings(ds, resolve_path(o["embeddings"], root),
                              ids=resolve_path(ids, root) if ids else None,
                              id_col=o["embeddings_id_col"],
                              identity=o["embeddings_identity"])
        return ds

    def provides(self, suite_dir: str | None = None) -> tuple[str, ...]:
        """What a load will hold, without loading: interactions, tags when a tags file is
        configured or present, and the side parts whose files are present (checked by
        `validate` against the tasks' needs)."""
        root = self._root(suite_dir)
        tags = self._tags_path(root)
        out = ("interactions",) + (("tags",) if tags is not None and tags.is_file() else ())
        if self.options["side"] and root.is_dir():
            from recbench.io.side import side_files

            out += side_files(root)
        return out

    def _tags_path(self, root: Path) -> Path | None:
        t = self.options["tags"]
        if t == "":
            return None
        if t is None:
            return root / "tags.tsv" if (root / "tags.tsv").is_file() else None
        return root / t

    def _audio_dir(self, root: Path, meta: dict | None) -> Path | None:
        a = self.options["audio_dir"]
        if a == "":
            return None
        if a is None:
            written = ((meta or {}).get("files") or {}).get("audio_dir")
            if written and (root / written).is_dir():
                return root / written
            return root / "audio" if (root / "audio").is_dir() else None
        return root / a

    def _read_interactions(self, path: Path, problems, ctx: LoadContext,
                           fixed_users, fixed_songs):
        from recbench import dataio

        o = self.options
        ucol, scol, ccol = o["user_col"], o["song_col"], o["count_col"]
        if o["header"]:
            columns, optional = [ucol, scol], []
            if ccol is None:
                columns.append("count")
                optional = ["count"]
            elif ccol:
                columns.append(ccol)
            names = None
        else:
            names = [ucol, scol] + ([ccol or "count"] if ccol != "" else [])
            columns, optional = names, []
        reader = dataio.TableReader(path, columns, header=o["header"], names=names,
                                    optional=optional, problems=problems, limit=ctx.limit)
        count_name = (ccol or "count") if ccol != "" else None
        if count_name not in reader.present:
            count_name = None
        users, songs = dataio.IdCollector(), dataio.IdCollector()
        values: list[np.ndarray] = []
        n_rows = 0
        import pyarrow as pa
        import pyarrow.compute as pcc

        for row0, cols in ctx.progress(reader, desc=f"reading {path.name}"):
            u, s = cols[ucol], cols[scol]
            n = len(u)
            n_rows += n
            bad = (pcc.equal(pcc.utf8_length(pcc.utf8_trim_whitespace(u)), 0).to_numpy(
                zero_copy_only=False) | pcc.equal(pcc.utf8_length(
                    pcc.utf8_trim_whitespace(s)), 0).to_numpy(zero_copy_only=False))
            if count_name is not None:
                c, ok = dataio.parse_numbers(cols[count_name])
                bad_count = ~ok & ~bad
            else:
                c, bad_count = np.ones(n), np.zeros(n, dtype=bool)
            if bad.any():
                dataio.report_bad_rows(problems, reader, row0, bad,
                                       lambda p: "empty user or song id")
            if bad_count.any():
                cc = cols[count_name]
                dataio.report_bad_rows(
                    problems, reader, row0, bad_count,
                    lambda p, cc=cc: f"count {cc[p].as_py()!r} is not a finite number")
            good = ~(bad | bad_count)
            nonpos = good & (c <= 0)
            problems.drop("non_positive_counts", int(nonpos.sum()))
            good &= ~nonpos
            if not good.all():
                mask = pa.array(good)
                u, s, c = u.filter(mask), s.filter(mask), c[good]
            users.add(u)
            songs.add(s)
            values.append(c)
        user_ids, upos = users.finish(fixed_users)
        song_ids, spos = songs.finish(fixed_songs)
        rows = np.concatenate(upos) if upos else np.zeros(0, np.int64)
        cols_ = np.concatenate(spos) if spos else np.zeros(0, np.int64)
        vals = np.concatenate(values) if values else np.zeros(0)
        counts, merged = dataio.coo_to_csr(rows, cols_, vals, (len(user_ids), len(song_ids)))
        problems.repair("duplicate_rows", merged)
        info = {"rows_read": n_rows, "blank_lines": reader.blank_lines,
                "count_column": count_name}
        return counts, user_ids, song_ids, info

    def _read_tags(self, path: Path, song_ids: np.ndarray, problems, ctx: LoadContext,
                   written_names: list[str] | None):
        import pyarrow as pa
        import pyarrow.compute as pcc

        from recbench import dataio

        o = self.options
        scol, tcol = o["song_col"], o["tag_col"]
        header = o["header"]
        names = None if header else [scol, tcol]
        reader = dataio.TableReader(path, [scol, tcol, "value"], header=header, names=names,
                                    optional=["value"], problems=problems)
        song_set = pa.array(list(song_ids), pa.string())
        tagc = dataio.IdCollector()
        srows, vals = [], []
        for row0, cols in reader:
            s, t = cols[scol], cols[tcol]
            n = len(s)
            bad = (pcc.equal(pcc.utf8_length(s), 0).to_numpy(zero_copy_only=False)
                   | pcc.equal(pcc.utf8_length(t), 0).to_numpy(zero_copy_only=False))
            if "value" in cols:
                v, ok = dataio.parse_numbers(cols["value"])
                bad |= ~ok
            else:
                v = np.ones(n)
            if bad.any():
                dataio.report_bad_rows(problems, reader, row0, bad,
                                       lambda p: "empty song or tag, or a bad value")
            pos = pcc.fill_null(pcc.index_in(s, value_set=song_set), -1).to_numpy(
                zero_copy_only=False).astype(np.int64)
            unknown = ~bad & (pos < 0)
            problems.drop("tags_unknown_songs", int(unknown.sum()))
            nonpos = ~bad & ~unknown & (v <= 0)
            problems.drop("tags_non_positive", int(nonpos.sum()))
            good = ~(bad | unknown | nonpos)
            mask = pa.array(good)
            tagc.add(t.filter(mask))
            srows.append(pos[good])
            vals.append(v[good])
        tag_ids, tpos = tagc.finish(written_names)
        rows = np.concatenate(srows) if srows else np.zeros(0, np.int64)
        cols_ = np.concatenate(tpos) if tpos else np.zeros(0, np.int64)
        vv = np.concatenate(vals) if vals else np.zeros(0)
        tags, merged = dataio.coo_to_csr(rows, cols_, vv, (len(song_ids), len(tag_ids)))
        if merged:
            # A repeated (song, tag) pair keeps one entry: the max weight, not the sum.
            m = sp.coo_matrix((vv, (rows, cols_)), shape=tags.shape)
            order = np.lexsort((-m.data, m.col, m.row))
            first = np.ones(len(order), dtype=bool)
            r, c = m.row[order], m.col[order]
            first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
            tags, _ = dataio.coo_to_csr(r[first], c[first], m.data[order][first], tags.shape)
            problems.repair("duplicate_tags", merged)
        if not written_names:
            # Generic tables: most used tags first (ties by name).
            n_songs = np.asarray((tags > 0).sum(axis=0)).ravel()
            order = np.lexsort((tag_ids, -n_songs))
            tag_ids = tag_ids[order]
            tags = dataio.canonical_csr(tags[:, order])
        return tags, [str(t) for t in tag_ids]

    def _match_audio(self, audio_dir: Path, song_ids: np.ndarray, problems, keep: np.ndarray,
                     meta: dict | None, ctx: LoadContext) -> list[str | None]:
        """Each song's clip under `audio_dir` (by song id, or the escaped file name
        `write_dataset` gives ids that are not file-safe); `keep` loses the songs without
        a readable one (named and counted)."""
        from recbench.dataio import audio_file_name

        index = index_audio(audio_dir, self.options["audio_ext"])
        unreadable = ((meta or {}).get("audio") or {}).get("unreadable") or {}
        paths: list[str | None] = []
        for sid in song_ids:
            p = index.get(sid)
            if p is None:
                p = index.get(audio_file_name(sid, "x")[:-2])
            paths.append(p)
        keep &= check_clips(
            paths, song_ids, problems, self.options["check_audio"], ctx.progress,
            where=str(audio_dir),
            missing_reason=lambda sid: ("audio unreadable when written: " + unreadable[sid]
                                        if sid in unreadable else "no audio file"))
        return paths

    @staticmethod
    def _drop_songs(counts, user_ids, tags, song_ids, keep, problems):
        from recbench.dataio import canonical_csr

        had = np.diff(counts.indptr) > 0
        counts = counts[:, np.flatnonzero(keep)]
        now = np.diff(counts.indptr) > 0
        keep_users = ~(had & ~now)
        problems.drop("users_without_interactions", int((~keep_users).sum()))
        counts = canonical_csr(counts[np.flatnonzero(keep_users)])
        if tags is not None:
            tags = canonical_csr(tags[np.flatnonzero(keep)])
        return counts, user_ids[keep_users], tags, song_ids[keep]


def _summary(problems) -> str:
    parts = [f"{k}: {v}" for k, v in {**problems.dropped, **problems.repaired}.items()]
    return ", ".join(parts) or "the table has no data rows"


@hookimpl
def recbench_register_datasets(register):
    register(FolderDataset)
