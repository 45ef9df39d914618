"""The `jamendo` dataset: MTG-Jamendo (audio and tags, for auto-tagging), read from a
local copy; nothing is downloaded.

Published layout (Bogdanov et al., ICML 2019 ML4MD workshop;
https://github.com/MTG/mtg-jamendo-dataset):

    <root>/data/autotagging_moodtheme.tsv   (or raw_30s.tsv, autotagging.tsv, ...)
        tab-separated, header TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS; each row
        track_0000948, artist_000087, album_000149, 48/948.mp3, 212.7, then ONE FIELD
        PER TAG (a variable number), each '<category>---<tag>' (genre, instrument,
        mood/theme)
    <root>/data/splits/split-<k>/<subset>-{train,validation,test}.tsv   same format
    <audio_dir>/<PATH>                     the clips as unpacked by scripts/download/
                                           download.py (e.g. 48/948.mp3)

Sources: MTG/mtg-jamendo-dataset README.md (files, splits, download) and
scripts/commons.py `read_file` (csv.reader with delimiter '\\t', header skipped, row[0:5]
ids, path and duration, row[5:] the tags split on '---').

What it becomes. The songs are the tracks (TRACK_ID order as sorted ids). There are no
listening data: the dataset serves tagging tasks. Because a suite run needs users,
`users = "artists"` (the default) makes each artist a user who "played" each of their
tracks once (authorship, not taste: a recommendation score on it measures artist-track
retrieval; the manifest says `users_are`); `users = "none"` leaves `counts` with no
rows (0 x songs), for use outside the runner, which refuses a dataset without users.
Also: `tags` (songs x tags, names '<category>---<tag>', `categories` keeps some),
`audio` (the clips; songs without one, or whose clip does not decode, are dropped and
named), song categories "artist" and "album", and, with `official_split = "split-<k>"`,
the song category "official_split" (0 train, 1 validation, 2 test, -1 none).

Bad input: a row with fewer than five fields, an empty TRACK_ID or PATH, a DURATION that
is not a number or a tag without '---' is skipped, counted under
dropped.malformed_lines and named file:line (fatal under strict); so are lines that are
not UTF-8. Missing files: one line naming the file expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset
from recbench.errors import DataError
from recbench.params import Param
from recbench_builtin.datasets import _realdata as R

SPLIT_PARTS = ("train", "validation", "test")


class JamendoDataset(DatasetLoader):
    """MTG-Jamendo: tracks with genre / instrument / mood-theme tags and audio (tagging)."""

    name = "jamendo"
    description = "MTG-Jamendo (local copy): tracks, tags and clips for auto-tagging; no users"
    params = (
        Param("root", str, required=True,
              help="the dataset folder holding data/ (relative: to the suite file)"),
        Param("metadata", str, "data/autotagging_moodtheme.tsv",
              help="the tracks file in root (e.g. data/raw_30s.tsv)"),
        Param("categories", list, [], item_type=str,
              help="tag categories kept (genre, instrument, mood/theme); [] all"),
        Param("official_split", str, None,
              help="read data/splits/<this>/<subset>-{train,validation,test}.tsv into the "
                   "song category 'official_split' (e.g. split-0)"),
        Param("audio_dir", str, None,
              help="folder the PATH column is relative to (in root unless absolute); "
                   "unset: root/audio if it exists; '' for no audio"),
        Param("sample_rate", int, 22050, min=1, help="rate (Hz) clips are decoded at"),
        Param("check_audio", bool, True,
              help="decode a little of every clip at load time; drop songs that fail"),
        Param("users", str, "artists", choices=("artists", "none"),
              help="artists: each artist a user with their tracks (authorship, not "
                   "listening); none: no users (the runner needs some)"),
        Param("dataset_name", str, "mtg-jamendo", help="dataset name in results"),
        Param("strict", bool, False, help="malformed lines or unreadable clips are fatal"),
    )

    def _root(self, base: str | None) -> Path:
        return R.root_dir(self.name, self.options["root"], base)

    def _audio_dir(self, root: Path) -> Path | None:
        a = self.options["audio_dir"]
        if a == "":
            return None
        if a is None:
            return root / "audio" if (root / "audio").is_dir() else None
        p = R.resolve_path(a, root)
        if not p.is_dir():
            raise DataError(f"dataset.{self.name}.audio_dir: expected the unpacked clips at "
                            f"{p} (not found; set audio_dir = '' for no audio)")
        return p

    def _split_files(self, root: Path) -> list[Path]:
        k = self.options["official_split"]
        if not k:
            return []
        subset = Path(self.options["metadata"]).name.removesuffix(".tsv")
        return [R.need_file(self.name, "official_split",
                            root / "data" / "splits" / k / f"{subset}-{part}.tsv",
                            f"the {part} list of {k}") for part in SPLIT_PARTS]

    def validate(self, suite_dir: str | None = None) -> None:
        """The root, the tracks file, a named audio folder and the split files exist."""
        root = self._root(suite_dir)
        R.need_file(self.name, "metadata", root / self.options["metadata"],
                    "the tracks file (TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION, TAGS)")
        self._audio_dir(root)
        self._split_files(root)

    def provides(self, suite_dir: str | None = None) -> tuple[str, ...]:
        """tags and song categories; audio when a clips folder is set or present. Not
        "interactions": the artist-track counts are authorship, not listening."""
        out = ("tags", "song_categories")
        try:
            audio = self._audio_dir(self._root(suite_dir)) is not None
        except DataError:
            audio = bool(self.options["audio_dir"])
        return out + (("audio",) if audio else ())

    def load(self, ctx: LoadContext) -> Dataset:
        """Read the tracks, tags, official split and clips (see the module docstring)."""
        from recbench import dataio
        from recbench.audio import FileAudioSource

        o = self.options
        self.validate(ctx.suite_dir)
        root = self._root(ctx.suite_dir)
        problems = dataio.Problems(strict=bool(o["strict"] or ctx.strict))
        path = root / o["metadata"]
        tracks = self._read(path, problems, ctx.limit)
        if not tracks:
            raise DataError(f"{path}: no valid track rows ({problems.manifest()['dropped']})")
        song_ids = np.array(sorted(tracks), dtype=str)
        info = {"loader": self.name, "root": str(root), "metadata_file": o["metadata"],
                "tracks_read": len(tracks)}
        audio_dir = self._audio_dir(root)
        keep = np.ones(len(song_ids), dtype=bool)
        if audio_dir is not None:
            paths = [str(audio_dir / tracks[s]["path"]) for s in song_ids.tolist()]
            paths = [p if Path(p).is_file() else None for p in paths]
            keep = R.check_clips(paths, song_ids, problems, o["check_audio"], ctx.progress,
                                 str(audio_dir))
            song_ids = song_ids[keep]
            if len(song_ids) == 0:
                raise DataError(f"{audio_dir}: no track has a readable clip "
                                f"({problems.manifest()['dropped']})")
            info["audio_dir"] = str(audio_dir)
        rows = [tracks[s] for s in song_ids.tolist()]
        tags, tag_names = R.multi_hot(song_ids, [(s, t) for s, r in zip(song_ids.tolist(), rows)
                                                 for t in r["tags"]])
        categories, names = {}, {}
        for key in ("artist", "album"):
            categories[key], names[f"song:{key}"] = R.categorical([r[key] for r in rows])
        for split_path, code in zip(self._split_files(root), range(len(SPLIT_PARTS))):
            part = self._read(split_path, problems, None)
            codes = categories.setdefault("official_split", np.full(len(song_ids), -1))
            codes[np.isin(song_ids, list(part))] = code
            names["song:official_split"] = list(SPLIT_PARTS)
        if "official_split" in categories:
            info["official_split"] = o["official_split"]
        audio = None
        if audio_dir is not None:
            audio = FileAudioSource([audio_dir / r["path"] for r in rows], o["sample_rate"],
                                    root=audio_dir)
        if o["users"] == "artists":
            codes = categories["artist"]
            user_ids = np.array(names["song:artist"], dtype=str)
            counts, _ = dataio.coo_to_csr(codes, np.arange(len(song_ids)),
                                          np.ones(len(song_ids)), (len(user_ids),
                                                                   len(song_ids)))
            info["users_are"] = "artists (a track counts once for its artist: authorship)"
        else:
            user_ids = np.array([], dtype=str)
            counts = dataio.canonical_csr(sp.csr_matrix((0, len(song_ids)), dtype=np.float32))
            info["users_are"] = "none"
        ds = Dataset(name=o["dataset_name"], counts=counts,
                     user_ids=user_ids, song_ids=song_ids, audio=audio,
                     tags=tags, tag_names=tag_names,
                     manifest={**info, **problems.manifest()}, song_categories=categories,
                     category_names=names)
        ds.validate_side()
        return ds

    def _read(self, path: Path, problems, limit: int | None) -> dict[str, dict]:
        """{track id: {artist, album, path, duration, tags}} of a tracks / split file."""
        keep_cats = set(self.options["categories"])
        out: dict[str, dict] = {}
        first = True
        for no, text in R.lines(path, problems, limit=None if limit is None else limit + 1):
            f = text.split("\t")
            if first:
                first = False
                if f[0].strip().upper() == "TRACK_ID":
                    continue
            reason = _problem(f)
            if reason:
                problems.bad("malformed_lines", f"{path}:{no}", reason)
                continue
            tags = [t.strip() for t in f[5:] if t.strip()]
            if keep_cats:
                tags = [t for t in tags if t.split("---", 1)[0] in keep_cats]
            out[f[0].strip()] = {"artist": f[1].strip(), "album": f[2].strip(),
                                 "path": f[3].strip(), "duration": float(f[4]), "tags": tags}
        return out


def _problem(f: list[str]) -> str | None:
    """Why a tracks row is malformed, or None."""
    if len(f) < 5:
        return f"expected at least 5 tab-separated fields, got {len(f)}"
    if not f[0].strip() or not f[3].strip():
        return "empty TRACK_ID or PATH"
    try:
        if not np.isfinite(float(f[4])):
            raise ValueError
    except ValueError:
        return f"DURATION {f[4][:40]!r} is not a number"
    bad = next((t for t in f[5:] if t.strip() and "---" not in t), None)
    if bad is not None:
        return f"tag {bad[:40]!r} is not '<category>---<tag>'"
    return None


@hookimpl
def recbench_register_datasets(register):
    register(JamendoDataset)
