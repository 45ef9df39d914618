"""The side parts in dataset folders: `recbench data synth` writes them, the folder loader
reads them back (same fingerprint), and reads side files written by other tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.components import LoadContext
from recbench.errors import DataError
from recbench.registry import default_registry

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import recbench

KNOBS = {"user_feature_strength": 0.5, "artist_style_strength": 0.5, "skip_strength": 0.5,
         "skip_prev_strength": 0.5, "modality_strength": 0.5, "categorical_strength": 0.5}


def _load(name, tmp_path, **options):
    return default_registry().create("dataset", name, **options).load(
        LoadContext(cache_dir=str(tmp_path / "cache")))


def test_synth_with_every_knob_round_trips_through_the_folder_format(tmp_path):
    out = tmp_path / "synth"
    sets = [a for k, v in KNOBS.items() for a in ("--set", f"{k}={v}")]
    import os

    env = {**os.environ, "RECBENCH_CACHE": str(tmp_path / "cache")}
    recbench("data", "synth", "--preset", "tiny", *sets, "--out", out, env=env, check=0)
    src = _load("synth-msd", tmp_path, preset="tiny", **KNOBS)
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["fingerprint"] == src.fingerprint
    assert sorted(meta["side"]["files"]) == sorted(src.side_parts())
    assert meta["side"]["category_names"]["song:genre"] == src.category_names["song:genre"]
    for f in ("user_features.tsv", "user_categories.tsv", "song_categories.tsv", "events.tsv",
              "modalities/tokens.npz"):
        assert (out / f).is_file(), f
    assert (out / "events.tsv").read_text().split("\n", 1)[0] == \
        "user\tsong\ttimestamp\tsession\tskipped"
    assert (out / "user_features.tsv").read_text().split("\n", 1)[0] == \
        "user\t" + "\t".join(src.user_feature_names)

    loader = default_registry().create("dataset", "folder", root=str(out))
    assert set(loader.provides()) >= {"interactions", "tags", "user_features",
                                      "user_categories", "song_categories", "modalities",
                                      "events"}
    back = loader.load(LoadContext(cache_dir=str(tmp_path / "cache")))
    assert back.fingerprint == src.fingerprint
    assert back.manifest["fingerprint_matches_written"] is True
    np.testing.assert_array_equal(back.user_features, src.user_features)
    assert back.user_features.dtype == src.user_features.dtype
    for part in ("user_categories", "song_categories"):
        got, want = getattr(back, part), getattr(src, part)
        assert sorted(got) == sorted(want)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k])
    assert (back.modalities["tokens"] != src.modalities["tokens"]).nnz == 0
    for a in ("user", "song", "timestamp", "session", "skipped"):
        np.testing.assert_array_equal(getattr(back.events, a), getattr(src.events, a))
        assert getattr(back.events, a).dtype == getattr(src.events, a).dtype
    assert back.category_names == src.category_names
    # without side parts: the plain fingerprint, as before
    assert default_registry().create("dataset", "folder", root=str(out), side=False).load(
        LoadContext(cache_dir=str(tmp_path / "cache"))).side_parts() == []


def _other_tool_folder(root: Path) -> Path:
    root.mkdir()
    (root / "interactions.tsv").write_text(
        "user\tsong\n" + "".join(f"u{u}\ts{s}\n" for u in range(3) for s in range(4)))
    (root / "user_features.tsv").write_text(
        "user\tage\theight\n"
        "u2\t30\t1.5\n"          # any row order
        "u0\t20\t1.75\n"
        "ghost\t1\t1\n"          # unknown user: dropped, counted
        "u1\tforty\t1.6\n")      # malformed: skipped, counted, located; u1 gets 0
    (root / "song_categories.tsv").write_text(
        "song\tgenre\n" "s0\t2\n" "s1\t-1\n" "s3\t0\n" "s2\t-5\n")  # -5: malformed
    (root / "events.tsv").write_text(
        "user\tsong\ttimestamp\tsession\tskipped\n"
        "u1\ts2\t50\t7\t0\n"
        "u0\ts1\t20\t3\ttrue\n"
        "u0\ts0\t10\t3\t0\n"
        "u0\tzz\t30\t3\t0\n"     # unknown song: dropped
        "u1\ts3\t40\t7\tmaybe\n")  # bad skipped flag: malformed
    (root / "modalities").mkdir()
    np.save(root / "modalities" / "lyrics.npy", np.array([[3., 3.], [1., 1.], [2., 2.]]))
    (root / "modalities" / "lyrics.ids.txt").write_text("s3\ns1\ns2\n")  # s0 missing
    return root


def test_side_files_written_by_other_tools_are_read_by_id(tmp_path):
    root = _other_tool_folder(tmp_path / "other")
    ds = _load("folder", tmp_path, root=str(root))
    assert ds.side_parts() == ["user_features", "song_categories", "modalities", "events"]
    assert ds.user_feature_names == ["age", "height"]
    np.testing.assert_allclose(ds.user_features, [[20, 1.75], [0, 0], [30, 1.5]])
    np.testing.assert_array_equal(ds.song_categories["genre"], [2, -1, -1, 0])
    np.testing.assert_array_equal(ds.modalities["lyrics"], [[0, 0], [1, 1], [2, 2], [3, 3]])
    ev = ds.events
    np.testing.assert_array_equal(ev.user, [0, 0, 1])  # sorted by (user, timestamp)
    np.testing.assert_array_equal(ev.song, [0, 1, 2])
    np.testing.assert_array_equal(ev.timestamp, [10, 20, 50])
    np.testing.assert_array_equal(ev.skipped, [False, True, False])
    np.testing.assert_array_equal(ev.session, [3, 3, 7])
    m = ds.manifest
    assert m["dropped"]["side_unknown_users.user_features.tsv"] == 1
    assert m["dropped"]["side_missing.user_features"] == 1
    assert m["dropped"]["side_missing.song_categories"] == 1
    assert m["dropped"]["side_unknown_ids.events"] == 1
    assert m["dropped"]["side_missing.modalities.lyrics"] == 1
    bad = json.dumps(m)
    assert "user_features.tsv:5" in bad and "song_categories.tsv:5" in bad
    assert "events.tsv:6" in bad


def test_strict_or_inconsistent_side_files_are_one_line_errors(tmp_path):
    root = _other_tool_folder(tmp_path / "other")
    with pytest.raises(DataError) as e:
        _load("folder", tmp_path, root=str(root), strict=True)
    assert "user_features.tsv:5" in str(e.value) and "\n" not in str(e.value)
    (root / "events.tsv").write_text("user\tsong\ttimestamp\tsession\tskipped\n"
                                     "u0\ts0\t1\t9\t0\n" "u1\ts1\t2\t9\t0\n")
    with pytest.raises(DataError, match=r"events.tsv: events.session: expected ids unique "
                                        r"per user session") as e:
        _load("folder", tmp_path, root=str(root))
    np.save(root / "modalities" / "lyrics.npy", np.zeros((2, 2)))
    (root / "events.tsv").unlink()
    with pytest.raises(DataError, match="lyrics.npy: expected a 2-D matrix with one row per "
                                        "song"):
        _load("folder", tmp_path, root=str(root))


def test_dense_modalities_and_unnamed_features_round_trip(tmp_path):
    from recbench.data import Dataset, Events
    from recbench.dataio import write_dataset

    counts = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 1]], dtype=np.float32))
    ds = Dataset("d", counts, np.array(["a", "b"]), np.array(["x", "y", "z"]),
                 user_features=np.array([[0.1, 0.2], [0.3, 1e-8]], np.float32),
                 modalities={"emb": np.arange(6, dtype=np.float64).reshape(3, 2) / 7,
                             ".odd/name": sp.csr_matrix(np.eye(3, dtype=np.float32))},
                 song_categories={"record label": np.array([0, -1, 1])},
                 events=Events(np.array([0, 1]), np.array([2, 1]), np.array([0.1, 1 / 3]),
                               np.array([0, 1]), np.array([True, False])))
    write_dataset(ds, tmp_path / "d")
    assert (tmp_path / "d" / "modalities" / "emb.npy").is_file()
    back = _load("folder", tmp_path, root=str(tmp_path / "d"))
    assert back.user_feature_names == [] and back.fingerprint == ds.fingerprint
    np.testing.assert_array_equal(back.modalities["emb"], ds.modalities["emb"])
    assert sorted(back.modalities) == [".odd/name", "emb"]
    np.testing.assert_array_equal(back.song_categories["record label"], [0, -1, 1])
