"""Audio previews (or precomputed log-mel files) of the selected songs: naming and choice.

Namings (`audio_naming`), each flat or in any nesting of folders:

- ``track``: `TRxxxxxxxxxxxxxxxx.clip.mp3` (or `.mp3`/`.wav`/`.flac`, `A/B/C/TR....`);
- ``song``: `SOxxxxxxxxxxxxxxxx.mp3`;
- ``7digital``: `<7digitalid>.clip.mp3`, usually in `<d1>/<d2>/` folders (the previews
  most MSD owners have, e.g. `8/9/8947470.clip.mp3`); a song's tracks are mapped to
  7digital ids through `track_metadata.db` (table songs, column track_7digitalid) or a
  two-column `id_map` file;
- ``auto`` (default): every file named like one of the above is indexed; for each song
  its tracks are tried (track id, then 7digital id), then the song id.

When the folder yields no usable clip for the selected songs, the build stops with one
line saying which namings were tried and what the folder holds.
"""

from __future__ import annotations

import os

import numpy as np

from recbench.errors import DataError

NAMINGS = ("auto", "track", "song", "7digital")


def _name_kind(key: str) -> str:
    if key.startswith("TR") and key[2:].isalnum():
        return "track"
    if key.startswith("SO") and key[2:].isalnum():
        return "song"
    if key.isdigit():
        return "7digital"
    return "other"


