"""Writes a tiny Million Song Dataset folder in the published formats (for tests).

Songs S1..S10, users U1..U5; play totals (hand-made so the subset is easy to check):

    S1 100 (listed in sid_mismatches.txt)   S6 50     S7 45     S8 30 (two lines of 15)
    S2  90    S3 80 (corrupt clip)  S4 70 (two tracks)  S5 60 (no clip)   S9 20   S10 20

    U1: S1 50, S2 40, S3 30, S4 20         U4: S7 40, S8 15, S8 15, S9 20
    U2: S1 50, S2 50, S6 10                U5: S10 20, S8 0 (dropped: zero count)
    U3: S3 50, S4 50, S5 60, S6 40, S7 5
plus two malformed triplet lines (one field; a count "x").

Clips (previews): S1, S2 (A/B/C/TR….clip.mp3, MP3), S3 (corrupt bytes), S4 (its second
track, flat WAV), S6 (FLAC in A/B/C), S7 (named by song id, MP3), S8, S9, S10 (WAV).
Last.fm tags by track: T2 rock 100, pop 50; T4a rock 80; T4b indie 100, rock 20;
T6 pop 100, jazz 10; T7 rock 0; T3 rock 100; T1 pop 100.
Log-mel .npy (8 mels): S2 (by track, 12 frames), S4 (by song, 12), S6 (10), S7 (12),
S3 (corrupt bytes), S1 (12).

7digital layout (`write_audio_7digital`): the same clips named `<d1>/<d2>/<id>.clip.mp3`
(or flat `<id>.clip.mp3`) by the 7digital id of a track (SEVEN), with the track -> id
mapping in `track_metadata.db` (the MSD's SQLite table `songs`) or a two-column id map.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np

USERS = {f"U{k}": f"{k:02d}" + "ab5f1c0e9d8a7b6c5d4e3f2a1b0c9d8e7f6a5b" for k in range(1, 6)}
SONGS = {f"S{k}": f"SOAAAAB12A8C13{k:04d}" for k in range(1, 11)}
TRACKS = {f"T{k}": f"TRA{chr(64 + k)}C{k:02d}128F93{k:05d}" for k in range(1, 11)}
TRACKS["T4b"] = "TRZZB99128F9300044"
TRACK_SONG = {TRACKS[f"T{k}"]: SONGS[f"S{k}"] for k in range(1, 11)}
TRACK_SONG[TRACKS["T4b"]] = SONGS["S4"]
# 7digital preview ids of the tracks (T4 has none: 0 in track_metadata.db, as in the MSD)
SEVEN = {key: str(8947470 + 1111 * i) for i, key in enumerate(TRACKS) if key != "T4"}

PLAYS = [  # (user, song, count) in file order (grouped by user, like the real file)
    ("U1", "S1", "50"), ("U1", "S2", "40"), ("U1", "S3", "30"), ("U1", "S4", "20"),
    ("U2", "S1", "50"), ("U2", "S2", "50"), ("U2", "S6", "10"),
    ("U3", "S3", "50"), ("U3", "S4", "50"), ("U3", "S5", "60"), ("U3", "S6", "40"),
    ("U3", "S7", "5"),
    ("U4", "S7", "40"), ("U4", "S8", "15"), ("U4", "S8", "15"), ("U4", "S9", "20"),
    ("U5", "S10", "20"), ("U5", "S8", "0"),
]

TAGS = {  # track -> [(tag, weight)]
    "T2": [("rock", 100), ("pop", 50)], "T4": [("rock", 80)],
    "T4b": [("indie", 100), ("rock", 20)], "T6": [("pop", 100), ("jazz", 10)],
    "T7": [("rock", 0)], "T3": [("rock", 100)], "T1": [("pop", 100)],
}


def _sine(seconds: float, sr: int, freq: float, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def layout(folder: Path, track: str, suffix: str) -> Path:
    """folder/A/B/C/TRABC….suffix (the MSD preview and Last.fm layout)."""
    p = folder / track[2] / track[3] / track[4] / f"{track}{suffix}"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def write_triplets(root: Path, lines: list[str] | None = None) -> Path:
    """train_triplets.txt with PLAYS plus two malformed lines (after U2's rows)."""
    if lines is None:
        lines = [f"{USERS[u]}\t{SONGS[s]}\t{c}" for u, s, c in PLAYS]
        lines.insert(7, "this line has one field")
        lines.insert(8, f"{USERS['U2']}\t{SONGS['S9']}\tx")
    p = root / "train_triplets.txt"
    p.write_text("\n".join(lines) + "\n")
    return p


def write_tracks(root: Path) -> None:
    """unique_tracks.txt (track<SEP>song<SEP>artist<SEP>title) and sid_mismatches.txt."""
    rows = [f"{t}<SEP>{s}<SEP>Artist {s[-2:]}<SEP>Title <with> odd <SEP chars"
            for t, s in TRACK_SONG.items()]
    (root / "unique_tracks.txt").write_text("\n".join(rows) + "\n")
    (root / "sid_mismatches.txt").write_text(
        f"ERROR: <{SONGS['S1']} {TRACKS['T1']}> Some Artist  -  Some Song  !=  "
        "Other Artist  -  Other Song\n"
        f"ERROR: <SOZZZZZ12A8C130000 TRZZZZZ128F9300000> A  -  B  !=  C  -  D\n")


def write_tags_db(path: Path) -> None:
    """lastfm_tags.db: tids(tid), tags(tag), tid_tag(tid, tag, val) with rowid links."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE tids (tid TEXT)")
    con.execute("CREATE TABLE tags (tag TEXT)")
    con.execute("CREATE TABLE tid_tag (tid INT, tag INT, val FLOAT)")
    tag_rowid: dict[str, int] = {}
    for name in ["unused", "rock", "pop", "indie", "jazz"]:
        tag_rowid[name] = con.execute("INSERT INTO tags VALUES (?)", (name,)).lastrowid
    con.execute("INSERT INTO tids VALUES ('TRNOTINTHESUBSET00')")
    for key, pairs in TAGS.items():
        rid = con.execute("INSERT INTO tids VALUES (?)", (TRACKS[key],)).lastrowid
        for tag, val in pairs:
            con.execute("INSERT INTO tid_tag VALUES (?, ?, ?)", (rid, tag_rowid[tag], val))
    con.commit()
    con.close()


def write_tags_json(root: Path) -> None:
    """lastfm_train / lastfm_test folders of A/B/C/TR….json (T2, T4, T4b, T6 in train)."""
    for key, pairs in TAGS.items():
        split = "lastfm_train" if key in ("T2", "T4", "T4b", "T6") else "lastfm_test"
        doc = {"artist": "x", "title": "y", "track_id": TRACKS[key], "similars": [],
               "timestamp": "2011-08-15 18:38:32.893435",
               "tags": [[tag, str(val)] for tag, val in pairs]}
        layout(root / split, TRACKS[key], ".json").write_text(json.dumps(doc))


def write_audio(folder: Path, sr: int = 22050, seconds: float = 0.5) -> dict[str, Path]:
    """Preview clips (see the module docstring); returns {song key: path}."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    out["S1"] = layout(folder, TRACKS["T1"], ".clip.mp3")
    sf.write(out["S1"], _sine(seconds, 44100, 220), 44100, format="MP3")
    out["S2"] = layout(folder, TRACKS["T2"], ".clip.mp3")
    sf.write(out["S2"], _sine(seconds, 44100, 440), 44100, format="MP3")
    out["S3"] = layout(folder, TRACKS["T3"], ".clip.mp3")
    out["S3"].write_bytes(np.random.default_rng(3).bytes(4000))
    out["S4"] = folder / f"{TRACKS['T4b']}.wav"
    sf.write(out["S4"], _sine(seconds, sr, 330), sr, subtype="PCM_16")
    out["S6"] = layout(folder, TRACKS["T6"], ".flac")
    sf.write(out["S6"], _sine(seconds, 16000, 550, channels=1), 16000)
    out["S7"] = folder / f"{SONGS['S7']}.mp3"
    sf.write(out["S7"], _sine(seconds, 44100, 660), 44100, format="MP3")
    for k in (8, 9, 10):
        out[f"S{k}"] = folder / f"{TRACKS[f'T{k}']}.wav"
        sf.write(out[f"S{k}"], _sine(seconds, sr, 100.0 * k, channels=1), sr)
    (folder / "README.txt").write_text("not audio")
    return out


def seven_path(folder: Path, seven_id: str, nested: bool = True) -> Path:
    """folder/<d1>/<d2>/<id>.clip.mp3 (the previews' layout) or folder/<id>.clip.mp3."""
    p = folder / seven_id[0] / seven_id[1] / f"{seven_id}.clip.mp3" if nested else \
        folder / f"{seven_id}.clip.mp3"
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def write_track_metadata(path: Path, seven: dict[str, str] | None = None) -> Path:
    """track_metadata.db: table songs in the schema of the MSD's own file
    (tbertinmahieux/MSongsDB Tasks_Demos/SQLite/create_track_metadata_db.py)."""
    seven = SEVEN if seven is None else seven
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE songs (track_id text PRIMARY KEY, title text, song_id text, "
                "release text, artist_id text, artist_mbid text, artist_name text, "
                "duration real, artist_familiarity real, artist_hotttnesss real, year int, "
                "track_7digitalid int, shs_perf int, shs_work int)")
    key_of = {v: k for k, v in TRACKS.items()}
    for t, s in TRACK_SONG.items():
        con.execute("INSERT INTO songs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (t, "Title\x1e<SEP", s, "Release", "ARXXXX", "", "Artist", 200.0, 0.5,
                     0.4, 2000, int(seven.get(key_of[t], 0)), -1, 0))
    con.commit()
    con.close()
    return path


