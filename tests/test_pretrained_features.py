"""Pretrained song embeddings: the three layouts, alignment, missing songs, identity in the
feature key and the fingerprint, and models running on them end to end."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.data import Dataset
from recbench.errors import DataError
from recbench.features import load_features
from recbench.features.pretrained import attach_embeddings, read_embeddings

sys.path.insert(0, str(Path(__file__).parent))


def _dataset(n_songs=5) -> Dataset:
    counts = sp.csr_matrix(np.array([[1, 2, 0, 0, 1], [0, 1, 3, 0, 0], [1, 0, 0, 1, 1]],
                                    dtype=np.float32)[:, :n_songs])
    return Dataset("toy", counts, np.array(["u0", "u1", "u2"]),
                   np.array([f"s{i}" for i in range(n_songs)]))


EMB = {"s0": [1.0, 0.0], "s1": [0.0, 2.0], "s2": [3.0, 1.0], "s4": [-1.0, 1.0],
       "extra": [9.0, 9.0]}  # s3 missing, "extra" unknown to the dataset


def _write_layouts(tmp: Path) -> dict[str, dict]:
    per = tmp / "per_song"
    per.mkdir()
    for k, v in EMB.items():
        np.save(per / f"{k}.npy", np.array(v, dtype=np.float32))
    ids = list(EMB)
    np.save(tmp / "m.npy", np.array([EMB[k] for k in ids], dtype=np.float32))
    (tmp / "m.ids.txt").write_text("".join(i + "\n" for i in ids))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"track": ids, "vec": [EMB[k] for k in ids]}), tmp / "l.parquet")
    pq.write_table(pa.table({"song": ids, "d0": [EMB[k][0] for k in ids],
                             "d1": [EMB[k][1] for k in ids]}), tmp / "c.parquet")
    return {"per_song": {"path": per}, "matrix": {"path": tmp / "m.npy"},
            "list": {"path": tmp / "l.parquet", "id_col": "track"},
            "columns": {"path": tmp / "c.parquet"}}


def test_every_layout_aligns_with_song_ids_and_counts_missing(tmp_path, caplog):
    layouts = _write_layouts(tmp_path)
    for name, kw in layouts.items():
        ds = _dataset()
        attach_embeddings(ds, **kw)
        arr, lengths = ds.features["embedding"], ds.features["embedding.lengths"]
        assert arr.shape == (5, 1, 2), name
        np.testing.assert_array_equal(arr[:, 0], [[1, 0], [0, 2], [3, 1], [0, 0], [-1, 1]])
        np.testing.assert_array_equal(lengths, [1, 1, 1, 0, 1])
        info = ds.manifest["pretrained"]["embedding"]
        assert info["n_missing"] == 1 and info["missing_songs"] == ["s3"]
        assert info["n_unknown_ids"] == 1
    assert "1 of 5 songs have none (first: s3)" in caplog.text


def test_load_features_standardises_on_training_songs_and_drops_missing(tmp_path):
    ds = attach_embeddings(_dataset(), **_write_layouts(tmp_path)["matrix"])
    f = load_features(ds, "embedding", [0, 1, 2], tmp_path / "cache")
    assert f.window == 1 and f.n_channels == 2 and f.n_songs == 5
    train = np.array([[1, 0], [0, 2], [3, 1]], dtype=np.float64)
    np.testing.assert_allclose(f.mean, train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(f.std, train.std(0), rtol=1e-6)
    assert f.manifest["dropped"] == {"no_precomputed_features": 1}
    assert f.manifest["dropped_songs"][0]["song"] == "s3"
    key = ds.manifest["pretrained"]["embedding"]["identity"]
    assert f.key == key and f.manifest["key"] == key and len(key) == 16
    w, _owner = f.song_windows(np.array([2]))
    np.testing.assert_allclose(w[0, 0], (np.array([3, 1]) - train.mean(0)) / train.std(0),
                               rtol=1e-5)


def test_identity_enters_fingerprint_and_key(tmp_path):
    paths = _write_layouts(tmp_path)
    plain = _dataset().fingerprint
    a = attach_embeddings(_dataset(), **paths["matrix"])
    b = attach_embeddings(_dataset(), **paths["matrix"])
    assert a.fingerprint == b.fingerprint != plain
    m = tmp_path / "m.npy"
    st = os.stat(m)
    os.utime(m, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: another file version
    c = attach_embeddings(_dataset(), **paths["matrix"])
    assert c.fingerprint != a.fingerprint
    k = ("pretrained", "embedding", "identity")
    assert c.manifest[k[0]][k[1]][k[2]] != a.manifest[k[0]][k[1]][k[2]]
    # by content: touching does not matter, changing a value does
    d1 = attach_embeddings(_dataset(), **paths["matrix"], identity="content")
    os.utime(m, ns=(st.st_atime_ns, st.st_mtime_ns + 2 * 10**9))
    d2 = attach_embeddings(_dataset(), **paths["matrix"], identity="content")
    assert d1.fingerprint == d2.fingerprint
    arr = np.load(m)
    arr[0, 0] += 1
    np.save(m, arr)
    d3 = attach_embeddings(_dataset(), **paths["matrix"], identity="content")
    assert d3.fingerprint != d1.fingerprint


def test_sequences_of_frame_embeddings_keep_their_lengths(tmp_path):
    per = tmp_path / "seq"
    per.mkdir()
    np.save(per / "s0.npy", np.ones((3, 4), np.float32))
    np.save(per / "s1.npy", np.full((1, 4), 2, np.float32))
    ds = attach_embeddings(_dataset(2), per)
    assert ds.features["embedding"].shape == (2, 3, 4)
    np.testing.assert_array_equal(ds.features["embedding.lengths"], [3, 1])


@pytest.mark.parametrize("setup, match", [
    (lambda t: t / "nothing.npy", "no such file"),
    (lambda t: (np.save(t / "x.npy", np.zeros((2, 3))), t / "x.npy")[1], "needs its song ids"),
    (lambda t: (np.save(t / "y.npy", np.zeros((2, 3))),
                (t / "y.ids.txt").write_text("a\nb\nc\n"), t / "y.npy")[2], "N = 3 rows"),
    (lambda t: (t / "e").mkdir() or t / "e", "no <song id>.npy"),
    (lambda t: ((t / "z.txt").write_text("x"), t / "z.txt")[1], "expected a folder of .npy"),
])
def test_bad_input_is_one_line(tmp_path, setup, match):
    with pytest.raises(DataError, match=match) as e:
        read_embeddings(setup(tmp_path))
    assert "\n" not in str(e.value)


def test_parquet_without_vector_columns_is_one_line(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"song": ["s0"], "name": ["x"]}), tmp_path / "b.parquet")
    with pytest.raises(DataError, match="not numeric: name"):
        read_embeddings(tmp_path / "b.parquet")
    with pytest.raises(DataError, match="no id column 'track'"):
        read_embeddings(tmp_path / "b.parquet", id_col="track")


def test_content_profile_on_embeddings_is_the_closed_form(tmp_path):
    """content-profile with the `embedding` backbone: cosine between a song's standardised
    embedding and the mean over the user's played songs (computed here by hand)."""
    from recbench_builtin.recommenders.content_profile import ContentProfile

    from recbench.testing.fakes import fit_context
    from recbench.testing.worlds import split_songs

    ds = attach_embeddings(_dataset(), **_write_layouts(tmp_path)["matrix"])
    train_songs = np.array([0, 1, 2, 4])
    split = split_songs(ds, train_songs, np.array([], dtype=np.int64),
                        np.array([3], dtype=np.int64))
    feats = load_features(ds, "embedding", split.train_songs, tmp_path / "c")
    ctx = fit_context(ds, split, features=feats)
    model = ContentProfile(backbone="embedding")
    model.fit(ctx)
    e = np.array([[1, 0], [0, 2], [3, 1], [0, 0], [-1, 1]], dtype=np.float64)
    z = (e - e[train_songs].mean(0)) / e[train_songs].std(0)  # load_features' standardising
    z = (z - z[train_songs].mean(0)) / z[train_songs].std(0)  # content-profile's
    z[3] = 0.0  # no embedding
    train = ctx.train.toarray() > 0
    train[:, 3] = False
    prof = (train @ z) / train.sum(1, keepdims=True)
    want = (prof / np.linalg.norm(prof, axis=1, keepdims=True)) @ (
        z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).T
    np.testing.assert_allclose(model.score(np.arange(3), np.arange(5)), want, atol=1e-5)


def test_list_says_which_features_each_backbone_reads():
    from test_cli import recbench

    out = recbench("list", "--kind", "backbone", "--json", check=0).stdout
    kinds = {e["name"]: (e["input_kind"], e["learnable"]) for e in json.loads(out)}
    assert kinds["embedding"] == ("embedding", False)
    assert kinds["embedding-mlp"] == ("embedding", True)
    assert kinds["hear"] == ("waveform", False) and kinds["conv1d"] == ("logmel", True)
