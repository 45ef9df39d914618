"""The `msd` dataset: the paper's subset of the Million Song Dataset, from local copies.

Reads the published files under `root` (or $RECBENCH_MSD_ROOT):

- Taste Profile `train_triplets.txt`: user<TAB>song<TAB>play_count (48M lines, 2.8 GB),
  streamed twice in blocks with pyarrow's CSV reader (no Python object per line):
  pass 1 sums each song's plays, pass 2 keeps the selected songs' rows;
- `unique_tracks.txt`: track<SEP>song<SEP>artist<SEP>title (track ids of each song);
- `sid_mismatches.txt`: `ERROR: <SONG TRACK> ...` lines; the listed songs are dropped;
- Last.fm tags: `lastfm_tags.db` (SQLite tids / tags / tid_tag) or the JSON folders
  (`lastfm_train/A/B/C/TRABC....json`, "tags": [["rock", "100"], ...]);
- audio previews: a folder of clips named by track (or song) id, flat or in the
  A/B/C/TR....clip.mp3 layout (MP3, WAV, FLAC), or precomputed log-mel `.npy` files named
  by song or track id.

The subset (paper, section 4): the `n_songs` most played songs (total play count, ties by
song id; mismatched songs excluded; when an audio or log-mel folder is given, a song also
needs a clip that decodes, checked in popularity order until `n_songs` are found), then
the `n_users` most active users over those songs (distinct songs played, ties by user id).
Songs are ordered by rank, users by activity. Counts are raw play counts (float32).

Tags: a song's tags are the union over its tracks of the Last.fm pairs with
val >= `tag_min_val` (default 0: every listed pair; Last.fm weights are 0-100), keeping
the `n_tags` tags carried by the most selected songs (ties by name).

Log-mel `.npy` files hold (frames, mels) arrays (`logmel_transpose` for (mels, frames));
they go into `Dataset.features["logmel"]`, a float16 (n_songs, frames, mels) array in the
cache folder, cropped to `logmel_frames` from the start or zero-padded at the end to the
longest clip; `features["logmel.lengths"]` holds each song's valid frames.

Bad input: a triplet line with the wrong number of fields, bytes that are not UTF-8, an
empty id or a count that is not a non-negative integer is skipped and counted
(`dropped.malformed_lines`, the first few located as file:line); a last line without a
newline is a cut-off copy of the file and is skipped and counted (`truncated_lines`)
rather than read as a smaller number; non-UTF-8 or malformed `unique_tracks.txt` lines
likewise (`malformed_track_lines`); `strict = true` makes each of these fatal. A missing
`unique_tracks.txt` (when audio or tags need it) and an empty, non-SQLite or
table-less `lastfm_tags.db` are one-line errors naming the file, raised by `validate`
before any pass over the triplets.

The built subset is cached in `<cache_dir>/msd/<key>` where the key hashes the
parameters and the size and mtime of every input file and folder; `cache = false` rebuilds.
A cached subset that cannot be read back whole and consistent (a truncated or overwritten
file, arrays of disagreeing sizes) is logged and rebuilt, and the manifest's
`cache_rebuilt` says why.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset, hash_arrays
from recbench.dataio import is_utf8
from recbench.errors import DataError, DataUnavailable
from recbench.params import Param

log = logging.getLogger("recbench")

ENV_ROOT = "RECBENCH_MSD_ROOT"
LOADER_VERSION = 1  # bump when the built subset would change for the same inputs
DEFAULT_TAG_SOURCES = ["lastfm_tags.db", "lastfm_train", "lastfm_test"]
_MISMATCH = re.compile(rb"^ERROR: <([A-Za-z0-9]+)\s+([A-Za-z0-9]+)>")


class MSDDataset(DatasetLoader):
    """The paper's Taste Profile subset (top songs x most active users) from local files."""

    name = "msd"
    description = "Million Song Dataset / Taste Profile subset from local copies (paper protocol)"
    params = (
        Param("root", str, None, help=f"MSD folder; unset: ${ENV_ROOT}"),
        Param("triplets", str, "train_triplets.txt", help="Taste Profile triplets file"),
        Param("tracks", str, "unique_tracks.txt", help="track<SEP>song<SEP>artist<SEP>title"),
        Param("mismatches", str, "sid_mismatches.txt",
              help="song/track mismatch list ('' to keep every song)"),
        Param("tags", list, None, item_type=str,
              help="Last.fm tags: lastfm_tags.db and/or JSON folders; unset: those of "
                   f"{DEFAULT_TAG_SOURCES} that exist; [] for none"),
        Param("audio_dir", str, None, help="folder of preview clips by track or song id"),
        Param("audio_ext", list, ["mp3", "wav", "flac"], item_type=str,
              help="clip extensions, in order of preference"),
        Param("logmel_dir", str, None, help="folder of precomputed log-mel .npy by song/track id"),
        Param("logmel_frames", int, None, min=1,
              help="frames kept per song (crop from the start / zero-pad); unset: longest"),
        Param("logmel_transpose", bool, False, help=".npy files hold (mels, frames)"),
        Param("n_songs", int, 10_000, min=1, help="most played songs kept"),
        Param("n_users", int, 20_000, min=1, help="most active users kept (over those songs)"),
        Param("song_rank", str, "plays", choices=("plays", "listeners"),
              help="song popularity: total plays or number of listeners"),
        Param("user_rank", str, "songs", choices=("songs", "plays"),
              help="user activity: distinct selected songs played, or their total plays"),
        Param("n_tags", int, 50, min=1, help="most used Last.fm tags kept"),
        Param("tag_min_val", float, 0.0, min=0.0, max=100.0,
              help="a tag is on a track when its Last.fm weight >= this"),
        Param("sample_rate", int, 22050, min=1, help="audio sample rate (Hz)"),
        Param("check_audio", bool, True, help="decode a little of each clip at load time"),
        Param("audio_identity", str, "stat", choices=("stat", "content"),
              help="audio identity in the fingerprint: path+size+mtime, or SHA-256"),
        Param("limit", int, None, min=1, help="read at most this many triplet lines (smoke)"),
        Param("strict", bool, False, help="malformed lines or corrupt clips are fatal"),
        Param("cache", bool, True, help="reuse the subset built from the same inputs"),
    )

    # ------------------------------------------------------------------ paths
    def root(self, base: str | None = None) -> Path:
        """The data root (param, else $RECBENCH_MSD_ROOT); relative paths from `base`."""
        from recbench_builtin.datasets.folder import resolve_path

        r = self.options["root"] or os.environ.get(ENV_ROOT)
        if not r:
            raise DataUnavailable(f"dataset.msd.root: no data folder; set root or ${ENV_ROOT}")
        return resolve_path(r, base)

    def _path(self, root: Path, name: str | None) -> Path | None:
        if not name:
            return None
        return root / os.path.expanduser(name)

    def _tag_sources(self, root: Path) -> list[Path]:
        given = self.options["tags"]
        if given is None:
            return [root / t for t in DEFAULT_TAG_SOURCES if (root / t).exists()]
        return [self._path(root, t) for t in given]

    def _needs_tracks(self, root: Path) -> bool:
        o = self.options
        return bool(o["audio_dir"] or o["logmel_dir"] or self._tag_sources(root))

    def validate(self, suite_dir: str | None = None) -> None:
        """Check that the root and every file the parameters name exist."""
        o = self.options
        root = self.root(suite_dir)
        if not root.is_dir():
            raise DataError(f"dataset.msd.root: {root} is not a folder")
        p = self._path(root, o["triplets"])
        if p is None or not p.is_file():
            raise DataError(f"dataset.msd.triplets: {p} does not exist (the Taste Profile "
                            "train_triplets.txt)")
        m = self._path(root, o["mismatches"])
        if m is not None and not m.is_file():
            raise DataError(f"dataset.msd.mismatches: {m} does not exist (set mismatches = "
                            "\"\" to keep the known song/track mismatches)")
        for t in self._tag_sources(root):
            if not t.exists():
                raise DataError(f"dataset.msd.tags: {t} does not exist")
            if t.is_file():  # checked now, not after the passes over the triplets
                check_tags_db(t)
        for key in ("audio_dir", "logmel_dir"):
            d = self._path(root, o[key])
            if d is not None and not d.is_dir():
                raise DataError(f"dataset.msd.{key}: {d} is not a folder")
        if o["audio_dir"] and o["logmel_dir"]:
            raise DataError("dataset.msd: give audio_dir or logmel_dir, not both")
        if self._needs_tracks(root):
            tr = self._path(root, o["tracks"])
            if tr is None or not tr.is_file():
                raise DataError(f"dataset.msd.tracks: {tr} does not exist (unique_tracks.txt "
                                "maps track ids to songs; needed for audio and tags)")

    # ------------------------------------------------------------------ load
    def load(self, ctx: LoadContext) -> Dataset:
        """Build (or reuse from the cache) the subset described in the module docstring."""
        self.validate(ctx.suite_dir)
        root = self.root(ctx.suite_dir)
        o = self.options
        limit = min([x for x in (o["limit"], ctx.limit) if x is not None], default=None)
        strict = bool(o["strict"] or ctx.strict)
        key = self._cache_key(root, limit, strict)
        cdir = Path(ctx.cache_dir) / "msd" / key
        damaged = None
        if o["cache"] and (cdir / "done.json").is_file():
            try:
                ds = self._from_cache(cdir)
            except Exception as exc:  # noqa: BLE001 - any damage: rebuild, never a wrong subset
                damaged = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
                log.warning("msd: cached subset %s is damaged (%s); rebuilding it", cdir,
                            damaged)
                (cdir / "done.json").unlink(missing_ok=True)
                ds = None
            if ds is not None:
                return ds
        cdir.mkdir(parents=True, exist_ok=True)
        ds = _Builder(self, root, limit, strict, cdir, ctx).build()
        if damaged:
            ds.manifest["cache_rebuilt"] = damaged
        if o["cache"]:
            self._to_cache(ds, cdir)
        return ds

    # ------------------------------------------------------------------ cache
    def _cache_key(self, root: Path, limit: int | None, strict: bool) -> str:
        o = self.options
        opts = {k: v for k, v in o.items() if k not in ("cache", "root", "limit", "strict")}
        stats = []
        paths = [self._path(root, o["triplets"]), self._path(root, o["mismatches"]),
                 self._path(root, o["tracks"]) if self._needs_tracks(root) else None,
                 *self._tag_sources(root), self._path(root, o["audio_dir"]),
                 self._path(root, o["logmel_dir"])]
        for p in paths:
            if p is None:
                continue
            try:
                st = os.stat(p)
                stats.append((str(p.resolve()), st.st_size, st.st_mtime_ns))
            except OSError:
                stats.append((str(p), None, None))
        return hash_arrays(LOADER_VERSION, json.dumps(opts, sort_keys=True), limit, strict,
                           stats)

    def _to_cache(self, ds: Dataset, cdir: Path) -> None:
        import scipy.sparse as sp

        sp.save_npz(cdir / "counts.npz", ds.counts, compressed=False)
        np.save(cdir / "user_ids.npy", ds.user_ids)
        np.save(cdir / "song_ids.npy", ds.song_ids)
        if ds.tags is not None:
            sp.save_npz(cdir / "tags.npz", ds.tags, compressed=False)
        audio = None
        if ds.audio is not None:
            audio = {"paths": ds.audio.paths, "sample_rate": ds.audio.sample_rate,
                     "root": ds.audio.root, "identity": ds.audio.identity_mode}
        from recbench.features import _checksum

        meta = {"name": ds.name, "tag_names": ds.tag_names, "audio": audio,
                "manifest": ds.manifest, "features": sorted(ds.features),
                "logmel_files": getattr(ds, "_logmel_files", None),
                "checksums": {f"{name}.npy": _checksum(str(cdir / f"{name}.npy"))
                              for name in sorted(ds.features)}}
        (cdir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        (cdir / "done.json").write_text("{}", encoding="utf-8")

    def _from_cache(self, cdir: Path) -> Dataset | None:
        """The cached subset, or None when its log-mel files changed since (rebuild)."""
        import scipy.sparse as sp

        from recbench.audio import FileAudioSource
        from recbench.dataio import canonical_csr

        meta = json.loads((cdir / "meta.json").read_text(encoding="utf-8"))
        audio = None
        if meta["audio"] is not None:
            a = meta["audio"]
            audio = FileAudioSource(a["paths"], a["sample_rate"], root=a["root"],
                                    identity=a["identity"])
        from recbench.features import _checksum

        if meta["features"] and "checksums" not in meta:
            return None  # written before arrays carried checksums: rebuild
        feats = {}
        checksums = meta.get("checksums") or {}
        for name in meta["features"]:
            path = cdir / f"{name}.npy"
            if _checksum(str(path)) != checksums.get(f"{name}.npy"):
                raise DataError(f"{path}: checksum differs from the one recorded "
                                "(overwritten or corrupted)")
            feats[name] = np.load(path, mmap_mode="r")
        tags = (canonical_csr(sp.load_npz(cdir / "tags.npz"))
                if (cdir / "tags.npz").exists() else None)
        manifest = dict(meta["manifest"])
        manifest["from_cache"] = str(cdir)
        counts = canonical_csr(sp.load_npz(cdir / "counts.npz"))
        user_ids = np.load(cdir / "user_ids.npy")
        song_ids = np.load(cdir / "song_ids.npy")
        shape = (len(user_ids), len(song_ids))
        if counts.shape != shape or (tags is not None and tags.shape[0] != shape[1]) or \
                (audio is not None and len(audio) != shape[1]) or \
                any(a.shape[0] != shape[1] for a in feats.values()) or \
                not np.isfinite(counts.data).all():
            raise DataError(f"{cdir}: cached arrays disagree on the numbers of users and "
                            f"songs {shape}")
        if "logmel" in feats:
            lengths = feats.get("logmel.lengths")
            if lengths is None or int(np.max(lengths, initial=0)) > feats["logmel"].shape[1]:
                raise DataError(f"{cdir}: cached log-mel lengths do not fit the array")
        ds = Dataset(name=meta["name"], counts=counts, user_ids=user_ids, song_ids=song_ids,
                     audio=audio, tags=tags, tag_names=list(meta["tag_names"]),
                     synthetic=False, manifest=manifest, features=feats)
        lm = meta.get("logmel_files")
        if lm:
            ids = _file_ids(lm["paths"], lm["root"])
            if hash_arrays(ids) != lm["ids_hash"]:
                return None
            _set_logmel_fingerprint(ds, ids, lm)
        return ds


def _file_ids(paths: list[str], root: str) -> np.ndarray:
    from recbench.audio import stat_identity

    return np.asarray([stat_identity(p, root) for p in paths], dtype=str)


def _set_logmel_fingerprint(ds: Dataset, ids: np.ndarray, lm: dict) -> None:
    """Log-mel files stand in for audio: their identities enter the fingerprint where
    audio identities would (Dataset.fingerprint alone would ignore features)."""
    ds._fingerprint = hash_arrays(ds.user_ids, ds.song_ids, ds.counts, ds.tags,
                                  list(ds.tag_names), ids)
    ds._logmel_files = lm  # type: ignore[attr-defined]
    ds.manifest["fingerprint_audio"] = "identities (path, size, mtime) of the log-mel files"


# ---------------------------------------------------------------------- the build


class _Builder:
    """One build of the subset (keeps the intermediate state of the passes)."""

    def __init__(self, loader: MSDDataset, root: Path, limit: int | None, strict: bool,
                 cdir: Path, ctx: LoadContext):
        from recbench.dataio import Problems

        self.o = loader.options
        self.loader = loader
        self.root = root
        self.limit = limit
        self.cdir = cdir
        self.ctx = ctx
        self.problems = Problems(strict=strict)
        self.info: dict[str, Any] = {"loader": "msd", "root": str(root), "limit": limit}

    # -- helpers
    def path(self, name: str | None) -> Path | None:
        return self.loader._path(self.root, name)

    def reader(self, first_pass: bool):
        from recbench.dataio import TableReader

        return TableReader(self.path(self.o["triplets"]), ["user", "song", "count"],
                           header=False, names=["user", "song", "count"],
                           problems=self.problems if first_pass else None, limit=self.limit,
                           block_size=8 << 20,  # arrow reads ~13 blocks ahead
                           complete_lines=True)  # the published file ends in a newline

    def clean(self, reader, row0: int, cols: dict, report: bool):
        """(user, song, plays, ok) of a batch: drops malformed rows and zero counts."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        from recbench.dataio import report_bad_rows

        u, s, c = cols["user"], cols["song"], cols["count"]
        digits = pcc.utf8_is_digit(c).to_numpy(zero_copy_only=False)
        empty = (pcc.equal(pcc.utf8_length(u), 0).to_numpy(zero_copy_only=False)
                 | pcc.equal(pcc.utf8_length(s), 0).to_numpy(zero_copy_only=False))
        bad = empty | ~digits
        plays = pcc.cast(pcc.if_else(pa.array(bad), "0", c), pa.int64()).to_numpy(
            zero_copy_only=False)
        if report and bad.any():
            report_bad_rows(self.problems, reader, row0, bad,
                            lambda p: (f"play count {c[p].as_py()!r} is not a "
                                       "non-negative integer") if not empty[p]
                            else "empty user or song id")
        zero = ~bad & (plays <= 0)
        if report:
            self.problems.drop("non_positive_counts", int(zero.sum()))
        return u, s, plays, ~(bad | zero)

    # -- steps
    def build(self) -> Dataset:
        mism = self.read_mismatches()
        songs_tab = self.pass1()
        ranked = self.rank_songs(songs_tab, mism)
        tracks = self.read_tracks() if self.loader._needs_tracks(self.root) else None
        chosen, clips = self.choose_songs(ranked, tracks)
        counts, user_ids = self.pass2(chosen)
        song_ids = np.asarray(chosen, dtype=str)
        tags, tag_names = self.read_tags(song_ids, tracks)
        audio, feats = self.audio_and_features(song_ids, clips)
        if counts.nnz == 0:
            raise DataError(f"{self.path(self.o['triplets'])}: no interactions left after "
                            "selection")
        manifest = {**self.info, **self.problems.manifest()}
        ds = Dataset(name="msd", counts=counts, user_ids=user_ids, song_ids=song_ids,
                     audio=audio, tags=tags, tag_names=tag_names, synthetic=False,
                     manifest=manifest, features=feats)
        if "logmel" in feats:
            ids = _file_ids(clips, str(self.clip_root))
            _set_logmel_fingerprint(ds, ids, {"paths": clips, "root": str(self.clip_root),
                                              "ids_hash": hash_arrays(ids)})
        return ds

    def read_mismatches(self) -> set[str]:
        p = self.path(self.o["mismatches"])
        if p is None:
            self.info["mismatches"] = "not used"
            return set()
        out: set[str] = set()
        with open(p, "rb") as f:  # ids are ASCII; artist and title may be any bytes
            for ln, line in enumerate(f, 1):
                if not line.strip():
                    continue
                m = _MISMATCH.match(line)
                if m is None:
                    self.problems.bad("malformed_mismatch_lines", f"{p}:{ln}",
                                      "expected 'ERROR: <SONG_ID TRACK_ID> ...'")
                    continue
                out.add(m.group(1).decode("ascii"))
        self.info["mismatched_songs_listed"] = len(out)
        return out

    def pass1(self):
        """Table (song, plays, listeners) over the whole triplet file."""
        import pyarrow as pa

        reader = self.reader(True)
        parts, n = [], 0
        for row0, cols in self.ctx.progress(reader, desc="triplets pass 1/2"):
            _, s, plays, ok = self.clean(reader, row0, cols, report=True)
            n += len(s)
            t = pa.table({"song": s.filter(pa.array(ok)), "plays": plays[ok]})
            parts.append(t.group_by("song").aggregate([("plays", "sum"), ("plays", "count")])
                         .rename_columns(["song", "plays", "listeners"]))
            if len(parts) >= 16:  # compact: a song appears in many blocks
                parts = [_merge_song_parts(parts)]
        self.info["triplet_lines_read"] = n
        self.info["blank_lines"] = reader.blank_lines
        return _merge_song_parts(parts)

    def rank_songs(self, tab, mism: set[str]):
        """Song ids (pyarrow array) by decreasing popularity, mismatches removed."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        self.info["songs_in_triplets"] = tab.num_rows
        if mism:
            bad = pcc.is_in(tab["song"], value_set=pa.array(sorted(mism), pa.string()))
            n_bad = int(pcc.sum(bad).as_py() or 0)
            self.info["mismatched_songs_dropped"] = n_bad
            self.problems.drop("mismatched_songs", n_bad)
            tab = tab.filter(pcc.invert(bad))
        key = "plays" if self.o["song_rank"] == "plays" else "listeners"
        tab = tab.sort_by([(key, "descending"), ("song", "ascending")])
        self.song_popularity = tab
        return tab["song"].combine_chunks()

    def read_tracks(self):
        """Table (track, song) of unique_tracks.txt in file order."""
        import pyarrow as pa
        import pyarrow.compute as pcc
        import pyarrow.csv as pc

        p = self.path(self.o["tracks"])
        bad: list[int] = []

        def handler(row):
            bad.append(row.number)
            return "skip"

        try:
            lines = pc.read_csv(p, read_options=pc.ReadOptions(
                column_names=["line"], use_threads=False),
                parse_options=pc.ParseOptions(delimiter="\x1f", quote_char=False,
                                              invalid_row_handler=handler),
                convert_options=pc.ConvertOptions(column_types={"line": pa.binary()}))
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{p}: cannot read ({' '.join(str(exc).split())[:200]}); "
                            "expected unique_tracks.txt lines "
                            "TRACK<SEP>SONG<SEP>ARTIST<SEP>TITLE") from None
        col = lines["line"].combine_chunks() if lines.num_rows else pa.array([], pa.binary())
        try:
            text = col.cast(pa.string())
            utf8 = np.ones(len(col), dtype=bool)
        except pa.ArrowInvalid:  # a line with bytes that are not UTF-8: skip and count it
            utf8 = np.array([v is None or is_utf8(v) for v in col.to_pylist()], dtype=bool)
            n_bad = int((~utf8).sum())
            self.problems.bad("malformed_track_lines", f"{p}:{int(np.flatnonzero(~utf8)[0]) + 1}",
                              "not valid UTF-8 text", n=n_bad)
            text = col.filter(pa.array(utf8)).cast(pa.string())
        parts = pcc.split_pattern(text, "<SEP>", max_splits=3)
        n_fields = pcc.list_value_length(parts).to_numpy(zero_copy_only=False)
        ok = n_fields >= 2
        if not ok.all() or bad:
            first = (int(np.flatnonzero(utf8)[np.flatnonzero(~ok)[0]]) + 1 if not ok.all()
                     else bad[0])
            self.problems.bad("malformed_track_lines", f"{p}:{first}",
                              "expected TRACK<SEP>SONG<SEP>ARTIST<SEP>TITLE",
                              n=int((~ok).sum()) + len(bad))
        if not ok.any():
            raise DataError(f"{p}: no line of the form TRACK<SEP>SONG<SEP>ARTIST<SEP>TITLE")
        parts = parts.filter(pa.array(ok))
        return pa.table({"track": pcc.list_element(parts, 0),
                         "song": pcc.list_element(parts, 1)})

    # -- song choice
    def clip_index(self) -> tuple[dict[str, str], str] | None:
        """{track or song id: file} of the audio (or log-mel) folder, and the kind."""
        o = self.o
        if o["audio_dir"]:
            folder, exts, kind = self.path(o["audio_dir"]), o["audio_ext"], "audio"
        elif o["logmel_dir"]:
            folder, exts, kind = self.path(o["logmel_dir"]), ["npy"], "logmel"
        else:
            return None
        rank = {e.lower().lstrip("."): k for k, e in enumerate(exts)}
        index: dict[str, str] = {}
        best: dict[str, int] = {}
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for fn in filenames:
                ext = fn.rsplit(".", 1)[-1].lower()
                if ext not in rank or not fn.startswith(("TR", "SO")):
                    continue
                key = fn.split(".", 1)[0]  # TRxxx.clip.mp3 -> TRxxx
                if key not in best or rank[ext] < best[key] or (
                        rank[ext] == best[key] and fn < os.path.basename(index[key])):
                    best[key] = rank[ext]
                    index[key] = os.path.join(dirpath, fn)
        self.info[f"{kind}_files_indexed"] = len(index)
        self.clip_root = folder
        return index, kind

    def choose_songs(self, ranked, tracks) -> tuple[list[str], list[str] | None]:
        """The first `n_songs` ranked songs (with a clip that decodes when audio is used)."""
        n = self.o["n_songs"]
        found = self.clip_index()
        if found is None:
            chosen = ranked.slice(0, n).to_pylist()
            self._note_short(len(chosen), len(ranked))
            return chosen, None
        index, kind = found
        chosen: list[str] = []
        clips: list[str] = []
        shapes: list[tuple[int, int]] = []
        no_clip = examined = 0
        pos = 0
        bar = iter(self.ctx.progress(range(n), total=n, desc=f"checking {kind}"))
        while len(chosen) < n and pos < len(ranked):
            want = n - len(chosen)
            block = ranked.slice(pos, max(int(want * 1.2), 256)).to_pylist()
            pos += len(block)
            song_tracks = _tracks_of(tracks, block)
            for sid in block:
                if len(chosen) >= n:
                    break
                examined += 1
                candidates = [sid] + song_tracks.get(sid, [])
                path = next((index[c] for c in candidates[1:] if c in index), None)
                if path is None:
                    path = index.get(sid)
                if path is None:
                    no_clip += 1
                    continue
                try:
                    shape = self.check_clip(path, kind)
                except DataError as exc:
                    self.problems.drop_song(sid, str(exc).split(": ", 1)[-1], path)
                    self.problems.drop(f"songs_unreadable_{kind}", 1)
                    continue
                chosen.append(sid)
                clips.append(path)
                shapes.append(shape)
                next(bar, None)
        self.info["songs_examined"] = examined
        self.problems.drop(f"songs_without_{kind}", no_clip)
        self.info[f"songs_without_{kind}"] = no_clip
        self.clip_shapes = shapes
        self._note_short(len(chosen), len(ranked))
        return chosen, clips

    def _note_short(self, got: int, available: int) -> None:
        self.info["n_songs_requested"] = self.o["n_songs"]
        self.info["n_songs"] = got
        if got < self.o["n_songs"]:
            self.info["songs_short"] = (f"only {got} songs qualified out of {available} "
                                        "ranked")

    def check_clip(self, path: str, kind: str) -> tuple[int, int]:
        """Cheap integrity check; (frames, mels) for log-mel files, (0, 0) for audio."""
        from recbench.audio import AudioDecodeError, probe_audio

        if kind == "audio":
            if self.o["check_audio"]:
                try:
                    probe_audio(path)
                except AudioDecodeError as exc:
                    raise DataError(str(exc)) from None
            return (0, 0)
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: not a readable .npy file ({exc})") from None
        if arr.ndim != 2 or 0 in arr.shape or arr.dtype.kind not in "fiu":
            raise DataError(f"{path}: expected a 2-D numeric (frames, mels) array, got shape "
                            f"{arr.shape} {arr.dtype}")
        if not np.isfinite(arr).all():
            raise DataError(f"{path}: log-mel contains NaN or infinite values")
        return tuple(arr.shape[::-1]) if self.o["logmel_transpose"] else tuple(arr.shape)

    # -- users
    def pass2(self, chosen: list[str]):
        """(users x songs CSR counts, user ids) restricted to the chosen songs and the
        `n_users` most active users."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        from recbench.dataio import IdCollector, canonical_csr, coo_to_csr

        song_set = pa.array(chosen, pa.string())
        reader = self.reader(False)
        users = IdCollector()
        song_pos, plays_kept = [], []
        for row0, cols in self.ctx.progress(reader, desc="triplets pass 2/2"):
            u, s, plays, ok = self.clean(reader, row0, cols, report=False)
            idx = pcc.index_in(s, value_set=song_set)
            keep = ok & pcc.is_valid(idx).to_numpy(zero_copy_only=False)
            if not keep.any():
                continue
            mask = pa.array(keep)
            users.add(u.filter(mask))
            # 4-byte positions and plays (exact below 2**24): the kept rows of the real
            # file are tens of millions
            song_pos.append(idx.filter(mask).to_numpy(zero_copy_only=False).astype(np.int32))
            plays_kept.append(plays[keep].astype(np.float32))
        user_ids, upos = users.finish()
        rows = np.concatenate(upos) if upos else np.zeros(0, np.int64)
        cols_ = np.concatenate(song_pos) if song_pos else np.zeros(0, np.int64)
        vals = np.concatenate(plays_kept) if plays_kept else np.zeros(0)
        counts, merged = coo_to_csr(rows, cols_, vals, (len(user_ids), len(chosen)))
        self.problems.repair("duplicate_rows", merged)
        self.info["users_with_selected_songs"] = len(user_ids)
        if self.o["user_rank"] == "songs":
            activity = np.diff(counts.indptr).astype(np.float64)
        else:
            activity = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
        # ties by user id: user_ids are sorted, so a stable sort on -activity suffices
        order = np.argsort(-activity, kind="stable")[: self.o["n_users"]]
        order = order[activity[order] > 0]
        self.info["n_users"] = len(order)
        self.info["n_users_requested"] = self.o["n_users"]
        counts = canonical_csr(counts[order])
        empty = int((np.diff(counts.tocsc().indptr) == 0).sum())
        if empty:
            self.info["songs_without_selected_users"] = empty
        return counts, user_ids[order]

    # -- tags
    def read_tags(self, song_ids: np.ndarray, tracks):
        """(songs x n_tags binary CSR, tag names) or (None, [])."""
        sources = self.loader._tag_sources(self.root)
        if not sources or tracks is None:
            self.info["tags"] = "none"
            return None, []
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
        kept = [(s, t) for (s, t), v in pairs.items() if v >= self.o["tag_min_val"]]
        self.info["tags"] = {"sources": used, "min_val": self.o["tag_min_val"],
                             "song_tag_pairs": len(kept)}
        song_pos = {s: i for i, s in enumerate(song_ids)}
        by_tag: dict[str, int] = {}
        for _, t in kept:
            by_tag[t] = by_tag.get(t, 0) + 1
        names = sorted(by_tag, key=lambda t: (-by_tag[t], t))[: self.o["n_tags"]]
        tag_pos = {t: j for j, t in enumerate(names)}
        rows = np.array([song_pos[s] for s, t in kept if t in tag_pos], dtype=np.int64)
        cols = np.array([tag_pos[t] for s, t in kept if t in tag_pos], dtype=np.int64)
        tags, _ = coo_to_csr(rows, cols, np.ones(len(rows)), (len(song_ids), len(names)))
        self.info["tags"]["songs_with_tags"] = int((np.diff(tags.indptr) > 0).sum())
        return tags, names

    # -- audio
    def audio_and_features(self, song_ids: np.ndarray, clips: list[str] | None):
        from recbench.audio import FileAudioSource

        if clips is None:
            self.info["audio"] = "none"
            return None, {}
        o = self.o
        if o["audio_dir"]:
            self.info["audio"] = str(self.clip_root)
            return FileAudioSource(clips, o["sample_rate"], root=self.clip_root,
                                   identity=o["audio_identity"]), {}
        shapes = np.array(self.clip_shapes or [(0, 0)], dtype=np.int64)
        mels = set(shapes[:, 1].tolist())
        if len(mels) > 1:
            raise DataError(f"{self.clip_root}: log-mel files disagree on the number of mel "
                            f"bins ({sorted(mels)}); set logmel_transpose if they are "
                            "(mels, frames)")
        frames = o["logmel_frames"] or int(shapes[:, 0].max())
        n_mels = int(shapes[0, 1])
        out = np.lib.format.open_memmap(self.cdir / "logmel.npy", mode="w+",
                                        dtype=np.float16, shape=(len(clips), frames, n_mels))
        lengths = np.zeros(len(clips), dtype=np.int64)
        for i, p in enumerate(self.ctx.progress(clips, total=len(clips), desc="log-mel")):
            a = np.load(p, allow_pickle=False)
            if o["logmel_transpose"]:
                a = a.T
            k = min(frames, a.shape[0])
            out[i, :k] = a[:k]
            out[i, k:] = 0
            lengths[i] = k
        out.flush()
        np.save(self.cdir / "logmel.lengths.npy", lengths)
        self.info["logmel"] = {"dir": str(self.clip_root), "frames": frames, "mels": n_mels,
                               "padding": "zeros at the end; crop from the start",
                               "cropped": int((shapes[:, 0] > frames).sum()),
                               "padded": int((shapes[:, 0] < frames).sum())}
        return None, {"logmel": np.load(self.cdir / "logmel.npy", mmap_mode="r"),
                      "logmel.lengths": lengths}


def _merge_song_parts(parts):
    import pyarrow as pa

    if len(parts) == 1:
        return parts[0]
    t = pa.concat_tables(parts)
    return (t.group_by("song").aggregate([("plays", "sum"), ("listeners", "sum")])
            .rename_columns(["song", "plays", "listeners"]))


def _tracks_of(tracks, songs: list[str]) -> dict[str, list[str]]:
    """{song: [track ids in file order]} for `songs`."""
    if tracks is None:
        return {}
    import pyarrow as pa
    import pyarrow.compute as pcc

    sel = tracks.filter(pcc.is_in(tracks["song"], value_set=pa.array(songs, pa.string())))
    out: dict[str, list[str]] = {}
    for t, s in zip(sel["track"].to_pylist(), sel["song"].to_pylist()):
        out.setdefault(s, []).append(t)
    return out


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


@hookimpl
def recbench_register_datasets(register):
    register(MSDDataset)
