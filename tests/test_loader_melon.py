"""The `melon` loader on a fixture in the published Melon Playlist Dataset layout
(train.json, song_meta.json, genre_gn_all.json, arena_mel/<id // 1000>/<id>.npy of 48 mel
bands x frames), one malformed entry in each file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import real_datasets as RD  # noqa: E402
from recbench_builtin.datasets import melon  # noqa: E402

from recbench.components import LoadContext  # noqa: E402
from recbench.errors import DataError  # noqa: E402

SONGS = [7, 512, 1003, 1999, 2500, 3001, 4096, 5000, 6021, 7777, 8888, 9999, 10500, 12345]
MISSING_MEL, BAD_MEL = 9999, 12345
GENRES = ["GN0100", "GN0900"]  # ballad (low band energy), pop (high band energy)


def genre_of(s: int) -> str:
    return GENRES[SONGS.index(s) % 2]


def write_melon(root: Path) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    playlists = []
    for p in range(16):
        g = p % 2  # a playlist keeps to one genre, plus one song of the other
        own = [s for s in SONGS if genre_of(s) == GENRES[g]]
        other = [s for s in SONGS if genre_of(s) != GENRES[g]]
        songs = list(rng.choice(own, 4, replace=False)) + [int(rng.choice(other))]
        playlists.append({"tags": ["tag%d" % g], "id": 1000 + p, "plylst_title": f"pl {p}",
                          "songs": [int(s) for s in songs], "like_cnt": p,
                          "updt_date": "2013-12-19 18:36:19.000"})
    playlists.insert(3, {"id": "x", "songs": [7, 512]})  # malformed: id not an integer
    (root / "train.json").write_text(json.dumps(playlists, ensure_ascii=False))
    meta = [{"id": s, "song_name": f"song {s}", "album_id": s // 1000,
             "album_name": f"album {s // 1000}", "artist_id_basket": [s % 5],
             "artist_name_basket": [f"artist {s % 5}"], "song_gn_gnr_basket": [genre_of(s)],
             "song_gn_dtl_gnr_basket": [genre_of(s) + "01"], "issue_date": "20140512"}
            for s in SONGS]
    meta.insert(5, {"song_name": "no id"})  # malformed: no id
    (root / "song_meta.json").write_text(json.dumps(meta, ensure_ascii=False))
    (root / "genre_gn_all.json").write_text(json.dumps(
        {"GN0100": "발라드", "GN0900": "POP", "GN1000": None}, ensure_ascii=False))
    for s in SONGS:
        if s == MISSING_MEL:
            continue
        p = root / "arena_mel" / str(s // 1000) / f"{s}.npy"
        p.parent.mkdir(parents=True, exist_ok=True)
        if s == BAD_MEL:
            p.write_bytes(b"not a numpy file")
            continue
        frames = 200 + (s % 7) * 10
        mel = rng.normal(0.0, 0.1, (48, frames))
        band = slice(0, 12) if genre_of(s) == "GN0100" else slice(36, 48)
        mel[band] += 2.0
        np.save(p, mel.astype(np.float16))
    return root


@pytest.fixture
def root(tmp_path):
    return write_melon(tmp_path / "melon")


def load(root, tmp=None, **opts):
    return melon.MelonDataset(root=str(root), **opts).load(
        LoadContext(cache_dir=str(tmp or root.parent / "cache")))


def test_playlists_songs_genres_and_mels(root):
    ds = load(root)
    assert ds.user_ids.tolist() == [str(1000 + p) for p in range(16)]
    written = [p for p in json.loads((root / "train.json").read_text())
               if isinstance(p["id"], int)]
    in_lists = sorted({s for p in written for s in p["songs"]})
    assert ds.song_ids.tolist() == [str(s) for s in in_lists
                                    if s not in (MISSING_MEL, BAD_MEL)]
    dropped = {d["song"]: d["reason"] for d in ds.manifest["dropped_songs"]}
    assert dropped == {str(s): r for s, r in (
        (MISSING_MEL, "no mel-spectrogram file"),
        (BAD_MEL, "not a finite (48, frames) array (shape None)")) if s in in_lists}
    pos = {s: i for i, s in enumerate(ds.song_ids.tolist())}
    for u, p in enumerate(written):
        assert sorted(ds.counts[u].indices.tolist()) == sorted(
            pos[str(s)] for s in set(p["songs"]) if str(s) in pos)
    assert ds.counts.data.tolist() == [1.0] * ds.counts.nnz
    assert ds.tag_names == ["GN0100 발라드", "GN0900 POP"]
    for i, s in enumerate(ds.song_ids.tolist()):
        assert ds.tags[i].indices.tolist() == [GENRES.index(genre_of(int(s)))]
        assert ds.category_names["song:album"][ds.song_categories["album"][i]] == str(
            int(s) // 1000)
    lm, lengths = ds.features["logmel"], ds.features["logmel.lengths"]
    assert lm.dtype == np.float16 and lm.shape[0] == ds.n_songs and lm.shape[2] == 48
    i = ds.song_ids.tolist().index("7")
    assert lengths[i] == 200 + 0 and lm.shape[1] == max(lengths)
    original = np.load(root / "arena_mel" / "0" / "7.npy")
    assert np.array_equal(lm[i, :200], original.T) and not lm[i, 200:].any()
    assert ds.manifest["feature_params"] == {"n_mels": 48, "sample_rate": 16000,
                                             "hop_length": 256}


def test_n_songs_keeps_the_songs_in_most_playlists(root, tmp_path):
    written = [p for p in json.loads((root / "train.json").read_text())
               if isinstance(p["id"], int)]
    freq = {}
    for p in written:
        for s in set(p["songs"]):
            freq[s] = freq.get(s, 0) + 1
    ranked = [s for s in sorted(freq, key=lambda s: (-freq[s], s))
              if s not in (MISSING_MEL, BAD_MEL)]
    ds = load(root, tmp_path / "c", n_songs=5)
    assert ds.song_ids.tolist() == [str(s) for s in sorted(ranked[:5])]
    assert ds.features["logmel"].shape[0] == 5
    i = ds.song_ids.tolist().index(str(sorted(ranked[:5])[0]))
    s = sorted(ranked[:5])[0]
    original = np.load(root / "arena_mel" / str(s // 1000) / f"{s}.npy")
    assert np.array_equal(ds.features["logmel"][i, :original.shape[1]], original.T)


def test_mel_files_enter_the_fingerprint(root, tmp_path):
    a = load(root).fingerprint
    p = root / "arena_mel" / "0" / "7.npy"
    np.save(p, np.load(p) + np.float16(1))
    assert load(root, tmp_path / "c2").fingerprint != a
    assert load(root, tmp_path / "c3", mel_frames=64).features["logmel"].shape[1] == 64


def test_one_malformed_entry_per_file_is_counted_and_named(root):
    m = load(root).manifest
    assert m["dropped"]["malformed_entries"] == 3
    ex = " ".join(m["examples"]["malformed_entries"])
    assert "train.json: entry 4: expected an object with an integer id" in ex
    assert "song_meta.json: entry 6" in ex and "genre_gn_all.json: entry 3 (GN1000)" in ex
    assert m["dropped"]["songs_unreadable_mel"] == 1
    assert m["dropped"]["songs_without_mel_file"] == 1
    with pytest.raises(DataError, match="strict mode"):
        load(root, strict=True)


def test_missing_files_are_one_line_errors(root):
    with pytest.raises(DataError, match=r"dataset\.melon\.playlists: expected a playlist "
                                        r"file at .*val\.json \(not found\)"):
        melon.MelonDataset(root=str(root), playlists=["val.json"]).validate()
    (root / "song_meta.json").write_text("{not json")
    with pytest.raises(DataError, match=r"song_meta\.json: not a JSON file"):
        load(root)
    with pytest.raises(DataError, match=r"dataset\.melon\.mel_dir: expected the unpacked"):
        melon.MelonDataset(root=str(root), mel_dir="mels").validate()


@pytest.mark.slow
def test_suite_runs_end_to_end_with_precomputed_mels(root, tmp_path, monkeypatch):
    models = RD.RECOMMENDATION_MODELS + '\n[[models]]\nname = "content-profile"\n'
    rc, out, err = RD.run_suite(tmp_path, monkeypatch, melon, root, split="cold-item",
                                split_options="valid_share = 0.15\ntest_share = 0.35",
                                models=models)
    assert rc == 0, err
    rows = RD.rows_of(out)
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows), [
        r.get("error") for r in rows]
    assert all(0.0 <= r["metrics"]["auc"] <= 1.0 for r in rows)
    RD.check_leaderboard(out, "recommendation", "melon", "cold-item")
