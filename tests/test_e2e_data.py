"""End to end through the CLI: the msd loader on published-format fixtures, and the
synthetic dataset written to disk and read back by the folder loader."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import fixtures_msd as F
from test_cli import recbench, rows_of, suite_file

MSD_SUITE = """
[suite]
name = "msd-fixture"
bootstrap = 100

[dataset]
name = "msd"
root = "${{MSD_FIXTURE}}"
audio_dir = "previews"
tags = ["{tags}"]
n_songs = 8
n_users = 5

[split]
name = "cold-item"
valid_share = 0.15
test_share = 0.35

[[tasks]]
name = "recommendation"
metrics = ["auc", "ndcg@3"]

[[models]]
name = "popularity"

[[models]]
name = "popularity-oracle"

[[models]]
name = "content-profile"
"""


def test_msd_suite_runs_end_to_end_on_published_formats(tmp_path, monkeypatch):
    root = F.write_msd(tmp_path / "msd", tags="both", logmel=False)
    monkeypatch.setenv("MSD_FIXTURE", str(root))
    for tags in ("lastfm_tags.db", "lastfm_train"):  # the SQLite file and the JSON folders
        out = tmp_path / f"out-{tags}"
        p = suite_file(tmp_path, MSD_SUITE.format(tags=tags))
        recbench("run", p, "-o", out, "-q", "--cache-dir", tmp_path / "cache", check=0)
        rows = rows_of(out)
        assert len(rows) == 3 and all(r["status"] == "ok" for r in rows)
        ds = rows[0]["dataset"]
        assert ds["synthetic"] is False and ds["name"] == "msd"
        # S1 is a known mismatch, S3's clip is corrupt, S5 has none: 7 songs remain.
        assert ds["n_songs"] == 7
        manifest = ds["manifest"]
        assert manifest["dropped"]["songs_unreadable_audio"] == 1
        assert manifest["dropped_songs"][0]["song"] == F.SONGS["S3"]
        assert manifest["dropped"]["malformed_lines"] == 2
        lb = json.loads((out / "leaderboard.json").read_text())
        assert "SYNTHETIC" not in (out / "leaderboard.md").read_text()
        assert lb["tasks"]["recommendation"]["dataset"]["fingerprint"] == ds["fingerprint"]


def test_data_synth_round_trips_through_the_folder_dataset(tmp_path):
    out = tmp_path / "synth"
    proc = recbench("data", "synth", "--preset", "tiny", "--out", out, check=0)
    fingerprint = proc.stdout.split("fingerprint ")[1].split(")")[0]
    assert (out / "interactions.tsv").exists() and (out / "tags.tsv").exists()
    assert len(list((out / "audio").glob("*.wav"))) == 200
    suite = f"""
[dataset]
name = "folder"
root = "{out}"

[[tasks]]
name = "recommendation"

[[models]]
name = "popularity"
"""
    run = tmp_path / "run"
    recbench("run", suite_file(tmp_path, suite), "-o", run, "-q", check=0)
    [row] = rows_of(run)
    assert row["dataset"]["fingerprint"] == fingerprint
    assert row["dataset"]["synthetic"] is True


SILENT_SUITE = """
[suite]
name = "silent"
bootstrap = 20

[dataset]
name = "folder"
root = "{root}"
sample_rate = 8000

[features]
n_mels = 16
n_fft = 256
hop_length = 128
window_s = 0.25