class AudioSteps:
    """The song-choice and audio steps of the build (a mixin of the builder)."""

    def clip_index(self) -> tuple[dict[str, str], str] | None:
        """{track, song or 7digital id: file} of the audio (or log-mel) folder, and the
        kind ("audio" or "logmel"); None without such a folder."""
        o = self.o
        if o["audio_dir"]:
            folder, exts, kind = self.path(o["audio_dir"]), o["audio_ext"], "audio"
        elif o["logmel_dir"]:
            folder, exts, kind = self.path(o["logmel_dir"]), ["npy"], "logmel"
        else:
            return None
        naming = o["audio_naming"]
        wanted = {"track", "song", "7digital"} if naming == "auto" else {naming}
        rank = {e.lower().lstrip("."): k for k, e in enumerate(exts)}
        index: dict[str, str] = {}
        best: dict[str, int] = {}
        seen: dict[str, list] = {}  # naming -> [count, example name]
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for fn in sorted(filenames):
                ext = fn.rsplit(".", 1)[-1].lower()
                key = fn.split(".", 1)[0]  # TRxxx.clip.mp3 -> TRxxx; 8947470.clip.mp3
                nk = _name_kind(key) if ext in rank else "other"
                entry = seen.setdefault(nk, [0, os.path.relpath(os.path.join(dirpath, fn),
                                                                folder)])
                entry[0] += 1
                if nk not in wanted:
                    continue
                if key not in best or rank[ext] < best[key]:
                    best[key] = rank[ext]
                    index[key] = os.path.join(dirpath, fn)
        self.info[f"{kind}_files_indexed"] = len(index)
        self.info[f"{kind}_naming"] = naming
        self.clip_root = folder
        self.files_seen = seen
        self.seven = None
        if "7digital" in wanted and seen.get("7digital", [0])[0]:
            self.seven = self.loader._seven_digital(self.root, self.problems)
            if self.seven is not None:
                self.info[f"{kind}_7digital_ids_from"] = self.seven.source
        return index, kind

    def _candidates(self, sid: str, song_tracks: dict, seven: dict) -> list[str]:
        """Index keys to try for a song: its tracks (track id, 7digital id), the song id."""
        out = []
        for t in song_tracks.get(sid, []):
            out.append(t)
            if t in seven:
                out.append(seven[t])
        out.append(sid)
        return out

    def choose_songs(self, ranked, tracks) -> tuple[list[str], list[str] | None]:
        """The songs kept, in rank order, and their clips (None without audio).

        clean: the first `n_songs` ranked songs with a clip that decodes (walking down the
        ranking); authors: the top `n_songs`, less those without a usable clip (no
        refill, as the authors' code intersects its 10,000 songs with the converted
        previews)."""
        n = self.o["n_songs"]
        found = self.clip_index()
        if found is None:
            chosen = ranked.slice(0, n).to_pylist()
            self._note_short(len(chosen), len(ranked))
            return chosen, None
        index, kind = found
        refill = self.o["subset"] != "authors"
        pool = ranked if refill else ranked.slice(0, n)
        chosen: list[str] = []
        clips: list[str] = []
        shapes: list[tuple[int, int]] = []
        no_clip = examined = unreadable = 0
        pos = 0
        bar = iter(self.ctx.progress(range(n), total=n, desc=f"checking {kind}"))
        while len(chosen) < n and pos < len(pool):
            want = n - len(chosen)
            block = pool.slice(pos, max(int(want * 1.2), 256)).to_pylist()
            pos += len(block)
            song_tracks = _tracks_of(tracks, block)
            seven = {}
            if self.seven is not None:
                seven = self.seven.lookup([t for s in block for t in song_tracks.get(s, [])])
            for sid in block:
                if len(chosen) >= n:
                    break
                examined += 1
                path = next((index[c] for c in self._candidates(sid, song_tracks, seven)
                             if c in index), None)
                if path is None:
                    no_clip += 1
                    continue
                try:
                    shape = self.check_clip(path, kind)
                except DataError as exc:
                    self.problems.drop_song(sid, str(exc).split(": ", 1)[-1], path)
                    self.problems.drop(f"songs_unreadable_{kind}", 1)
                    unreadable += 1
                    continue
                chosen.append(sid)
                clips.append(path)
                shapes.append(shape)
                next(bar, None)
        self.info["songs_examined"] = examined
        self.problems.drop(f"songs_without_{kind}", no_clip)
        self.info[f"songs_without_{kind}"] = no_clip
        if not chosen:
            raise DataError(self._no_clip_message(kind, examined, unreadable))
        self.clip_shapes = shapes
        self._note_short(len(chosen), len(ranked) if refill else len(pool))
        return chosen, clips

    def _no_clip_message(self, kind: str, examined: int, unreadable: int) -> str:
        """One line: what was tried, what the folder holds, what to set."""
        naming = self.o["audio_naming"]
        seven_how = (f"7digital id via {self.seven.source}" if self.seven is not None
                     else "7digital id (no track_metadata.db or id_map to map tracks)")
        tried = {"track": "track id (TRxxx.clip.mp3)", "song": "song id (SOxxx.mp3)",
                 "7digital": seven_how}
        names = list(tried) if naming == "auto" else [naming]
        seen = ", ".join(f"{c} files named like {ex}" for _, (c, ex) in
                         sorted(self.files_seen.items(), key=lambda kv: -kv[1][0])) or \
            "no files"
        what = "found" if not unreadable else f"found ({unreadable} found but unreadable)"
        hint = ""
        n7 = self.files_seen.get("7digital", [0])[0]
        if n7 and naming not in ("auto", "7digital"):
            hint = " — set audio_naming = \"auto\" or \"7digital\""
        elif n7 and self.seven is None:
            hint = (" — set track_metadata = \"track_metadata.db\" (the MSD's SQLite "
                    "metadata) or id_map = a track/7digital id file")
        return (f"dataset.msd.{'audio_dir' if kind == 'audio' else 'logmel_dir'}: "
                f"{self.clip_root}: 0 of {examined} selected songs {what}; tried "
                f"{', '.join(tried[k] for k in names)}; the folder holds {seen}{hint}")

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

    # -- audio
    def audio_and_features(self, song_ids: np.ndarray, clips: list[str] | None):
        """(audio source or None, features {name: array}) of the chosen songs."""
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