def write_audio_7digital(folder: Path, nested: bool = True, sr: int = 22050,
                         seconds: float = 0.5) -> dict[str, Path]:
    """The clips of `write_audio`, named by 7digital id; {song key: path}. S4's clip is
    under its second track T4b (T4 has no 7digital id); S7's under T7's id."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for k, freq in ((1, 220), (2, 440), (7, 660)):
        out[f"S{k}"] = seven_path(folder, SEVEN[f"T{k}"], nested)
        sf.write(out[f"S{k}"], _sine(seconds, 44100, freq), 44100, format="MP3")
    out["S3"] = seven_path(folder, SEVEN["T3"], nested)
    out["S3"].write_bytes(np.random.default_rng(3).bytes(4000))
    for k, key in ((4, "T4b"), (6, "T6"), (8, "T8"), (9, "T9"), (10, "T10")):
        out[f"S{k}"] = seven_path(folder, SEVEN[key], nested)
        sf.write(out[f"S{k}"], _sine(seconds, 44100, 100.0 * k), 44100, format="MP3")
    return out


def write_logmel(folder: Path, n_mels: int = 8) -> dict[str, np.ndarray]:
    """Log-mel .npy files (frames, mels); returns {song key: array}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal((f, n_mels)).astype(np.float32)
              for k, f in (("S1", 12), ("S2", 12), ("S4", 12), ("S6", 10), ("S7", 12))}
    np.save(folder / f"{TRACKS['T1']}.npy", arrays["S1"])
    np.save(folder / f"{TRACKS['T2']}.npy", arrays["S2"])
    np.save(folder / f"{SONGS['S4']}.npy", arrays["S4"])
    np.save(layout(folder, TRACKS["T6"], ".npy"), arrays["S6"])
    np.save(folder / f"{TRACKS['T7']}.npy", arrays["S7"])
    (folder / f"{TRACKS['T3']}.npy").write_bytes(b"\x93NUMPY garbage")
    return arrays


