"""The `msd` loader class: parameters, validation, the subset cache and its lock."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset, hash_arrays
from recbench.errors import DataError, DataUnavailable
from recbench.params import Param

from .audio import NAMINGS
from .build import _Builder, _file_ids, _set_logmel_fingerprint, seal_fingerprint
from .files import SevenDigitalIds, check_track_metadata
from .tags import TAG_RULES, check_tags_db

log = logging.getLogger("recbench")

ENV_ROOT = "RECBENCH_MSD_ROOT"
LOADER_VERSION = 2  # bump when the built subset would change for the same inputs
DEFAULT_TAG_SOURCES = ["lastfm_tags.db", "lastfm_train", "lastfm_test"]


class MSDDataset(DatasetLoader):
    """The paper's Taste Profile subset (top songs x most active users) from local files."""

    name = "msd"
    description = ("Million Song Dataset / Taste Profile subset from local copies; subset rules "
                   "'clean' (mismatches dropped, users by selected songs) or 'authors' (the "
                   "authors' code: top songs and users by total plays, mismatches kept); tag "
                   "presets 'top50-count' or 'choi50' (Choi's 50 tags, weight > 50)")
    params = (
        Param("subset", str, "clean", choices=("clean", "authors"),
              help="subset rule. clean: top n_songs by song_rank, sid_mismatches dropped "
                   "(manually accepted pairs kept), walked down past songs without audio; "
                   "users by user_rank over those songs. authors: top n_songs by total "
                   "plays, mismatches kept, songs without audio dropped (no refill); top "
                   "n_users by total plays over ALL songs (song_rank, user_rank and "
                   "mismatches are ignored)"),
        Param("root", str, None, help=f"MSD folder; unset: ${ENV_ROOT}"),
        Param("triplets", str, "train_triplets.txt", help="Taste Profile triplets file"),
        Param("tracks", str, "unique_tracks.txt", help="track<SEP>song<SEP>artist<SEP>title"),
        Param("mismatches", str, "sid_mismatches.txt",
              help="song/track mismatch list ('' to keep every song)"),
        Param("accepted", str, "sid_matches_manually_accepted.txt",
              help="(song, track) pairs checked by hand: not mismatches (used if it exists)"),
        Param("tags", list, None, item_type=str,
              help="Last.fm tags: lastfm_tags.db and/or JSON folders; unset: those of "
                   f"{DEFAULT_TAG_SOURCES} that exist; [] for none"),
        Param("audio_dir", str, None,
              help="folder of preview clips by track, song or 7digital id (flat or nested)"),
        Param("audio_naming", str, "auto", choices=NAMINGS,
              help="clip names: track (TR...), song (SO...), 7digital (<id>.clip.mp3, via "
                   "track_metadata or id_map), or auto (all of them)"),
        Param("track_metadata", str, "track_metadata.db",
              help="MSD SQLite metadata (table songs: track_id, track_7digitalid); used "
                   "for 7digital-named clips if it exists"),
        Param("id_map", str, None,
              help="two-column file: track id, 7digital id (instead of or beside "
                   "track_metadata)"),
        Param("audio_ext", list, ["mp3", "wav", "flac"], item_type=str,
              help="clip extensions, in order of preference"),
        Param("logmel_dir", str, None, help="folder of precomputed log-mel .npy named like the clips "
                   "(track, song or 7digital id)"),
        Param("logmel_frames", int, None, min=1,
              help="frames kept per song (crop from the start / zero-pad); unset: longest"),
        Param("logmel_transpose", bool, False, help=".npy files hold (mels, frames)"),
        Param("n_songs", int, 10_000, min=1, help="most played songs kept"),
        Param("n_users", int, 20_000, min=1, help="most active users kept (clean: over the selected songs; authors: "
                   "plays over all songs)"),
        Param("song_rank", str, "plays", choices=("plays", "listeners"),
              help="song popularity: total plays or number of listeners"),
        Param("user_rank", str, "songs", choices=("songs", "plays"),
              help="user activity: distinct selected songs played, or their total plays"),
        Param("tag_preset", str, "top50-count", choices=tuple(TAG_RULES),
              help="top50-count: the n_tags tags on most songs (weight >= tag_min_val); "
                   "choi50: Choi et al.'s curated 50 MSD tags, weight > 50 (the paper's)"),
        Param("n_tags", int, 50, min=1, help="most used Last.fm tags kept (top50-count)"),
        Param("tag_min_val", float, 0.0, min=0.0, max=100.0,
              help="a tag is on a track when its Last.fm weight >= this (top50-count)"),
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

    def _accepted_path(self, root: Path) -> Path | None:
        """The manually accepted matches file, when given and present."""
        p = self._path(root, self.options["accepted"])
        return p if p is not None and p.is_file() else None

    def _seven_digital(self, root: Path, problems) -> SevenDigitalIds | None:
        """Track -> 7digital id map from track_metadata.db and/or id_map; None without."""
        o = self.options
        db = self._path(root, o["track_metadata"])
        db = db if db is not None and db.is_file() else None
        im = self._path(root, o["id_map"])
        if db is None and im is None:
            return None
        return SevenDigitalIds(db, im, problems)

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
        acc = self._path(root, o["accepted"])
        if acc is not None and acc.exists() and not acc.is_file():
            raise DataError(f"dataset.msd.accepted: {acc} is not a file")
        if o["id_map"]:
            im = self._path(root, o["id_map"])
            if not im.is_file():
                raise DataError(f"dataset.msd.id_map: {im} does not exist (expected a file "
                                "of track id, 7digital id lines)")
        tm = self._path(root, o["track_metadata"])
        if tm is not None and tm.is_file() and (o["audio_dir"] or o["logmel_dir"]):
            check_track_metadata(tm)
        if o["audio_naming"] == "7digital" and (o["audio_dir"] or o["logmel_dir"]) and \
                not o["id_map"] and (tm is None or not tm.is_file()):
            raise DataError(f"dataset.msd.track_metadata: {tm} does not exist; 7digital-named "
                            "clips need it (or id_map) to map tracks to 7digital ids")
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
        if not o["cache"]:
            cdir.mkdir(parents=True, exist_ok=True)
            return _Builder(self, root, limit, strict, cdir, ctx).build()
        import filelock

        cdir.parent.mkdir(parents=True, exist_ok=True)
        # one build per key even when runs start together: the second waits, then reads
        # the first one's cache
        with filelock.FileLock(str(cdir.parent / f"{key}.lock")):
            return self._load_locked(root, limit, strict, cdir, ctx)

    def _load_locked(self, root: Path, limit: int | None, strict: bool, cdir: Path,
                     ctx: LoadContext) -> Dataset:
        damaged = None
        if (cdir / "done.json").is_file():
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
                 self._path(root, o["logmel_dir"]), self._accepted_path(root),
                 self._path(root, o["track_metadata"]) if o["audio_dir"] or o["logmel_dir"]
                 else None, self._path(root, o["id_map"])]
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
        seal_fingerprint(ds)
        return ds


def recbench_register_datasets(register):
    register(MSDDataset)

