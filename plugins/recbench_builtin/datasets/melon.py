"""The `melon` dataset: the Melon Playlist Dataset (Kakao Arena), playlists as users and
precomputed mel-spectrograms as the songs' audio, read from a local copy; nothing is
downloaded.

Published layout (Ferraro et al., ICASSP 2021; https://arena.kakao.com/melon_dataset):

    <root>/train.json        [{"id", "plylst_title", "tags": [...], "songs": [song ids],
                               "like_cnt", "updt_date"}, ...]   (also val.json, test.json)
    <root>/song_meta.json    [{"id", "song_name", "album_id", "album_name",
                               "artist_id_basket": [...], "artist_name_basket": [...],
                               "song_gn_gnr_basket": ["GN0900", ...],
                               "song_gn_dtl_gnr_basket": [...], "issue_date"}, ...]
    <root>/genre_gn_all.json {"GN0100": "<genre name>", ...}
    <root>/arena_mel/<id // 1000>/<id>.npy   one mel-spectrogram per song, 48 mel bands x
                               frames (1876 for a full clip), unpacked from arena_mel_*.tar

Sources: andrebola/icassp2021 cf_train.py (json.load of data/train.json, each playlist's
'id' and 'songs') and README.md (the dataset authors' code); the file layout
'arena_mel/{id//1000}/{id}.npy' of shape (48, 1876) and song_meta's
'song_gn_gnr_basket' as read by public Melon loaders (e.g. a Kakao_arena_dataset class:
np.load('./data/arena_mel/{}/{}.npy'.format(idx//1000, idx))); havenpersona/
title_generation README.md (train.json, val.json, test.json, song_meta.json).

What it becomes. Users: the playlists of `playlists` (ids as strings); songs: the songs
they hold (with `n_songs`, the songs in most playlists, skipping those without a
readable mel), ids ascending; `counts`: 1 per (playlist, song). `tags`: songs x genres from
song_gn_gnr_basket (names from genre_gn_all.json when present: 'GN0900 <name>'). Song
categories: "genre" (first genre), "artist" (first artist id), "album". Mels: every
song's .npy, transposed to (frames, 48), cropped or zero-padded to `mel_frames`, in
`features["logmel"]` (float16, in the cache folder) with "logmel.lengths"; songs without
a file, or whose file is not a 2-D finite array of `n_mels` rows, are dropped and named
(their playlist entries too). Feature parameters for models: n_mels 48, sample_rate
16000, hop_length 256 (our reading: 1876 frames for the 30 s clip; override with
`mel_sample_rate` / `mel_hop`). The mel files' identities (path, size, mtime) enter the
fingerprint, as audio identities do for audio.

Bad input: a playlist or song entry that is not an object with an integer id (and, for
playlists, a list of integer songs) is skipped, counted under dropped.malformed_entries
and named "file: entry N"; a file that is not JSON is a one-line error naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset, hash_arrays
from recbench.errors import DataError
from recbench.params import Param
from recbench_builtin.datasets import _realdata as R


class MelonDataset(DatasetLoader):
    """Melon Playlist Dataset: playlists as users, precomputed mel-spectrograms, genres."""

    name = "melon"
    description = ("Melon Playlist Dataset (local copy): playlists as users, arena_mel "
                   "mel-spectrograms as log-mel features, genres as tags")
    params = (
        Param("root", str, required=True,
              help="the dataset folder (relative: to the suite file); nothing downloads"),
        Param("playlists", list, ["train.json"], item_type=str,
              help="playlist files in root (train.json, val.json, test.json)"),
        Param("n_songs", int, None, min=1,
              help="keep the songs in most playlists (ties: smaller id), at most this "
                   "many with a readable mel; unset: all (the full set's mels take ~117 GB "
                   "as float16 at 1876 frames)"),
        Param("mel_dir", str, "arena_mel", help="mel-spectrogram folder in root; '' none"),
        Param("n_mels", int, 48, min=1, help="mel bands of the published files"),
        Param("mel_frames", int, None, min=1,
              help="frames kept per song (crop from the start / zero-pad); unset: longest"),
        Param("mel_sample_rate", int, 16000, min=1, help="sample rate the mels were made at"),
        Param("mel_hop", int, 256, min=1, help="hop length (samples) of the mels"),
        Param("dataset_name", str, "melon", help="dataset name in results"),
        Param("strict", bool, False, help="malformed entries or mel files are fatal"),
    )

    def _root(self, base: str | None) -> Path:
        return R.root_dir(self.name, self.options["root"], base)

    def _mel_dir(self, root: Path) -> Path | None:
        m = self.options["mel_dir"]
        if not m:
            return None
        if not (root / m).is_dir():
            raise DataError(f"dataset.{self.name}.mel_dir: expected the unpacked "
                            f"arena_mel_*.tar folders at {root / m} (not found; set "
                            "mel_dir = '' for none)")
        return root / m

    def validate(self, suite_dir: str | None = None) -> None:
        """The root, the playlist files, song_meta.json and the mel folder exist."""
        root = self._root(suite_dir)
        for f in self.options["playlists"]:
            R.need_file(self.name, "playlists", root / f, "a playlist file")
        R.need_file(self.name, "root", root / "song_meta.json", "the song metadata")
        self._mel_dir(root)

    def provides(self, suite_dir: str | None = None) -> tuple[str, ...]:
        """interactions, tags (genres), song categories; log-mel features with mel_dir."""
        out = ("interactions", "tags", "song_categories")
        return out + (("audio",) if self.options["mel_dir"] else ())

    def load(self, ctx: LoadContext) -> Dataset:
        """Read playlists, song metadata and mels (see the module docstring)."""
        from recbench import dataio

        o = self.options
        self.validate(ctx.suite_dir)
        root = self._root(ctx.suite_dir)
        problems = dataio.Problems(strict=bool(o["strict"] or ctx.strict))
        pl_ids: list[str] = []
        members: list[list[int]] = []
        for f in o["playlists"]:
            for k, item in _entries(root / f):
                ok = (isinstance(item, dict) and _is_int(item.get("id"))
                      and isinstance(item.get("songs"), list)
                      and all(_is_int(s) for s in item["songs"]))
                if not ok:
                    problems.bad("malformed_entries", f"{root / f}: entry {k + 1}",
                                 "expected an object with an integer id and a list of "
                                 "integer songs")
                    continue
                pl_ids.append(str(item["id"]))
                members.append([int(s) for s in item["songs"]])
                if ctx.limit is not None and len(pl_ids) >= ctx.limit:
                    break
        songs = self._ranked_songs(members)
        meta = self._song_meta(root, problems)
        info = {"loader": self.name, "root": str(root), "playlist_files": o["playlists"],
                "playlists_read": len(pl_ids), "songs_in_playlists": len(songs)}
        want = o["n_songs"] or len(songs)
        keep = np.zeros(len(songs), dtype=bool)
        keep[:want] = True
        mels = None
        mel_dir = self._mel_dir(root)
        if mel_dir is not None:
            paths = [mel_dir / str(s // 1000) / f"{s}.npy" for s in songs]
            keep, shapes = self._check_mels(paths, songs, want, problems, ctx)
            mels = [p for p, k in zip(paths, keep) if k], shapes
        if o["n_songs"]:
            info["n_songs_requested"] = o["n_songs"]
        order = np.argsort(np.array(songs, dtype=np.int64), kind="stable")
        keep_sorted = keep[order]
        song_list = [songs[i] for i in order[keep_sorted]]  # ascending ids
        spos = {s: i for i, s in enumerate(song_list)}
        rows = [u for u, m in enumerate(members) for s in m if s in spos]
        cols = [spos[s] for m in members for s in m if s in spos]
        problems.drop("playlist_entries_of_dropped_songs",
                      sum(len(m) for m in members) - len(rows))
        counts, merged = dataio.coo_to_csr(np.array(rows, np.int64), np.array(cols, np.int64),
                                           np.ones(len(rows)), (len(pl_ids), len(song_list)))
        problems.repair("duplicate_entries", merged)
        counts.data[:] = 1.0
        keep_u = np.diff(counts.indptr) > 0
        problems.drop("users_without_interactions", int((~keep_u).sum()))
        counts = dataio.canonical_csr(counts[keep_u])
        user_ids = np.array(pl_ids, dtype=str)[keep_u]
        song_ids = np.array([str(s) for s in song_list], dtype=str)
        if counts.nnz == 0:
            raise DataError(f"{root / o['playlists'][0]}: no playlist entries left "
                            f"({problems.manifest()['dropped']})")
        genre_names = self._genre_names(root, problems)
        rows_meta = [meta.get(s, {}) for s in song_list]
        tags, tag_names = R.multi_hot(song_ids, [
            (str(s), _genre_label(g, genre_names)) for s, m in zip(song_list, rows_meta)
            for g in m.get("song_gn_gnr_basket") or [] if isinstance(g, str)])
        categories, names = {}, {}
        for key, get in (("genre", lambda m: _first(m.get("song_gn_gnr_basket"))),
                         ("artist", lambda m: _first(m.get("artist_id_basket"))),
                         ("album", lambda m: m.get("album_id"))):
            values = [None if get(m) is None else str(get(m)) for m in rows_meta]
            categories[key], names[f"song:{key}"] = R.categorical(values)
        features, mel_ids = {}, None
        if mels is not None:
            by_id = np.argsort([int(p.stem) for p in mels[0]], kind="stable")
            features, mel_ids = self._stack([mels[0][i] for i in by_id],
                                            [mels[1][i] for i in by_id], ctx, info)
        manifest = {**info, **problems.manifest()}
        if mels is not None:
            manifest["feature_params"] = {"n_mels": o["n_mels"],
                                          "sample_rate": o["mel_sample_rate"],
                                          "hop_length": o["mel_hop"]}
        ds = Dataset(name=o["dataset_name"], counts=counts, user_ids=user_ids,
                     song_ids=song_ids, tags=tags, tag_names=tag_names, manifest=manifest,
                     features=features, song_categories=categories, category_names=names)
        ds.validate_side()
        if mel_ids is not None:
            # mel files stand in for audio: their identities enter the fingerprint
            ds._fingerprint = hash_arrays(ds.fingerprint, mel_ids)
            manifest["fingerprint_audio"] = "identities (path, size, mtime) of the mel files"
        return ds

    def _song_meta(self, root: Path, problems) -> dict[int, dict]:
        out: dict[int, dict] = {}
        path = root / "song_meta.json"
        for k, item in _entries(path):
            if not (isinstance(item, dict) and _is_int(item.get("id"))):
                problems.bad("malformed_entries", f"{path}: entry {k + 1}",
                             "expected an object with an integer id")
                continue
            out[int(item["id"])] = item
        return out

    def _genre_names(self, root: Path, problems) -> dict[str, str]:
        path = root / "genre_gn_all.json"
        if not path.is_file():
            return {}
        doc = _load_json(path)
        if not isinstance(doc, dict):
            raise DataError(f"{path}: expected a JSON object {{genre code: name}}")
        out = {}
        for k, (code, name) in enumerate(doc.items()):
            if not isinstance(name, str):
                problems.bad("malformed_entries", f"{path}: entry {k + 1} ({code})",
                             "expected a genre name (a string)")
                continue
            out[code] = name
        return out

    @staticmethod
    def _ranked_songs(members: list[list[int]]) -> list[int]:
        """The songs of the playlists, by number of playlists (descending), then id."""
        freq: dict[int, int] = {}
        for m in members:
            for s in set(m):
                freq[s] = freq.get(s, 0) + 1
        return sorted(freq, key=lambda s: (-freq[s], s))

    def _check_mels(self, paths: list[Path], songs: list[int], want: int, problems,
                    ctx: LoadContext):
        """(keep mask over the ranked songs, frames of each kept song): the first `want`
        songs whose mel file is a finite (n_mels, frames) array; the others are dropped
        and named."""
        n_mels = self.options["n_mels"]
        keep = np.zeros(len(paths), dtype=bool)
        shapes = []
        for i in ctx.progress(range(len(paths)), total=len(paths), desc="checking mels"):
            if len(shapes) >= want:
                break
            p = paths[i]
            if not p.is_file():
                problems.drop_song(str(songs[i]), "no mel-spectrogram file", str(p))
                problems.drop("songs_without_mel_file", 1)
                continue
            try:
                a = np.load(p, mmap_mode="r", allow_pickle=False)
                good = (a.ndim == 2 and a.shape[0] == n_mels and a.shape[1] > 0
                        and a.dtype.kind in "fiu" and bool(np.isfinite(a).all()))
            except Exception:  # noqa: BLE001 - any unreadable file is dropped and named
                good, a = False, None
            if not good:
                shape = getattr(a, "shape", None)
                problems.drop_song(str(songs[i]), f"not a finite ({n_mels}, frames) array "
                                                  f"(shape {shape})", str(p))
                problems.drop("songs_unreadable_mel", 1)
                continue
            keep[i] = True
            shapes.append(int(a.shape[1]))
        return keep, shapes

    def _stack(self, paths: list[Path], frames_of: list[int], ctx: LoadContext, info: dict):
        from recbench.audio import stat_identity

        o = self.options
        frames = o["mel_frames"] or max(frames_of)
        ids = np.asarray([stat_identity(p, p.parent.parent) for p in paths], dtype=str)
        key = hash_arrays(ids, frames, o["n_mels"])
        os.makedirs(ctx.cache_dir, exist_ok=True)
        out_path = Path(ctx.cache_dir) / f"melon-logmel-{key}.npy"
        lengths = np.minimum(np.asarray(frames_of, dtype=np.int64), frames)
        if not out_path.is_file():
            tmp = out_path.with_name(f"{out_path.stem}.{os.getpid()}.tmp.npy")
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16,
                                            shape=(len(paths), frames, o["n_mels"]))
            for i, p in enumerate(ctx.progress(paths, total=len(paths), desc="mels")):
                a = np.load(p, allow_pickle=False).T[:frames]
                out[i, :len(a)] = a
                out[i, len(a):] = 0
            out.flush()
            del out
            os.replace(tmp, out_path)
        info["logmel"] = {"frames": frames, "mels": o["n_mels"], "file": str(out_path),
                          "padding": "zeros at the end; crop from the start"}
        return ({"logmel": np.load(out_path, mmap_mode="r"), "logmel.lengths": lengths},
                ids)


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a JSON file ({R.one_line(exc, 150)})") from None


def _entries(path: Path):
    doc = _load_json(path)
    if not isinstance(doc, list):
        raise DataError(f"{path}: expected a JSON list of objects")
    return enumerate(doc)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _first(v):
    return v[0] if isinstance(v, list) and v else None


def _genre_label(code: str, names: dict[str, str]) -> str:
    return f"{code} {names[code]}" if code in names else code


@hookimpl
def recbench_register_datasets(register):
    register(MelonDataset)
