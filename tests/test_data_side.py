"""The Dataset side-information contract of issue 12: optional parts, fingerprint, Events."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.data import Dataset, Events, hash_arrays


def _old_fingerprint(user_ids, song_ids, counts, tags, tag_names, audio_ids) -> str:
    """The fingerprint formula before side parts existed, written out independently."""
    h = hashlib.sha256()

    def add(part):
        if part is None:
            h.update(b"<none>")
        elif sp.issparse(part):
            m = part.tocsr(copy=True)
            m.sum_duplicates()
            h.update(repr(m.shape).encode())
            h.update(m.indptr.astype(np.int64).tobytes())
            h.update(m.indices.astype(np.int64).tobytes())
            h.update(m.data.astype(np.float64).tobytes())
        elif isinstance(part, np.ndarray) and part.dtype.kind in "OUS":
            h.update("\x1f".join(map(str, part.tolist())).encode())
        elif isinstance(part, list):
            h.update(b"[")
            h.update(hash_arrays(*part).encode())
            h.update(b"]")
        else:
            raise AssertionError(type(part))
        h.update(b"\x1e")

    for p in (user_ids, song_ids, counts, tags, tag_names, audio_ids):
        add(p)
    return h.hexdigest()[:16]


def _base(**side) -> Dataset:
    counts = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    tags = sp.csr_matrix(np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32))
    return Dataset(name="d", counts=counts, user_ids=np.array(["u0", "u1"]),
                   song_ids=np.array(["s0", "s1", "s2"]), tags=tags, tag_names=["a", "b"],
                   **side)


def _events() -> Events:
    return Events(user=np.array([0, 0, 1], dtype=np.int64),
                  song=np.array([0, 2, 1], dtype=np.int64),
                  timestamp=np.array([1.0, 2.0, 1.5]),
                  session=np.array([0, 0, 1], dtype=np.int64),
                  skipped=np.array([False, True, False]))


def _full() -> dict:
    return dict(user_features=np.array([[0.5, 1.0], [0.0, -1.0]], dtype=np.float32),
                user_feature_names=["age", "reg_year"],
                user_categories={"country": np.array([0, -1], dtype=np.int64)},
                song_categories={"artist": np.array([0, 0, 1], dtype=np.int64)},
                category_names={"song:artist": ["A", "B"]},
                modalities={"tokens": sp.csr_matrix(np.eye(3, dtype=np.float32))},
                events=_events())


def test_fingerprint_without_side_parts_is_the_old_one():
    d = _base()
    expected = _old_fingerprint(d.user_ids, d.song_ids, d.counts, d.tags, ["a", "b"], None)
    assert d.fingerprint == expected
    assert "side" not in d.summary()
    assert set(d.summary()) == {"name", "fingerprint", "synthetic", "n_users", "n_songs",
                                "n_interactions"}


def test_fingerprint_with_side_parts_changes_when_any_part_changes():
    ref = _base(**_full())
    assert ref.fingerprint != _base().fingerprint
    assert _base(**_full()).fingerprint == ref.fingerprint  # deterministic
    assert ref.summary()["side"] == ["user_features", "user_categories", "song_categories",
                                     "modalities", "events"]

    def changed(mutate) -> str:
        side = _full()
        mutate(side)
        return _base(**side).fingerprint

    mutations = [
        lambda s: s["user_features"].__setitem__((0, 0), 0.25),
        lambda s: s.__setitem__("user_feature_names", ["age", "year"]),
        lambda s: s["user_categories"]["country"].__setitem__(1, 3),
        lambda s: s["user_categories"].__setitem__("gender", np.array([0, 1])),
        lambda s: s["song_categories"]["artist"].__setitem__(2, 0),
        lambda s: s.__setitem__("song_categories", {"genre": np.array([0, 0, 1])}),
        lambda s: s.__setitem__("category_names", {"song:artist": ["A", "C"]}),
        lambda s: s.__setitem__("modalities", {"tokens": sp.csr_matrix(2 * np.eye(3))}),
        lambda s: s["events"].skipped.__setitem__(0, True),
        lambda s: s["events"].timestamp.__setitem__(2, 9.0),
        lambda s: s["events"].session.__setitem__(2, 7),
        lambda s: s.__setitem__("events", None),
    ]
    prints = [changed(m) for m in mutations]
    assert ref.fingerprint not in prints
    assert len(set(prints)) == len(prints)


def test_each_part_alone_is_listed_and_changes_the_fingerprint():
    for key, name in [("user_features", "user_features"), ("user_categories", "user_categories"),
                      ("song_categories", "song_categories"), ("modalities", "modalities"),
                      ("events", "events")]:
        d = _base(**{key: _full()[key]})
        assert d.side_parts() == [name]
        assert d.summary()["side"] == [name]
        assert d.fingerprint != _base().fingerprint


def test_events_validate_accepts_a_good_log_and_sessions_of():
    ev = _events()
    ev.validate(2, 3)
    assert len(ev) == 3
    sessions = ev.sessions_of(0)
    assert [s.tolist() for s in sessions] == [[0, 1]]
    assert [s.tolist() for s in ev.sessions_of(1)] == [[2]]
    assert ev.sessions_of(5) == []
    _base(**_full()).validate_side()


@pytest.mark.parametrize("mutate, message", [
    (lambda e: setattr(e, "song", np.array([0, 3, 1])),
     "events.song[1] = 3: expected a position in [0, 3)"),
    (lambda e: setattr(e, "user", np.array([0, 0, -1])), "events.user[2] = -1"),
    (lambda e: setattr(e, "skipped", np.array([True, False])), "events.skipped: expected length 3"),
    (lambda e: setattr(e, "skipped", np.array([1, 0, 0])), "events.skipped: expected dtype kind"),
    (lambda e: setattr(e, "timestamp", np.array([2.0, 1.0, 1.5])),
     "events[1]: expected events sorted by (user, timestamp)"),
    (lambda e: setattr(e, "user", np.array([1, 0, 0])), "events[1]: expected events sorted"),
    (lambda e: setattr(e, "timestamp", np.array([1.0, np.nan, 1.5])),
     "events.timestamp[1]: expected a finite"),
    (lambda e: setattr(e, "session", np.array([0, 0, 0])),
     "events.session: expected ids unique per user session"),
    (lambda e: setattr(e, "session", [0, 0, 1]), "events.session: expected a 1-D numpy array"),
])
def test_events_validate_one_line_errors(mutate, message):
    ev = _events()
    mutate(ev)
    with pytest.raises(ValueError) as err:
        ev.validate(2, 3)
    text = str(err.value)
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize("side, message", [
    ({"user_features": np.zeros((3, 2), dtype=np.float32)},
     "user_features: expected 2 rows (one per user), got 3"),
    ({"user_features": np.zeros((2, 2), dtype=np.float32),
     "user_feature_names": ["a"]}, "user_features: expected users x F"),
    ({"song_categories": {"genre": np.array([0, 1])}},
     "song_categories['genre']: expected 3 rows (one per song)"),
    ({"user_categories": {"country": np.array([0, -2])}},
     "user_categories['country']: expected 1-D integer codes"),
    ({"modalities": {"tokens": sp.csr_matrix((4, 5))}}, "modalities['tokens']: expected 3 rows"),
])
def test_validate_side_one_line_errors(side, message):
    with pytest.raises(ValueError) as err:
        _base(**side).validate_side()
    assert message in str(err.value)
    assert "\n" not in str(err.value)
