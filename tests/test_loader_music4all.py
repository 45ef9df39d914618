"""The `music4all` loader on a fixture in the published Music4All / Music4All-Onion layout
(tab-separated *.csv with headers, audios/<id>.mp3, Onion id_<feature>.tsv), one
malformed row in each file."""

from __future__ import annotations

import bz2
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import real_datasets as RD  # noqa: E402
from recbench_builtin.datasets import music4all  # noqa: E402

from recbench.components import LoadContext  # noqa: E402
from recbench.errors import DataError  # noqa: E402

SONGS = ["0009fFIM1eYThaPg", "0010xmHR6UICBOYT", "002Jyd0vN4HyCpqL", "006TYKNjNxWjfKjy",
         "007LIJOPQ4Sb98qV", "00ARyNFVAAB2nqnW"]
S = dict(zip("abcdef", SONGS))
# user -> [(song, "YYYY-MM-DD HH:MM")] ; u1 has two sessions (a 3-hour pause)
HISTORY = {
    "user_007XIjOr": [("a", "2019-02-20 01:00"), ("b", "2019-02-20 01:04"),
                      ("a", "2019-02-20 04:10"), ("c", "2019-02-20 04:13")],
    "user_00VRVX4F": [("b", "2019-03-01 12:00"), ("d", "2019-03-01 12:03"),
                      ("a", "2019-03-01 12:07")],
    "user_01Bk1jzt": [("e", "2019-01-05 08:00"), ("a", "2019-01-05 08:04"),
                      ("f", "2019-01-05 08:09")],
    "user_02Z8TmWk": [("c", "2019-04-11 18:30"), ("b", "2019-04-11 18:33"),
                      ("d", "2019-04-11 18:36"), ("a", "2019-04-11 18:40")],
}
GENRES = {"a": "rock,indie rock", "b": "pop", "c": "rock", "d": "jazz,blues", "e": "pop,dance",
          "f": "rock"}
TAGS = {"a": "rock,guitar,90s", "b": "pop,female vocalists", "c": "rock,guitar",
        "d": "jazz", "e": "pop,dance", "f": "rock,live"}


