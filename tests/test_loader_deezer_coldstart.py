"""The `deezer-coldstart` loader on a fixture in the published layout of the Zenodo
release of Briand et al. (KDD 2021): song_embeddings.parquet, user_embeddings.parquet,
user_features_{train,validation,test}_{svd,mf}.parquet; one malformed row in each file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import real_datasets as RD  # noqa: E402
from recbench_builtin.datasets import deezer_coldstart as dz  # noqa: E402

from recbench.components import LoadContext  # noqa: E402
from recbench.errors import DataError  # noqa: E402

N_SONGS = 12
USERS = {"train": [3, 1, 5, 7, 9, 11, 13, 15], "validation": [20, 21, 22, 23],
         "test": [30, 31, 32, 33]}


def songs_of(u: int) -> list[int]:
    """User u's first-30-day songs (song_index values 100..111): a popular head plus a
    user-specific pair."""
    return [100, 101, 100 + 2 + u % 10, 100 + 2 + (u + 3) % 10]


def write_deezer(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    svd = [rng.standard_normal(4).tolist() for _ in range(N_SONGS)]
    svd[5] = svd[5][:3]  # malformed: a list of the wrong length
    pq.write_table(pa.table({
        "song_index": list(range(100, 100 + N_SONGS)), "features_svd": svd,
        "features_mf": [rng.standard_normal(6).tolist() for _ in range(N_SONGS)]}),
        root / "song_embeddings.parquet")
    for part, users in USERS.items():
        for v in ("svd", "mf"):
            feats = {f"feature_{j}": [float(u % (j + 2)) for u in users] + [0.0]
                     for j in range(3)}
            feats["feature_1"][1] = None  # NaN / null: zeroed by the documented rule
            pq.write_table(pa.table({
                "user_index": users + [None],  # malformed: a null user_index
                "d1d30_songs": [songs_of(u) + ([999] if u == users[0] else [])
                                for u in users] + [[100]],
                **feats}), root / f"user_features_{part}_{v}.parquet")
    train_sorted = sorted(USERS["train"])
    emb = [[float(u), 1.0, 2.0] for u in train_sorted]
    emb[2] = None
    pq.write_table(pa.table({"svd_embeddings": emb, "mf_embeddings": emb}),
                   root / "user_embeddings.parquet")
    return root


@pytest.fixture
def root(tmp_path):
    return write_deezer(tmp_path / "deezer")


def load(root, **opts):
    return dz.DeezerColdStartDataset(root=str(root), **opts).load(
        LoadContext(cache_dir=str(root)))


def test_users_features_counts_and_song_embeddings(root):
    ds = load(root)
    all_users = [u for p in USERS.values() for u in p]
    assert ds.user_ids.tolist() == [str(u) for u in all_users]
    assert ds.song_ids.tolist() == [str(s) for s in range(100, 112) if s != 105]
    emb = ds.modalities["embedding"]
    assert emb.shape == (11, 4) and emb.dtype == np.float32
    # counts: each user's d1d30 songs (song 105 had a bad embedding row: dropped)
    u7 = all_users.index(7)
    assert sorted(ds.song_ids[ds.counts[u7].indices].tolist()) == sorted(
        str(s) for s in songs_of(7) if s != 105)
    assert ds.user_feature_names == ["feature_0", "feature_1", "feature_2"]
    assert ds.user_features[u7].tolist() == [7 % 2, 7 % 3, 7 % 4]
    assert ds.user_features[1, 1] == 0.0  # the null feature, zeroed
    assert ds.user_categories["official_split"].tolist() == [0] * 8 + [1] * 4 + [2] * 4
    m = ds.manifest
    assert m["repaired"]["missing_features_zeroed"] == 3
    # song 999 (each part's first user) and song 105 (its embedding row was malformed)
    assert m["dropped"]["unknown_songs"] == 3 + sum(105 in songs_of(u) for u in all_users)
    assert ds.summary()["side"] == ["user_features", "user_categories", "modalities"]


def test_limit_reads_the_first_users_of_each_file(root):
    ds = dz.DeezerColdStartDataset(root=str(root)).load(
        LoadContext(cache_dir=str(root), limit=2))
    assert ds.user_ids.tolist() == ["3", "1", "20", "21", "30", "31"]


def test_one_malformed_row_per_file_is_counted_and_named(root):
    m = load(root, user_embeddings=True).manifest
    assert m["dropped"]["malformed_rows"] == 5  # songs, three feature files, embeddings
    ex = " ".join(m["examples"]["malformed_rows"])
    assert "song_embeddings.parquet: row 6: null song_index or features_svd not a list" in ex
    assert "user_features_test_svd.parquet: row 5: null user_index" in ex
    with pytest.raises(DataError, match="strict mode"):
        load(root, strict=True)


def test_user_embedding_targets_for_training_users_only(root):
    ds = load(root, user_embeddings=True)
    names = ds.user_feature_names
    assert names[-3:] == ["target_0", "target_1", "target_2"]
    t = ds.user_features[:, -3:]
    pos = {u: i for i, u in enumerate(ds.user_ids.tolist())}
    assert t[pos["9"]].tolist() == [9.0, 1.0, 2.0]  # aligned with the sorted train users
    assert t[pos["5"]].tolist() == [0, 0, 0]  # its row (the third) was malformed
    assert t[pos["20"]].tolist() == [0, 0, 0]  # validation users have no target


def test_a_training_file_without_first_month_songs(root):
    """The paper's code reads features by position (third column on) and d1d30_songs by
    name; a file without that column still gives its users' features."""
    path = root / "user_features_train_svd.parquet"
    tab = pq.read_table(path)
    pq.write_table(tab.rename_columns(["user_index", "other", "feature_0", "feature_1",
                                       "feature_2"]), path)
    ds = load(root)
    assert ds.manifest["files_without_d1d30_songs"] == ["user_features_train_svd.parquet"]
    assert ds.counts[:8].nnz == 0 and ds.counts[8:].nnz > 0
    assert ds.user_features[3].tolist() == [7 % 2, 7 % 3, 7 % 4]


def test_missing_files_are_one_line_errors(root):
    (root / "user_features_validation_mf.parquet").unlink()
    with pytest.raises(DataError, match=r"dataset\.deezer-coldstart\.root: expected the "
                                        r"validation users' features at "
                                        r".*user_features_validation_mf\.parquet"):
        dz.DeezerColdStartDataset(root=str(root), version="mf").validate()
    path = root / "user_features_test_svd.parquet"
    tab = pq.read_table(path)
    pq.write_table(tab.set_column(2, "feature_0", pa.array(["x"] * tab.num_rows)), path)
    with pytest.raises(DataError, match=r"user_features_test_svd\.parquet: feature column "
                                        r"'feature_0' has type string; expected numbers"):
        load(root)
    (root / "song_embeddings.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"song_embeddings\.parquet: not a readable Parquet"):
        load(root)


@pytest.mark.slow
def test_cold_user_suite_runs_end_to_end(root, tmp_path, monkeypatch):
    rc, out, err = RD.run_suite(tmp_path, monkeypatch, dz, root, split="cold-user",
                                split_options="valid_share = 0.2\ntest_share = 0.3\n"
                                              "revealed = 1")
    assert rc == 0, err
    rows = RD.rows_of(out)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(0.0 <= r["metrics"]["auc"] <= 1.0 for r in rows)
    RD.check_leaderboard(out, "recommendation", "deezer-coldstart", "cold-user")