def write_msd(root: Path, *, tags: str | None = "db", audio: bool = True,
              logmel: bool = False) -> Path:
    """The whole fixture under `root`: tags "db", "json", "both" or None."""
    root.mkdir(parents=True, exist_ok=True)
    write_triplets(root)
    write_tracks(root)
    if tags in ("db", "both"):
        write_tags_db(root / "lastfm_tags.db")
    if tags in ("json", "both"):
        write_tags_json(root)
    if audio:
        write_audio(root / "previews")
    if logmel:
        write_logmel(root / "logmel")
    return root


def write_big_triplets(path: Path, n_lines: int, seed: int = 0) -> Path:
    """A Taste-Profile-shaped file of `n_lines` lines (for timing the reader)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_users, n_songs = max(n_lines // 47, 10), max(n_lines // 10, 10)
    users = np.char.add(np.char.zfill(np.arange(n_users).astype(str), 8),
                        "ab5f1c0e9d8a7b6c5d4e3f2a1b0c9d8e")
    songs = np.char.add("SOAAAAB12A8C", np.char.zfill(np.arange(n_songs).astype(str), 6))
    per_user = rng.multinomial(n_lines, np.ones(n_users) / n_users)
    u = np.repeat(np.arange(n_users), per_user)
    p = 1.0 / np.arange(1, n_songs + 1) ** 0.8
    s = rng.choice(n_songs, size=n_lines, p=p / p.sum())
    c = rng.geometric(0.4, size=n_lines)
    pd.DataFrame({"u": users[u], "s": songs[s], "c": c}).to_csv(
        path, sep="\t", header=False, index=False)
    return path


__all__ = [
    "SEVEN",
    "SONGS",
    "TRACKS",
    "USERS",
    "layout",
    "seven_path",
    "write_audio",
    "write_audio_7digital",
    "write_big_triplets",
    "write_logmel",
    "write_msd",
    "write_tags_db",
    "write_tags_json",
    "write_track_metadata",
    "write_tracks",
    "write_triplets",
]