def _w(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_music4all(root: Path, onion: bool = False) -> Path:
    """The fixture; `onion`: events in userid_trackid_timestamp.tsv.bz2 and an Onion
    feature file instead of listening_history.csv. Song f has no clip."""
    root.mkdir(parents=True)
    ev = [("user_id\ttrack_id\ttimestamp" if onion else "user\tsong\ttimestamp")]
    for u, plays in HISTORY.items():
        ev += [f"{u}\t{S[s]}\t{t}" + (":00" if onion else "") for s, t in plays]
    ev.insert(3, f"user_02Z8TmWk\t{S['a']}\tyesterday")  # a timestamp that does not parse
    if onion:
        (root / "userid_trackid_timestamp.tsv.bz2").write_bytes(
            bz2.compress(("\n".join(ev) + "\n").encode()))
        feat = ["id\t" + "\t".join(f"ivec{i}" for i in range(4))]
        feat += [f"{S[k]}\t" + "\t".join(f"{j + i * 0.5}" for i in range(4))
                 for j, k in enumerate("abcdef")]
        feat.insert(2, f"{S['b']}\t1\t2\tNaN?\t4")
        _w(root / "id_ivec256.tsv", feat)
    else:
        _w(root / "listening_history.csv", ev)
    info = ["id\tartist\tsong\talbum_name"] + [
        f"{S[k]}\tArtist {k.upper() if k != 'f' else 'A'}\tSong {k}\tAlbum {k}"
        for k in "abcdef"]
    info.insert(2, f"{S['b']}\tonly two fields")
    _w(root / "id_information.csv", info)
    genres = ["id\tgenres"] + [f"{S[k]}\t{g}" for k, g in GENRES.items()]
    genres.insert(4, "\trock")  # an empty id
    _w(root / "id_genres.csv", genres)
    tags = ["id\ttags"] + [f"{S[k]}\t{t}" for k, t in TAGS.items()]
    tags.insert(5, f"{S['d']}\tjazz\textra field")
    _w(root / "id_tags.csv", tags)
    meta = ["id\tspotify_id\tpopularity\trelease\tdanceability\tenergy\tkey\tmode\tvalence\t"
            "tempo\tduration_ms"]
    meta += [f"{S[k]}\tsp{k}\t{40 + j}\t{1990 + j}\t0.5\t0.{j}\t{j}\t1\t0.3\t120.0\t2000{j}"
             for j, k in enumerate("abcdef") if k != "e"]
    meta.insert(5, f"{S['e']}\tspe\tpopular\t1994\t0.5\t0.4\t4\t1\t0.3\t120.0\t20004")
    _w(root / "id_metadata.csv", meta)
    for j, k in enumerate("abcde"):
        RD.write_wav(root / "audios" / f"{S[k]}.mp3", 220.0 * (j + 1), sr=16000)
    return root


@pytest.fixture
def root(tmp_path):
    return write_music4all(tmp_path / "music4all")


def load(root, **opts):
    return music4all.Music4AllDataset(root=str(root), **opts).load(
        LoadContext(cache_dir=str(root)))


def test_events_sessions_counts_and_dropped_song(root):
    ds = load(root)
    assert ds.user_ids.tolist() == sorted(HISTORY)
    assert ds.song_ids.tolist() == SONGS[:5]  # f has no clip: dropped, named
    assert ds.manifest["dropped_songs"][0]["song"] == S["f"]
    assert ds.manifest["dropped"]["events_of_dropped_songs"] == 1
    ev = ds.events
    assert len(ev) == sum(len(p) for p in HISTORY.values()) - 1
    assert not ev.skipped.any()
    u1 = ev.sessions_of(0)
    assert [len(s) for s in u1] == [2, 2]  # split at the 3-hour pause
    assert ev.timestamp[u1[0][0]] == np.datetime64("2019-02-20T01:00", "s").astype(float)
    a = SONGS.index(S["a"])
    assert ds.counts[0, a] == 2 and ds.counts.sum() == len(ev)
    assert len(ds.audio) == 5 and ds.audio.paths[0].endswith(f"{S['a']}.mp3")
    assert ds.audio.waveform(0).shape[0] > 0


def test_tags_genres_categories_metadata(root):
    ds = load(root)
    tags = dict(zip(ds.tag_names, ds.tags.toarray().T))
    assert tags["guitar"].tolist() == [1, 0, 1, 0, 0]
    g = ds.song_categories["genre"]
    assert [ds.category_names["song:genre"][c] for c in g] == ["rock", "pop", "rock",
                                                                "jazz", "pop"]
    assert ds.category_names["song:album"] == [f"Album {k}" for k in "abcde"]
    assert ds.song_categories["artist"].tolist() == [0, 1, 2, 3, 4]
    meta = ds.modalities["metadata"]
    assert meta.shape == (5, 9) and meta[2, 1] == 1992  # release of c
    assert meta[4].sum() == 0  # e's metadata row was malformed: zeros, counted
    assert ds.manifest["modality.metadata"]["songs_without_row"] == 1
    both = load(root, tag_source="both")
    assert both.manifest["dropped"]["malformed_lines"] == 5  # each file counted once
    assert "genre:jazz" in both.tag_names and "tag:jazz" in both.tag_names


def test_one_malformed_row_per_file_is_counted_and_named(root):
    m = load(root).manifest
    assert m["dropped"]["malformed_lines"] == 5
    ex = " ".join(m["examples"]["malformed_lines"])
    assert "listening_history.csv:4: timestamp is not a date" in ex
    assert "id_information.csv:3: expected 4 tab-separated fields, got 2" in ex
    assert "id_genres.csv:5: empty id" in ex
    assert "id_tags.csv:6: expected 2 tab-separated fields, got 3" in ex
    assert "id_metadata.csv:6: popularity is not a finite number" in ex


def test_onion_layout(tmp_path):
    root = write_music4all(tmp_path / "onion", onion=True)
    ds = load(root, features=["id_ivec256.tsv"], audio_dir="")
    assert ds.manifest["events_file"] == "userid_trackid_timestamp.tsv.bz2"
    assert ds.song_ids.tolist() == SONGS and ds.audio is None
    iv = ds.modalities["ivec256"]
    assert iv.shape == (6, 4) and iv[5].tolist() == [5, 5.5, 6, 6.5]
    assert iv[1].tolist() == [1, 1.5, 2, 2.5]  # the malformed b row skipped, the good one kept
    # one per file: events, information, genres, tags, metadata and the feature file
    # (the first five named; examples are capped at five per kind)
    assert ds.manifest["dropped"]["malformed_lines"] == 6


def test_missing_files_are_one_line_errors(root, tmp_path):
    (root / "listening_history.csv").unlink()
    with pytest.raises(DataError, match=r"dataset\.music4all\.events: expected listening "
                                        r"events at .*listening_history\.csv"):
        music4all.Music4AllDataset(root=str(root)).validate()
    with pytest.raises(DataError, match=r"dataset\.music4all\.features: expected an Onion "
                                        r"feature file at .*id_x\.tsv \(not found\)"):
        music4all.Music4AllDataset(root=str(root), events="id_tags.csv",
                                   features=["id_x.tsv"]).validate()
    (root / "id_genres.csv").unlink()
    with pytest.raises(DataError, match=r"dataset\.music4all\.tag_source: expected the genres "
                                        r"of each song at .*id_genres\.csv \(not found\)"):
        music4all.Music4AllDataset(root=str(root), events="id_tags.csv",
                                   tag_source="both").validate()
    with pytest.raises(DataError, match=r"dataset\.music4all\.audio_dir: expected the clips"):
        music4all.Music4AllDataset(root=str(root), events="id_tags.csv",
                                   audio_dir="clips").validate()


@pytest.mark.slow
def test_suite_runs_end_to_end(root, tmp_path, monkeypatch):
    rc, out, err = RD.run_suite(tmp_path, monkeypatch, music4all, root, options="",
                                split="cold-item",
                                split_options="valid_share = 0.2\ntest_share = 0.4")
    assert rc == 0, err
    rows = RD.rows_of(out)
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(0.0 <= r["metrics"]["auc"] <= 1.0 for r in rows)
    assert rows[0]["dataset"]["n_songs"] == 5
    RD.check_leaderboard(out, "recommendation", "music4all", "cold-item")
