"""The `msd` dataset on tiny fixtures in the published formats (see tests/fixtures_msd.py).

Expected subsets are computed by hand from the fixture's play table:
totals S1 100 (mismatch), S2 90, S3 80 (corrupt clip), S4 70, S5 60 (no clip), S6 50,
S7 45, S8 30, S9 20, S10 20.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_msd as F
from recbench_builtin.datasets.msd import MSDDataset

from recbench.components import LoadContext
from recbench.errors import DataError

S, U, T = F.SONGS, F.USERS, F.TRACKS


def load(root: Path, cache_dir: Path | None = None, ctx_limit=None, **opts):
    ctx = LoadContext(cache_dir=str(cache_dir or root.parent / "cache"), limit=ctx_limit)
    return MSDDataset(root=str(root), **opts).load(ctx)


@pytest.fixture(scope="module")
def msd(tmp_path_factory) -> Path:
    return F.write_msd(tmp_path_factory.mktemp("m") / "msd", tags="both", logmel=True)


def songs(*keys):
    return [S[k] for k in keys]


def users(*keys):
    return [U[k] for k in keys]


def test_subset_without_audio(msd, tmp_path):
    ds = load(msd, tmp_path, n_songs=4, n_users=2, tags=[])
    assert list(ds.song_ids) == songs("S2", "S3", "S4", "S5")  # S1 is a known mismatch
    assert list(ds.user_ids) == users("U1", "U3")  # 3 songs each: tie broken by id
    np.testing.assert_array_equal(ds.counts.toarray(), [[40, 30, 20, 0], [0, 50, 50, 60]])
    assert ds.counts.dtype == np.float32 and ds.audio is None and ds.tags is None
    assert ds.synthetic is False and ds.name == "msd"
    m = ds.manifest
    assert m["triplet_lines_read"] == 19 and m["songs_in_triplets"] == 10
    assert m["dropped"]["mismatched_songs"] == 1 and m["mismatched_songs_listed"] == 2
    assert m["dropped"]["malformed_lines"] == 2
    assert m["dropped"]["non_positive_counts"] == 1
    trip = str(msd / "train_triplets.txt")
    assert m["examples"]["malformed_lines"] == [
        f"{trip}:8: expected 3 tab-separated fields, got 1: 'this line has one field'",
        f"{trip}:9: play count 'x' is not a non-negative integer"]


def test_ranking_options(msd, tmp_path):
    ds = load(msd, tmp_path, n_songs=4, n_users=2, tags=[], user_rank="plays")
    assert list(ds.user_ids) == users("U3", "U1")  # 160 plays against 90
    # listeners: S2, S3, S4, S6, S7, S8 have 2 each (S5 1): ties by song id
    ds = load(msd, tmp_path, n_songs=4, n_users=5, tags=[], song_rank="listeners")
    assert list(ds.song_ids) == songs("S2", "S3", "S4", "S6")


def test_duplicate_rows_are_summed(msd, tmp_path):
    ds = load(msd, tmp_path, n_songs=8, n_users=10, tags=[])
    assert list(ds.song_ids) == songs("S2", "S3", "S4", "S5", "S6", "S7", "S8", "S9")
    assert ds.counts[list(ds.user_ids).index(U["U4"]), 6] == 30  # two lines of 15
    assert ds.manifest["repaired"]["duplicate_rows"] == 1
    # U5 only played S10 (not selected) and S8 with count 0: not a user of the subset
    assert U["U5"] not in set(ds.user_ids) and len(ds.user_ids) == 4


def test_subset_with_audio_drops_corrupt_and_missing_clips(msd, tmp_path):
    ds = load(msd, tmp_path, n_songs=4, n_users=2, audio_dir="previews", tags=["lastfm_tags.db"])
    # S3's clip is corrupt, S5 has none: the next songs in popularity order fill in
    assert list(ds.song_ids) == songs("S2", "S4", "S6", "S7")
    assert list(ds.user_ids) == users("U3", "U1")  # U3: S4, S6, S7; U1: S2, S4 (ties: U2)
    np.testing.assert_array_equal(ds.counts.toarray(), [[0, 50, 40, 5], [40, 20, 0, 0]])
    m = ds.manifest
    assert m["dropped"]["songs_unreadable_audio"] == 1
    assert m["dropped"]["songs_without_audio"] == 1 and m["songs_examined"] == 6
    [bad] = m["dropped_songs"]
    assert bad["song"] == S["S3"] and "cannot decode audio" in bad["reason"]
    assert bad["file"] == str(F.layout(msd / "previews", T["T3"], ".clip.mp3"))

    prev = msd / "previews"
    assert ds.audio.paths == [str(F.layout(prev, T["T2"], ".clip.mp3")),
                              str(prev / f"{T['T4b']}.wav"),  # the song's second track
                              str(F.layout(prev, T["T6"], ".flac")),
                              str(prev / f"{S['S7']}.mp3")]  # named by song id
    assert ds.audio.sample_rate == 22050
    for i in range(4):
        w = ds.audio.waveform(i)
        assert w.dtype == np.float32 and w.ndim == 1
        assert abs(len(w) - 11025) < 2500  # 0.5 s (MP3 adds encoder padding)
    ref, _ = sf.read(prev / f"{T['T4b']}.wav", dtype="float32")
    np.testing.assert_array_equal(ds.audio.waveform(1), ref.mean(axis=1, dtype=np.float32))
    st = os.stat(prev / f"{T['T4b']}.wav")
    assert ds.audio.identity(1) == f"{T['T4b']}.wav:{st.st_size}:{st.st_mtime_ns}"

    # tags: union over a song's tracks (S4: T4 rock 80, T4b indie 100 + rock 20)
    assert ds.tag_names == ["rock", "pop", "indie", "jazz"]
    np.testing.assert_array_equal(ds.tags.toarray(), [[1, 1, 0, 0], [1, 0, 1, 0],
                                                      [0, 1, 0, 1], [1, 0, 0, 0]])


def test_tags_from_json_folders_equal_the_database(msd, tmp_path):
    kw = {"n_songs": 4, "n_users": 2, "audio_dir": "previews"}
    a = load(msd, tmp_path, tags=["lastfm_tags.db"], **kw)
    b = load(msd, tmp_path, tags=["lastfm_train", "lastfm_test"], **kw)
    assert a.tag_names == b.tag_names and (a.tags != b.tags).nnz == 0
    assert a.fingerprint == b.fingerprint


def test_tag_threshold_and_count(msd, tmp_path):
    ds = load(msd, tmp_path, n_songs=4, n_users=2, audio_dir="previews",
              tags=["lastfm_tags.db"], tag_min_val=50.0, n_tags=3)
    # >= 50: pop on S2 (50) and S6 (100); rock on S2 (100), S4 (80); indie on S4; jazz 10
    # and S7's rock 0 fall below. pop and rock tie at 2 songs: by name.
    assert ds.tag_names == ["pop", "rock", "indie"]
    np.testing.assert_array_equal(ds.tags.toarray(), [[1, 1, 0], [0, 1, 1], [1, 0, 0],
                                                      [0, 0, 0]])


def test_precomputed_logmel(msd, tmp_path):
    arrays = F.write_logmel(tmp_path / "lm_ref")  # same seed: the fixture's arrays
    ds = load(msd, tmp_path, n_songs=4, n_users=2, logmel_dir="logmel", tags=[])
    assert list(ds.song_ids) == songs("S2", "S4", "S6", "S7")  # S3's .npy is corrupt
    assert ds.audio is None
    lm = ds.features["logmel"]
    assert lm.shape == (4, 12, 8) and lm.dtype == np.float16
    np.testing.assert_array_equal(ds.features["logmel.lengths"], [12, 12, 10, 12])
    for i, k in enumerate(("S2", "S4", "S6", "S7")):
        n = arrays[k].shape[0]
        np.testing.assert_allclose(lm[i, :n], arrays[k], atol=2e-3, rtol=1e-3)
    assert not lm[2, 10:].any()  # zero padding after the shorter S6
    assert ds.manifest["dropped_songs"][0]["song"] == S["S3"]
    cropped = load(msd, tmp_path, n_songs=4, n_users=2, logmel_dir="logmel", tags=[],
                   logmel_frames=11)
    assert cropped.features["logmel"].shape == (4, 11, 8)
    np.testing.assert_array_equal(cropped.features["logmel.lengths"], [11, 11, 10, 11])
    assert cropped.manifest["logmel"]["cropped"] == 3


def test_logmel_files_enter_the_fingerprint(tmp_path):
    root = F.write_msd(tmp_path / "msd", tags=None, audio=False, logmel=True)
    kw = {"n_songs": 4, "n_users": 2, "logmel_dir": "logmel"}
    first = load(root, tmp_path / "c", **kw)
    again = load(root, tmp_path / "c", **kw)
    assert "from_cache" in again.manifest and again.fingerprint == first.fingerprint
    np.save(root / "logmel" / f"{T['T7']}.npy", np.ones((12, 8), np.float32))
    changed = load(root, tmp_path / "c", **kw)
    assert changed.fingerprint != first.fingerprint
    assert "from_cache" not in changed.manifest  # the cache noticed the file changed
    assert np.all(changed.features["logmel"][3] == 1)


def test_limit_reads_the_first_lines(msd, tmp_path):
    # First 6 lines: U1 S1 50, S2 40, S3 30, S4 20; U2 S1 50, S2 50.
    ds = load(msd, tmp_path, n_songs=2, n_users=5, tags=[], limit=6)
    assert list(ds.song_ids) == songs("S2", "S3")
    np.testing.assert_array_equal(ds.counts.toarray(), [[40, 30], [50, 0]])
    assert ds.manifest["triplet_lines_read"] == 6
    via_ctx = load(msd, tmp_path, ctx_limit=6, n_songs=2, n_users=5, tags=[])
    assert via_ctx.fingerprint == ds.fingerprint


def test_fewer_songs_than_requested_is_noted(msd, tmp_path):
    ds = load(msd, tmp_path, tags=[], audio_dir="previews")
    # 9 ranked songs (S1 is a mismatch); S3 (corrupt) and S5 (no clip) do not qualify
    assert list(ds.song_ids) == songs("S2", "S4", "S6", "S7", "S8", "S9", "S10")
    assert ds.manifest["songs_short"] == "only 7 songs qualified out of 9 ranked"


def test_cache_is_reused_and_invalidated(msd, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(msd, root)
    a = load(root, tmp_path / "c", n_songs=4, n_users=2, tags=[])
    b = load(root, tmp_path / "c", n_songs=4, n_users=2, tags=[])
    assert "from_cache" not in a.manifest and "from_cache" in b.manifest
    assert a.fingerprint == b.fingerprint and list(a.user_ids) == list(b.user_ids)
    with open(root / "train_triplets.txt", "a") as f:
        f.write(f"{U['U2']}\t{S['S5']}\t100\n")  # S5 now leads with 160 plays
    c = load(root, tmp_path / "c", n_songs=4, n_users=2, tags=[])
    assert "from_cache" not in c.manifest and c.song_ids[0] == S["S5"]
    d = load(root, tmp_path / "c", n_songs=4, n_users=2, tags=[], cache=False)
    assert "from_cache" not in d.manifest and d.fingerprint == c.fingerprint


def test_strict_mode_and_validation(msd, tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"train_triplets\.txt:8: expected 3 tab-separated"):
        load(msd, tmp_path, tags=[], strict=True, cache=False)
    monkeypatch.delenv("RECBENCH_MSD_ROOT", raising=False)
    with pytest.raises(DataError, match="no data folder; set root or \\$RECBENCH_MSD_ROOT"):
        MSDDataset().validate()
    monkeypatch.setenv("RECBENCH_MSD_ROOT", str(msd))
    MSDDataset(audio_dir="previews").validate()
    with pytest.raises(DataError, match="dataset.msd.triplets: .*nope.txt does not exist"):
        MSDDataset(triplets="nope.txt").validate()
    with pytest.raises(DataError, match="mismatches = \"\""):
        MSDDataset(mismatches="gone.txt").validate()
    with pytest.raises(DataError, match="dataset.msd.audio_dir: .* is not a folder"):
        MSDDataset(audio_dir="clips").validate()
    with pytest.raises(DataError, match="dataset.msd.tags: .* does not exist"):
        MSDDataset(tags=["x.db"]).validate()
    with pytest.raises(DataError, match="dataset.msd.tracks"):
        MSDDataset(tracks="none.txt", audio_dir="previews").validate()
    MSDDataset(tracks="none.txt", tags=[]).validate()  # not needed without audio or tags


def test_mismatches_can_be_disabled(msd, tmp_path):
    ds = load(msd, tmp_path, n_songs=2, n_users=5, tags=[], mismatches="")
    assert list(ds.song_ids) == songs("S1", "S2")
    assert ds.manifest["mismatches"] == "not used"


def test_registered():
    from recbench.registry import build_registry

    reg = build_registry()
    assert "msd" in reg.names("dataset")
    assert reg.get("dataset", "msd").cls is MSDDataset


# --------------------------------------------------------------------------- bad input


def _copy(msd: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(msd, dest)
    return dest


def test_truncated_triplets_last_line_is_skipped_and_counted(msd, tmp_path):
    # Old code read the cut-off last line "U4 S9 2" (of "... 20") as 2 plays: a silently
    # wrong number. Now it is skipped and counted as truncated, located by line.
    root = _copy(msd, tmp_path / "msd")
    lines = [f"{U[u]}\t{S[s]}\t{c}" for u, s, c in F.PLAYS if (u, s) != ("U4", "S9")]
    lines.append(f"{U['U4']}\t{S['S9']}\t2")  # was 20: the copy stopped mid-number
    (root / "train_triplets.txt").write_text("\n".join(lines))  # no final newline
    ds = load(root, tmp_path / "c", n_songs=10, n_users=5, tags=[], mismatches="")
    assert S["S9"] not in list(ds.song_ids)  # its only line was the cut one
    m = ds.manifest
    assert m["dropped"]["truncated_lines"] == 1
    trip = str(root / "train_triplets.txt")
    assert m["examples"]["truncated_lines"][0].startswith(
        f"{trip}:{len(lines)}: the file ends without a newline")
    with pytest.raises(DataError, match=rf"train_triplets\.txt:{len(lines)}: the file ends"):
        load(root, tmp_path / "c", tags=[], mismatches="", strict=True, cache=False)


def test_non_utf8_triplet_line_is_skipped_not_the_whole_file(msd, tmp_path):
    # Old code: "cannot read (... invalid UTF8 data)" for the whole 48M-line file.
    root = _copy(msd, tmp_path / "msd")
    p = root / "train_triplets.txt"
    data = p.read_bytes().replace(U["U5"].encode() + b"\t" + S["S10"].encode(),
                                  b"\xff\xfe" + U["U5"].encode() + b"\t" + S["S10"].encode())
    p.write_bytes(data + b"\xc3\x28 junk\n")  # and a line both malformed and not UTF-8
    ds = load(root, tmp_path / "c", n_songs=10, n_users=5, tags=[], mismatches="")
    assert S["S10"] not in list(ds.song_ids) and U["U5"] not in list(ds.user_ids)
    m = ds.manifest
    assert m["dropped"]["malformed_lines"] == 4  # the fixture's 2 + these 2
    assert sum("not valid UTF-8" in e for e in m["examples"]["malformed_lines"]) == 2


def test_non_utf8_track_and_mismatch_lines(msd, tmp_path):
    # Old code: unique_tracks.txt with one non-UTF-8 line failed the load as a whole; then
    # such a line was dropped. Only the two ids are read now: a Latin-1 title keeps its
    # track; a line whose ids are not ASCII is skipped and counted.
    root = _copy(msd, tmp_path / "msd")
    p = root / "unique_tracks.txt"
    rows = p.read_bytes().split(b"\n")
    rows.insert(1, b"TRJUNK<SEP>SOJUNK<SEP>Caf\xe9<SEP>Title")  # Latin-1, not UTF-8
    rows.insert(2, b"TR\xe9BAD<SEP>SOBAD<SEP>A<SEP>T")  # not an id
    p.write_bytes(b"\n".join(rows))
    m = root / "sid_mismatches.txt"
    m.write_bytes(m.read_bytes() + f"ERROR: <{S['S2']} {T['T2']}> Bj\xf6rk  !=  X\n"
                  .encode("latin-1"))
    ds = load(root, tmp_path / "c", n_songs=3, n_users=5, tags=["lastfm_tags.db"])
    assert list(ds.song_ids) == songs("S3", "S4", "S5")  # S1, S2 listed as mismatches
    assert ds.manifest["dropped"]["malformed_track_lines"] == 1
    assert ds.manifest["examples"]["malformed_track_lines"][0].startswith(
        f"{p}:3: expected TRACK<SEP>SONG")
    assert ds.tags is not None and ds.tags.nnz > 0


@pytest.mark.parametrize("content,match", [
    (b"", r"lastfm_tags\.db is empty \(0 bytes\)"),
    (b"tid,tag\nTRX,rock\n" * 20, r"lastfm_tags\.db is not an SQLite database"),
])
def test_empty_or_non_sqlite_tags_db_fails_before_reading_triplets(msd, tmp_path, content,
                                                                   match):
    # Old code: validate() passed; the error came only after both passes over the
    # triplets (48M lines), so all that work was lost.
    root = _copy(msd, tmp_path / "msd")
    (root / "lastfm_tags.db").write_bytes(content)
    with pytest.raises(DataError, match=r"^dataset\.msd\.tags: .*" + match):
        MSDDataset(root=str(root)).validate()
    reads = []
    import recbench_builtin.datasets.msd as M

    orig = M._Builder.pass1
    M._Builder.pass1 = lambda self: reads.append(1) or orig(self)
    try:
        with pytest.raises(DataError, match=match):
            load(root, tmp_path / "c")
    finally:
        M._Builder.pass1 = orig
    assert reads == []


def test_tags_db_without_the_lastfm_tables(msd, tmp_path):
    import sqlite3

    root = _copy(msd, tmp_path / "msd")
    (root / "lastfm_tags.db").unlink()
    con = sqlite3.connect(root / "lastfm_tags.db")
    con.execute("CREATE TABLE tids (tid TEXT)")
    con.close()
    with pytest.raises(DataError, match=r"has no table tags, tid_tag"):
        MSDDataset(root=str(root)).validate()


def test_missing_unique_tracks_is_one_line_naming_the_file(msd, tmp_path):
    root = _copy(msd, tmp_path / "msd")
    (root / "unique_tracks.txt").unlink()
    with pytest.raises(DataError, match=r"^dataset\.msd\.tracks: .*unique_tracks\.txt does "
                                        r"not exist \(unique_tracks\.txt maps track ids"):
        load(root, tmp_path / "c", audio_dir="previews")
    ds = load(root, tmp_path / "c", tags=[], n_songs=2)  # not needed without audio or tags
    assert len(ds.song_ids) == 2


@pytest.mark.parametrize("damage", ["truncate_counts", "overwrite_logmel", "reshape_ids"])
def test_damaged_subset_cache_is_rebuilt(msd, tmp_path, damage, caplog):
    # Old code read an overwritten cached log-mel array silently, and failed with a raw
    # zipfile/numpy error on a truncated counts.npz.
    opts = {"n_songs": 3, "n_users": 5, "tags": [], "logmel_dir": "logmel"}
    a = load(msd, tmp_path / "c", **opts)
    good = np.array(a.features["logmel"])  # a copy: the cached file is memory-mapped
    [cdir] = [d for d in (tmp_path / "c" / "msd").iterdir() if d.is_dir()]  # not the lock
    if damage == "truncate_counts":
        p = cdir / "counts.npz"
        p.write_bytes(p.read_bytes()[:-40])
    elif damage == "overwrite_logmel":
        p = cdir / "logmel.npy"
        data = bytearray(p.read_bytes())
        data[-64:] = np.full(32, 9.0, np.float16).tobytes()
        p.write_bytes(bytes(data))
    else:
        np.save(cdir / "song_ids.npy", np.array(["x"]))
    with caplog.at_level("WARNING", logger="recbench"):
        b = load(msd, tmp_path / "c", **opts)
    assert "from_cache" not in b.manifest and "cache_rebuilt" in b.manifest
    assert any("damaged" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(np.asarray(b.features["logmel"]), good)
    assert b.fingerprint == a.fingerprint
    c = load(msd, tmp_path / "c", **opts)  # sound again: read from the cache
    assert "from_cache" in c.manifest


# --------------------------------------------------------------------------- real-MSD shapes


def _seven_root(msd: Path, dest: Path, *, nested: bool = True, metadata: bool = True) -> Path:
    """The fixture with its previews named by 7digital id (and no TR/SO-named clips)."""
    import shutil

    root = _copy(msd, dest)
    shutil.rmtree(root / "previews")
    F.write_audio_7digital(root / "previews", nested=nested)
    if metadata:
        F.write_track_metadata(root / "track_metadata.db")
    return root


def test_7digital_previews_through_track_metadata_db(msd, tmp_path):
    root = _seven_root(msd, tmp_path / "msd")
    ds = load(root, tmp_path / "c", n_songs=4, n_users=2, audio_dir="previews", tags=[])
    # as with TR-named clips: S3's clip is corrupt, S5 has none
    assert list(ds.song_ids) == songs("S2", "S4", "S6", "S7")
    prev = root / "previews"
    assert ds.audio.paths == [str(F.seven_path(prev, F.SEVEN[k])) for k in
                              ("T2", "T4b", "T6", "T7")]  # S4: T4 has no 7digital id
    assert ds.manifest["audio_7digital_ids_from"] == "track_metadata.db"
    assert ds.manifest["audio_naming"] == "auto"
    assert ds.audio.waveform(0).ndim == 1
    same = load(root, tmp_path / "c", n_songs=4, n_users=2, audio_dir="previews", tags=[],
                audio_naming="7digital")
    assert same.audio.paths == ds.audio.paths


def test_7digital_flat_layout_through_an_id_map(msd, tmp_path):
    root = _seven_root(msd, tmp_path / "msd", nested=False, metadata=False)
    lines = ["track_id\t7digital_id"] + [f"{T[k]}\t{v}" for k, v in F.SEVEN.items()]
    (root / "ids.tsv").write_text("\r\n".join(lines) + "\r\n")
    ds = load(root, tmp_path / "c", n_songs=4, n_users=2, audio_dir="previews", tags=[],
              id_map="ids.tsv", audio_naming="7digital")
    assert list(ds.song_ids) == songs("S2", "S4", "S6", "S7")
    assert ds.audio.paths[0] == str(root / "previews" / f"{F.SEVEN['T2']}.clip.mp3")


def test_audio_folder_without_usable_clips_says_what_it_tried_and_found(msd, tmp_path):
    root = _seven_root(msd, tmp_path / "msd", metadata=False)
    with pytest.raises(DataError) as err:
        load(root, tmp_path / "c", n_songs=4, n_users=2, audio_dir="previews", tags=[])
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("dataset.msd.audio_dir: ")
    assert "0 of 9 selected songs found" in msg  # all 9 ranked songs (S1 a mismatch)
    assert "tried track id (TRxxx.clip.mp3), song id (SOxxx.mp3), 7digital id (no " in msg
    assert "9 files named like 8/9/8947470.clip.mp3" in msg
    assert "set track_metadata = \"track_metadata.db\"" in msg
    F.write_track_metadata(root / "track_metadata.db")
    with pytest.raises(DataError, match=r"tried track id \(TRxxx.clip.mp3\); the folder "
                                        r"holds 9 files named like .* set audio_naming"):
        load(root, tmp_path / "c", n_songs=4, n_users=2, audio_dir="previews", tags=[],
             audio_naming="track")
    with pytest.raises(DataError, match=r"^dataset\.msd\.track_metadata: .*nothing\.db does "
                                        r"not exist; 7digital-named clips need it"):
        MSDDataset(root=str(root), audio_dir="previews", audio_naming="7digital",
                   track_metadata="nothing.db").validate()
    (root / "bad.db").write_text("not sqlite")
    with pytest.raises(DataError, match=r"bad\.db is not an SQLite database; expected the "
                                        r"MSD's track_metadata\.db"):
        MSDDataset(root=str(root), audio_dir="previews", track_metadata="bad.db").validate()


def _authors_reference(path: Path, n_songs: int, n_users: int):
    """The authors' rule computed independently with pandas (load_user_data.py's
    groupby/sort), ties by id."""
    import pandas as pd

    df = pd.read_csv(path, sep="\t", names=["user", "song", "plays"],
                     dtype={"user": str, "song": str, "plays": np.int64})
    df = df[df.plays > 0]
    s = df.groupby("song").plays.sum().reset_index()
    s = s.sort_values(["plays", "song"], ascending=[False, True]).song[:n_songs].tolist()
    u = df.groupby("user").plays.sum().reset_index()
    u = u.sort_values(["plays", "user"], ascending=[False, True]).user[:n_users].tolist()
    sub = df[df.song.isin(s) & df.user.isin(u)]
    mat = sub.pivot_table(index="user", columns="song", values="plays", aggfunc="sum",
                          fill_value=0)
    users_kept = [x for x in u if x in set(sub.user)]
    return s, users_kept, mat.loc[users_kept, s].to_numpy()


def test_authors_subset_reproduces_an_independent_pandas_ranking(tmp_path):
    root = tmp_path / "msd"
    root.mkdir()
    F.write_big_triplets(root / "train_triplets.txt", 60_000, seed=3)
    ref_songs, ref_users, ref_counts = _authors_reference(root / "train_triplets.txt",
                                                          300, 200)
    # the top song is "mismatched": the authors keep it, the clean rule drops it
    (root / "sid_mismatches.txt").write_text(f"ERROR: <{ref_songs[0]} TRXXXXXXXXXXXXXXXX> "
                                             "A  -  B  !=  C  -  D\n")
    ds = load(root, tmp_path / "c", subset="authors", n_songs=300, n_users=200, tags=[])
    assert list(ds.song_ids) == ref_songs
    assert list(ds.user_ids) == ref_users
    np.testing.assert_array_equal(ds.counts.toarray(), ref_counts)
    m = ds.manifest
    assert m["subset"] == "authors" and m["subset_rule"].startswith("authors: ")
    clean = load(root, tmp_path / "c", n_songs=300, n_users=200, tags=[])
    assert ref_songs[0] not in set(clean.song_ids) and clean.manifest["subset"] == "clean"
    assert list(clean.user_ids) != ref_users  # users by distinct selected songs
    assert clean.fingerprint != ds.fingerprint


def test_authors_users_rank_over_all_songs(msd, tmp_path):
    kw = {"n_songs": 3, "n_users": 5, "tags": [], "mismatches": ""}
    a = load(msd, tmp_path, subset="authors", **kw)
    c = load(msd, tmp_path, subset="clean", song_rank="plays", user_rank="plays", **kw)
    assert list(a.song_ids) == list(c.song_ids) == songs("S1", "S2", "S3")
    # authors ranks users by plays over ALL songs: U3 205, U1 140, U2 110, U4 90, U5 20;
    # clean (user_rank plays) over the 3 songs: U1 120, U2 100, U3 50
    assert list(a.user_ids) == users("U3", "U1", "U2")  # U4, U5 played none of the 3
    assert list(c.user_ids) == users("U1", "U2", "U3")
    assert a.manifest["users_without_selected_songs"] == 2
    assert a.fingerprint != c.fingerprint


def test_authors_subset_drops_songs_without_audio_without_refill(msd, tmp_path):
    ds = load(msd, tmp_path, subset="authors", n_songs=5, n_users=5, audio_dir="previews",
              tags=[])
    # top 5 by plays, mismatch S1 kept: S1..S5; S3 corrupt, S5 no clip -> 3 songs
    assert list(ds.song_ids) == songs("S1", "S2", "S4")
    assert ds.manifest["songs_short"] == "only 3 songs qualified out of 5 ranked"


def test_choi50_tag_preset(msd, tmp_path):
    from recbench_builtin.datasets.msd import CHOI50_TAGS

    assert len(CHOI50_TAGS) == len(set(CHOI50_TAGS)) == 50
    kw = {"n_songs": 4, "n_users": 2, "audio_dir": "previews", "tags": ["lastfm_tags.db"]}
    ds = load(msd, tmp_path, tag_preset="choi50", **kw)
    assert ds.tag_names == list(CHOI50_TAGS)
    got = {t: [str(s) for s in ds.song_ids[ds.tags[:, j].nonzero()[0]]]
           for j, t in enumerate(ds.tag_names) if ds.tags[:, j].nnz}
    # songs S2, S4, S6, S7; weights > 50 only: S2 pop 50 and S4 rock 20/S7 rock 0 excluded
    assert got == {"rock": songs("S2", "S4"), "pop": songs("S6"), "indie": songs("S4")}
    assert ds.manifest["tag_rule"].startswith("choi50: ")
    assert ds.manifest["tags"]["tags_without_songs"] == 47
    top = load(msd, tmp_path, **kw)
    assert top.manifest["tag_rule"].startswith("top50-count: ")
    assert top.fingerprint != ds.fingerprint


def test_gzip_and_crlf_triplets_give_the_same_subset(msd, tmp_path):
    import gzip

    base = load(msd, tmp_path / "c0", n_songs=8, n_users=10, tags=[])
    gz = _copy(msd, tmp_path / "gz")
    data = (gz / "train_triplets.txt").read_bytes()
    (gz / "train_triplets.txt.gz").write_bytes(gzip.compress(data))
    (gz / "train_triplets.txt").unlink()
    a = load(gz, tmp_path / "c1", n_songs=8, n_users=10, tags=[],
             triplets="train_triplets.txt.gz")
    crlf = _copy(msd, tmp_path / "crlf")
    (crlf / "train_triplets.txt").write_bytes(data.replace(b"\n", b"\r\n"))
    b = load(crlf, tmp_path / "c2", n_songs=8, n_users=10, tags=[])
    for ds in (a, b):
        assert list(ds.song_ids) == list(base.song_ids)
        assert list(ds.user_ids) == list(base.user_ids)
        assert (ds.counts != base.counts).nnz == 0
        assert ds.manifest["dropped"]["malformed_lines"] == 2


def test_control_characters_and_cr_in_titles(msd, tmp_path):
    root = _copy(msd, tmp_path / "msd")
    rows = [f"{t}<SEP>{s}<SEP>Art\x1cist<SEP>Ti\x1ft\x1ele\rwith CR".encode()
            for t, s in F.TRACK_SONG.items()]
    (root / "unique_tracks.txt").write_bytes(b"\r\n".join(rows) + b"\r\n")
    ds = load(root, tmp_path / "c", n_songs=4, n_users=2, audio_dir="previews",
              tags=["lastfm_tags.db"])
    assert list(ds.song_ids) == songs("S2", "S4", "S6", "S7")
    assert "malformed_track_lines" not in ds.manifest.get("dropped", {})
    assert ds.audio.paths[1] == str(root / "previews" / f"{T['T4b']}.wav")  # second track


def test_manually_accepted_matches_are_not_mismatches(msd, tmp_path):
    root = _copy(msd, tmp_path / "msd")
    acc = root / "sid_matches_manually_accepted.txt"
    acc.write_text("1c1\n"  # diff form, as published
                   f"< ERROR: <{S['S1']} {T['T9']}> A  -  B  !=  A  -  B\n")
    ds = load(root, tmp_path / "c", n_songs=2, n_users=5, tags=[])
    assert list(ds.song_ids) == songs("S2", "S3")  # another pair: S1 stays a mismatch
    acc.write_text(f"< ERROR: <{S['S1']} {T['T1']}> Some Artist  -  Some Song  !=  "
                   "Other Artist  -  Other Song\n---\n")
    ds = load(root, tmp_path / "c", n_songs=2, n_users=5, tags=[])
    assert list(ds.song_ids) == songs("S1", "S2")  # its pair was accepted by hand
    assert ds.manifest["mismatch_pairs_accepted"] == 1
    assert ds.manifest["mismatched_songs_listed"] == 1  # the other listed song only


_LOAD_AND_COUNT = """
import json, sys
import recbench_builtin.datasets.msd as M
from recbench.components import LoadContext
orig = M._Builder.build
def build(self):
    with open(sys.argv[3], "a") as f:
        f.write("build\\n")
    import time; time.sleep(1.0)  # hold the lock while the other process starts
    return orig(self)
