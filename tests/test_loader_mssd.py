"""The `mssd` loader on a fixture in the published MSSD layout (training_set/log_*.csv,
track_features/tf_*.csv), one malformed row in each file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import real_datasets as RD  # noqa: E402
from recbench_builtin.datasets import mssd  # noqa: E402

from recbench.components import LoadContext  # noqa: E402
from recbench.errors import DataError  # noqa: E402

LOG_HEADER = ("session_id,session_position,session_length,track_id_clean,skip_1,skip_2,"
              "skip_3,not_skipped,context_switch,no_pause_before_play,"
              "short_pause_before_play,long_pause_before_play,hist_user_behavior_n_seekfwd,"
              "hist_user_behavior_n_seekback,hist_user_behavior_is_shuffle,hour_of_day,date,"
              "premium,context_type,hist_user_behavior_reason_start,"
              "hist_user_behavior_reason_end")
TF_HEADER = ("track_id,duration,release_year,us_popularity_estimate,acousticness,"
             "beat_strength,bounciness,danceability,dyn_range_mean,energy,flatness,"
             "instrumentalness,key,liveness,loudness,mechanism,mode,organism,speechiness,"
             "tempo,time_signature,valence," + ",".join(f"acoustic_vector_{i}" for i in range(8)))

# session -> [(track, skip_2)] in session order; sessions are days apart
SESSIONS = {
    "0_s1": [("t_a", False), ("t_b", False), ("t_c", True), ("t_a", False)],
    "0_s2": [("t_b", False), ("t_d", True), ("t_b", False)],
    "0_s3": [("t_c", False), ("t_a", False), ("t_e", True)],
    "1_s4": [("t_d", False), ("t_a", False), ("t_b", True), ("t_c", False)],
    "1_s5": [("t_e", False), ("t_a", True), ("t_d", False)],
    "1_s6": [("t_a", False), ("t_b", False), ("t_f", False)],
}
TRACKS = ["t_a", "t_b", "t_c", "t_d", "t_e", "t_f"]


def _log_row(sid: str, pos: int, n: int, track: str, skip2: bool, hour: int, date: str) -> str:
    b = "true" if skip2 else "false"
    return (f"{sid},{pos},{n},{track},{b},{b},{b},{'false' if skip2 else 'true'},0,1,0,0,0,0,"
            f"true,{hour},{date},true,user_collection,fwdbtn,"
            f"{'fwdbtn' if skip2 else 'trackdone'}")


def write_mssd(root: Path) -> Path:
    """The fixture: two log files (sessions 0_* and 1_*), one track features file, each
    with one malformed row."""
    (root / "training_set").mkdir(parents=True)
    (root / "track_features").mkdir()
    for k, bad in ((0, "0_bad,1,1,t_a,maybe,maybe,maybe,false,0,1,0,0,0,0,true,8,"
                       "2018-07-15,true,user_collection,fwdbtn,fwdbtn"),
                   (1, "1_bad,1,2,t_b,true,true,true")):  # a bad flag; too few fields
        lines = [LOG_HEADER]
        for j, (sid, plays) in enumerate(s for s in SESSIONS.items() if s[0][0] == str(k)):
            for pos, (track, skip) in enumerate(plays, 1):
                lines.append(_log_row(sid, pos, len(plays), track, skip, 8 + j,
                                      f"2018-07-{15 + k:02d}"))
            if j == 0:
                lines.append(bad)
        (root / "training_set" / f"log_{k}_2018071{5 + k}_000000000000.csv").write_text(
            "\n".join(lines) + "\n")
    rows = [TF_HEADER]
    for i, t in enumerate(TRACKS):
        vec = ",".join(f"{0.1 * (i + j):.3f}" for j in range(8))
        mode = "major" if i % 2 == 0 else "minor"
        rows.append(f"{t},{180 + i}.5,{2000 + i},99.{i},0.{i}5,0.5,0.5,0.6,10.1,0.7,0.9,"
                    f"0.01,{i},0.1,-6.{i},0.4,{mode},0.3,0.05,120.0,4,0.5,{vec}")
    rows.insert(3, "t_zz,180,2001,oops,0.1,0.5,0.5,0.6,10.1,0.7,0.9,0.01,1,0.1,-6,0.4,major,"
                   "0.3,0.05,120.0,4,0.5," + ",".join(["0.1"] * 8))
    (root / "track_features" / "tf_000000000000.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def root(tmp_path):
    return write_mssd(tmp_path / "mssd")


def load(root, **opts):
    return mssd.MSSDDataset(root=str(root), **opts).load(LoadContext(cache_dir=str(root)))


def test_sessions_become_users_with_events_and_skips(root):
    ds = load(root)
    assert ds.user_ids.tolist() == sorted(SESSIONS)
    assert ds.song_ids.tolist() == TRACKS
    ev = ds.events
    n_plays = sum(len(p) for p in SESSIONS.values())
    assert len(ev) == n_plays
    for u, sid in enumerate(ds.user_ids):
        idx = np.flatnonzero(ev.user == u)
        assert [ds.song_ids[s] for s in ev.song[idx]] == [t for t, _ in SESSIONS[sid]]
        assert ev.skipped[idx].tolist() == [s for _, s in SESSIONS[sid]]
        assert len(set(ev.session[idx].tolist())) == 1
    assert np.all(np.diff(ev.timestamp[ev.user == 0]) == 1.0)  # position steps
    # counts: plays not skipped; s1 played t_a twice, skipped t_c
    a, c = TRACKS.index("t_a"), TRACKS.index("t_c")
    assert ds.counts[0, a] == 2 and ds.counts[0, c] == 0
    assert ds.counts.sum() == sum(not s for p in SESSIONS.values() for _, s in p)
    assert load(root, count_skipped=True).counts.sum() == n_plays


def test_track_features_and_mode(root):
    ds = load(root)
    tf = ds.modalities["track_features"]
    assert tf.shape == (6, 28) and tf.dtype == np.float32
    cols = ds.manifest["track_features"]["columns"]
    assert "mode" not in cols and cols[0] == "duration"
    assert tf[TRACKS.index("t_c"), cols.index("release_year")] == 2002
    assert tf[TRACKS.index("t_f"), cols.index("acoustic_vector_7")] == pytest.approx(1.2)
    assert ds.category_names["song:mode"] == ["major", "minor"]
    assert ds.song_categories["mode"].tolist() == [0, 1, 0, 1, 0, 1]
    assert ds.summary()["side"] == ["song_categories", "modalities", "events"]


def test_one_malformed_row_per_file_is_counted_and_named(root):
    ds = load(root)
    m = ds.manifest
    assert m["dropped"]["malformed_lines"] == 3
    ex = " ".join(m["examples"]["malformed_lines"])
    assert "log_0_20180715_000000000000.csv:6: skip_2 is not true/false" in ex
    assert "log_1_20180716_000000000000.csv:6" in ex and "expected 21" in ex
    assert "tf_000000000000.csv:4: us_popularity_estimate is not a finite number" in ex
    with pytest.raises(DataError, match="strict mode"):
        load(root, strict=True)


def test_skip_flag_choice(root):
    ds = load(root, skip_flag="not_skipped")
    # only the chosen flag is checked: the row whose skip_* read "maybe" is valid here
    assert ds.user_ids.tolist() == ["0_bad"] + sorted(SESSIONS)
    assert ds.events.skipped.sum() == 1 + sum(s for p in SESSIONS.values() for _, s in p)
    assert ds.manifest["dropped"]["malformed_lines"] == 2
    # a different flag changes what is a skip: here skip_1 equals skip_2 in the fixture
    assert load(root, skip_flag="skip_1").fingerprint == load(root).fingerprint


def test_missing_files_are_one_line_errors(root, tmp_path):
    with pytest.raises(DataError, match=r"dataset\.mssd\.root: .*nope is not a folder"):
        mssd.MSSDDataset(root=str(tmp_path / "nope")).validate()
    for f in (root / "track_features").iterdir():
        f.unlink()
    with pytest.raises(DataError, match=r"dataset\.mssd\.track_features: expected track "
                                        r"features .*tf_\*\.csv\* \(none found\)"):
        mssd.MSSDDataset(root=str(root)).validate()
    ds = load(root, track_features="")
    assert ds.modalities == {} and mssd.MSSDDataset(
        root=str(root), track_features="").provides() == ("interactions", "events")


@pytest.mark.slow
def test_suite_runs_end_to_end(root, tmp_path, monkeypatch):
    rc, out, err = RD.run_suite(tmp_path, monkeypatch, mssd, root)
    assert rc == 0, err
    rows = RD.rows_of(out)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(0.0 <= r["metrics"]["auc"] <= 1.0 for r in rows)
    assert rows[0]["dataset"]["manifest"]["dropped"]["malformed_lines"] == 3
    RD.check_leaderboard(out, "recommendation", "mssd", "warm")


def test_gzipped_logs_read_like_plain_ones(root):
    import gzip

    plain = load(root)
    for p in (root / "training_set").iterdir():
        p.with_name(p.name + ".gz").write_bytes(gzip.compress(p.read_bytes()))
        p.unlink()
    gz = load(root)
    assert gz.fingerprint == plain.fingerprint
    assert gz.manifest["log_files"][0].endswith(".csv.gz")
