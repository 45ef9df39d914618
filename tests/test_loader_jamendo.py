"""The `jamendo` loader on a fixture in the published MTG-Jamendo layout
(data/autotagging_moodtheme.tsv with one field per tag, data/splits/split-0/*.tsv, clips
at <audio_dir>/<PATH>), one malformed row in each file."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import real_datasets as RD  # noqa: E402
from recbench_builtin.datasets import jamendo  # noqa: E402

from recbench.components import LoadContext  # noqa: E402
from recbench.errors import DataError  # noqa: E402

HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
N = 24


def track(k: int) -> dict:
    """Track k: happy (high tone) when k is even, sad (low tone) otherwise; piano every
    third; artist k // 4."""
    num = 948 + 100 * k
    tags = ["mood/theme---happy" if k % 2 == 0 else "mood/theme---sad"]
    if k % 3 == 0:
        tags.append("instrument---piano")
    return {"id": f"track_{num:07d}", "artist": f"artist_{k // 4:06d}",
            "album": f"album_{k // 2:06d}", "path": f"{num % 100:02d}/{num}.mp3",
            "tags": tags, "freq": 1500.0 if k % 2 == 0 else 150.0}


def row(t: dict) -> str:
    return "\t".join([t["id"], t["artist"], t["album"], t["path"], "212.7"] + t["tags"])


def write_jamendo(root: Path, audio: bool = True) -> Path:
    """The fixture: 24 tracks (track 23 without a clip), split-0 lists, one malformed
    row per file."""
    data = root / "data"
    (data / "splits" / "split-0").mkdir(parents=True)
    tracks = [track(k) for k in range(N)]
    lines = [HEADER] + [row(t) for t in tracks]
    lines.insert(5, "track_9999999\tartist_000001\talbum_000001\t99/9999999.mp3\tlong\t"
                    "mood/theme---happy")
    (data / "autotagging_moodtheme.tsv").write_text("\n".join(lines) + "\n")
    parts = {"train": tracks[:14], "validation": tracks[14:18], "test": tracks[18:]}
    for part, ts in parts.items():
        body = [HEADER] + [row(t) for t in ts] + ["track_bad\tonly\tthree"]
        (data / "splits" / "split-0" / f"autotagging_moodtheme-{part}.tsv").write_text(
            "\n".join(body) + "\n")
    if audio:
        for t in tracks[:-1]:
            RD.write_wav(root / "audio" / t["path"], t["freq"], seconds=3.5, sr=16000)
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_jamendo(tmp_path_factory.mktemp("jamendo") / "mtg-jamendo")


def load(root, **opts):
    return jamendo.JamendoDataset(root=str(root), **opts).load(LoadContext(cache_dir=str(root)))


def test_tracks_tags_categories_and_audio(root):
    ds = load(root)
    ids = [track(k)["id"] for k in range(N)]
    assert ds.song_ids.tolist() == ids[:-1]  # the last has no clip: dropped, named
    assert ds.manifest["dropped_songs"][0]["song"] == ids[-1]
    # users: the artists, each with their tracks once
    assert ds.user_ids.tolist() == [f"artist_{a:06d}" for a in range(6)]
    assert ds.counts.shape == (6, N - 1) and ds.counts.sum() == N - 1
    assert ds.counts[5].indices.tolist() == [20, 21, 22]
    none = load(root, users="none")
    assert none.n_users == 0 and none.counts.shape == (0, N - 1)
    assert ds.tag_names == ["instrument---piano", "mood/theme---happy", "mood/theme---sad"]
    t = ds.tags.toarray()
    assert t[:, 1].tolist() == [k % 2 == 0 for k in range(N - 1)]
    assert t[:, 0].tolist() == [k % 3 == 0 for k in range(N - 1)]
    assert ds.song_categories["artist"].tolist() == [k // 4 for k in range(N - 1)]
    assert ds.audio.paths[1].endswith("audio/48/1048.mp3")
    assert "official_split" not in ds.song_categories
    mood = load(root, categories=["mood/theme"])
    assert mood.tag_names == ["mood/theme---happy", "mood/theme---sad"]


def test_official_split_and_malformed_rows(root):
    ds = load(root, official_split="split-0")
    codes = ds.song_categories["official_split"]
    assert codes.tolist() == [0] * 14 + [1] * 4 + [2] * 5
    assert ds.category_names["song:official_split"] == ["train", "validation", "test"]
    m = ds.manifest
    assert m["dropped"]["malformed_lines"] == 4  # the tracks file and three split lists
    ex = " ".join(m["examples"]["malformed_lines"])
    assert "autotagging_moodtheme.tsv:6: DURATION 'long' is not a number" in ex
    assert "autotagging_moodtheme-test.tsv:8: expected at least 5 tab-separated fields" in ex
    with pytest.raises(DataError, match="strict mode"):
        load(root, strict=True)


def test_missing_files_are_one_line_errors(root, tmp_path):
    with pytest.raises(DataError, match=r"dataset\.jamendo\.metadata: expected the tracks "
                                        r"file .* at .*raw_30s\.tsv \(not found\)"):
        jamendo.JamendoDataset(root=str(root), metadata="data/raw_30s.tsv").validate()
    with pytest.raises(DataError, match=r"dataset\.jamendo\.official_split: expected the "
                                        r"train list of split-3 at .*split-3/"
                                        r"autotagging_moodtheme-train\.tsv"):
        jamendo.JamendoDataset(root=str(root), official_split="split-3").validate()
    with pytest.raises(DataError, match=r"dataset\.jamendo\.audio_dir: expected the unpacked"):
        jamendo.JamendoDataset(root=str(root), audio_dir="mp3s").validate()
    assert jamendo.JamendoDataset(root=str(root), audio_dir="").provides() == (
        "tags", "song_categories")
    assert jamendo.JamendoDataset(root=str(root)).provides() == (
        "tags", "song_categories", "audio")


@pytest.mark.slow
def test_tagging_suite_runs_end_to_end(root, tmp_path, monkeypatch):
    rc, out, err = RD.run_suite(
        tmp_path, monkeypatch, jamendo, root, split="cold-item",
        split_options="valid_share = 0.2\ntest_share = 0.35", task="tagging",
        task_options="max_epochs = 30\npatience = 5\nhidden = 16",
        models='[[models]]\nname = "content-profile"\nout_dim = 8',
        extra="[features]\nwindow_s = 1.0\nn_mels = 32")
    assert rc == 0, err
    rows = RD.rows_of(out)
    assert len(rows) == 1 and rows[0]["status"] == "ok", rows[0].get("error")
    assert rows[0]["dataset"]["n_songs"] == N - 1
    auc = rows[0]["metrics"]["tag_auc_macro"]
    assert 0.5 < auc <= 1.0, auc  # the clips' tones separate happy from sad (0.81 seen)
    RD.check_leaderboard(out, "tagging", "mtg-jamendo", "cold-item")