M._Builder.build = build
ds = M.MSDDataset(root=sys.argv[1], n_songs=4, n_users=3, tags=[]).load(
    LoadContext(cache_dir=sys.argv[2]))
print(json.dumps({"fp": ds.fingerprint, "cached": "from_cache" in ds.manifest}))
"""


def test_subset_cache_is_built_once_when_two_runs_start_together(msd, tmp_path):
    import json
    import subprocess

    log = tmp_path / "builds.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1]), str(Path(__file__).parents[1] / "plugins"),
         os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", _LOAD_AND_COUNT, str(msd),
                               str(tmp_path / "cache"), str(log)], stdout=subprocess.PIPE,
                              text=True, env=env) for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert log.read_text().count("build") == 1
    assert outs[0]["fp"] == outs[1]["fp"]
    assert sorted(o["cached"] for o in outs) == [False, True]


def test_clean_rule_streams_and_equals_the_in_memory_build(tmp_path, monkeypatch):
    # 400,000 lines (~25 MB): several 8-MB batches, users cut at batch boundaries
    import recbench_builtin.datasets.msd as M

    root = tmp_path / "msd"
    root.mkdir()
    p = F.write_big_triplets(root / "train_triplets.txt", 400_000, seed=5)
    lines = p.read_bytes().splitlines(keepends=True)
    lines.insert(len(lines) // 2, lines[len(lines) // 2])  # a duplicate line mid-file
    p.write_bytes(b"".join(lines))
    kw = {"n_songs": 500, "n_users": 300, "tags": [], "mismatches": "", "cache": False}
    streamed = load(root, tmp_path / "c", **kw)
    assert "triplets_grouped_by_user" not in streamed.manifest
    monkeypatch.setattr(M._Builder, "pass2", M._Builder.pass2_in_memory)
    ref = load(root, tmp_path / "c", **kw)
    monkeypatch.undo()
    assert list(streamed.user_ids) == list(ref.user_ids)
    assert (streamed.counts != ref.counts).nnz == 0
    assert streamed.manifest["repaired"]["duplicate_rows"] >= 1
    # lines not grouped by user: the exact in-memory pass is used instead
    rng = np.random.default_rng(0)
    p.write_bytes(b"".join(lines[i] for i in rng.permutation(len(lines))))
    shuffled = load(root, tmp_path / "c", **kw)
    assert shuffled.manifest["triplets_grouped_by_user"] is False
    assert list(shuffled.user_ids) == list(ref.user_ids)
    assert (shuffled.counts != ref.counts).nnz == 0