[split]
name = "cold-item"
valid_share = 0.2
test_share = 0.3

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "content-profile"
backbone = "mel-stats"
"""


def _folder_with_a_silent_clip(root: Path) -> None:
    import numpy as np
    import soundfile as sf

    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = ["user\tsong\tcount"]
    for s in range(12):
        t = np.arange(4000) / 8000
        x = (0.3 * np.sin(2 * np.pi * (200 + 90 * s) * t)).astype(np.float32)
        if s == 7:
            x[:] = 0.0  # decodes fine, passes the load-time probe; silent
        sf.write(root / "audio" / f"s{s}.wav", x, 8000, subtype="FLOAT")
        for u in range(10):
            if rng.random() < 0.5 or u == s % 10:
                lines.append(f"u{u}\ts{s}\t{int(rng.integers(1, 5))}")
    (root / "interactions.tsv").write_text("\n".join(lines) + "\n")


def test_silent_song_is_dropped_from_features_and_logged(tmp_path):
    # Old code extracted the silent clip (a constant -100 dB log-mel in the training
    # statistics) without a word.
    root = tmp_path / "f"
    _folder_with_a_silent_clip(root)
    out = tmp_path / "out"
    proc = recbench("run", suite_file(tmp_path, SILENT_SUITE.format(root=root)), "-o", out,
                    "-q", "--cache-dir", tmp_path / "cache", check=0)
    assert ("logmel features: 1 of 12 songs dropped (silent 1); first: song s7: "
            "SilentAudio") in proc.stderr
    assert "Traceback" not in proc.stderr
    [row] = rows_of(out)
    assert row["status"] == "ok"


def test_row_says_which_songs_the_features_dropped(tmp_path):
    root = tmp_path / "f"
    _folder_with_a_silent_clip(root)
    out = tmp_path / "out"
    recbench("run", suite_file(tmp_path, SILENT_SUITE.format(root=root)), "-o", out, "-q",
             "--cache-dir", tmp_path / "cache", check=0)
    [row] = rows_of(out)
    feats = row["dataset"]["features"]["logmel"]
    assert feats["n_dropped"] == 1 and feats["dropped"] == {"silent": 1}
    assert feats["dropped_songs"][0]["song"] == "s7"
    assert feats["cache"]["entry"] == "extracted"


def test_msd_coldstart_suite_on_a_7digital_fixture(tmp_path, monkeypatch):
    """suites/msd_coldstart.toml (a copy, budgets cut to seconds) end to end on a fixture in
    the layout MSD owners have: previews `<d1>/<d2>/<7digitalid>.clip.mp3` mapped through
    `track_metadata.db`, the authors' subset rule and Choi's 50 tags."""
    import shutil

    import tomllib

    root = F.write_msd(tmp_path / "msd", tags="db", audio=False)
    F.write_audio_7digital(root / "previews")
    F.write_track_metadata(root / "track_metadata.db")
    suite_src = Path(__file__).parents[1] / "suites" / "msd_coldstart.toml"
    suite = tmp_path / "msd_coldstart.toml"
    shutil.copy(suite_src, suite)
    raw = tomllib.loads(suite_src.read_text())
    sets = ["dataset.n_songs=8", "dataset.n_users=5", 'dataset.subset="authors"',
            'dataset.tag_preset="choi50"', 'dataset.audio_naming="auto"',
            "split.valid_share=0.15", "split.test_share=0.35", "suite.bootstrap=50"]
    for i, m in enumerate(raw.get("models", [])):  # seconds, not minutes
        for key, value in (("max_epochs", 1), ("steps_per_epoch", 2), ("epochs", 1),
                           ("iterations", 2)):
            if key in m:
                sets.append(f"models[{i}].{key}={value}")
    monkeypatch.setenv("RECBENCH_MSD_ROOT", str(root))
    monkeypatch.delenv("RECBENCH_MSD_AUDIO", raising=False)
    out = tmp_path / "out"
    args = [a for s in sets for a in ("--set", s)]
    recbench("run", suite, "-o", out, "-q", "--cache-dir", tmp_path / "cache", *args, check=0)
    rows = rows_of(out)
    assert rows and all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    ds = rows[0]["dataset"]
    assert ds["synthetic"] is False and ds["name"] == "msd"
    # authors' rule: top 8 songs by plays, S1 (a listed mismatch) kept; S3's clip is
    # corrupt and S5 has none, and they are not replaced
    assert ds["n_songs"] == 6
    m = ds["manifest"]
    assert m["subset"] == "authors" and m["subset_rule"].startswith("authors: ")
    assert m["tag_rule"].startswith("choi50: ")
    assert m["audio_7digital_ids_from"] == "track_metadata.db"
    assert ds["params"]["subset"] == "authors" and ds["params"]["tag_preset"] == "choi50"
    assert {r["dataset"]["fingerprint"] for r in rows} == {ds["fingerprint"]}
    # the leaderboard states the subset rule, tag rule, backbone and protocol of every row
    md = (out / "leaderboard.md").read_text()
    assert f"- subset rule (every row): {m['subset_rule']}" in md
    assert f"- tag rule (every row): {m['tag_rule']}" in md
    board = json.loads((out / "leaderboard.json").read_text())["tasks"]["recommendation"]
    settings = {e["model_id"]: e["setting"] for e in board["rows"] if "model_id" in e}
    assert settings["dcue"] == "cold-item; backbone conv1d-lee2018"
    assert settings["wmf-regression"] == "cold-item; backbone conv1d-lee2018"
    assert settings["popularity"] == "cold-item"
    assert settings["dcue-authors-warm"] == (
        "cold-item, oracle; backbone conv1d-lee2018")
