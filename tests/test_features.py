"""Features: the torch fast path against librosa, caching, failures, standardisation, crops."""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.data import Dataset
from recbench.errors import ConfigError, DataError
from recbench.features import SongFeatures, load_features, logmel, resolve_params


class ListAudio:
    """An AudioSource over in-memory waveforms; raises for songs whose entry is None."""

    def __init__(self, waves, sample_rate, tag="v1"):
        self.waves, self.sample_rate, self.tag, self.calls = waves, sample_rate, tag, 0

    def __len__(self):
        return len(self.waves)

    def identity(self, i):
        return f"{self.tag}:{i}"

    def waveform(self, i):
        self.calls += 1
        if self.waves[i] is None:
            raise OSError(f"cannot decode song {i}")
        return self.waves[i]


def _signal(rng, seconds, sr):
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 2000)
    y = 0.5 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 3.1 * f0 * t)
    return (y + 0.05 * rng.normal(size=len(t))).astype(np.float32)


def _dataset(waves, sr, tag="v1", **kw):
    n = len(waves)
    counts = sp.csr_matrix(np.ones((3, n), dtype=np.float32))
    return Dataset("t", counts, np.array(["a", "b", "c"]), np.array([str(i) for i in range(n)]),
                   audio=ListAudio(waves, sr, tag), **kw)


def _librosa_db(y, p):
    import librosa

    m = librosa.feature.melspectrogram(y=y, sr=p["sample_rate"], n_fft=p["n_fft"],
                                       hop_length=p["hop_length"], n_mels=p["n_mels"],
                                       fmin=p["fmin"], fmax=p["fmax"], power=p["power"])
    return librosa.power_to_db(m, ref=1.0, amin=p["amin"], top_db=None).T


@pytest.mark.parametrize("over", [{}, {"sample_rate": 16000, "n_fft": 512, "hop_length": 256,
                                       "n_mels": 40, "fmin": 50.0, "fmax": 4000.0},
                                  {"power": 1.0, "n_mels": 64}])
def test_fast_logmel_matches_librosa(over):
    p = resolve_params(over)
    rng = np.random.default_rng(0)
    ys = np.stack([_signal(rng, 3.0, p["sample_rate"]) for _ in range(3)])
    fast = logmel(ys, p)
    for y, f in zip(ys, fast):
        ref = _librosa_db(y, p)
        assert f.shape == ref.shape
        np.testing.assert_allclose(f, ref, atol=2e-3)


def test_extract_cache_and_read_back(tmp_path):
    rng = np.random.default_rng(1)
    sr = 16000
    waves = [_signal(rng, s, sr) for s in (3.0, 4.0, 2.0, 3.5)]
    d = _dataset(waves, sr)
    params = {"sample_rate": sr, "n_mels": 32, "window_s": 1.0}
    f = load_features(d, "logmel", [0, 1], tmp_path, params=params, workers=2)
    p = resolve_params(params)
    assert isinstance(f, SongFeatures) and f.kind == "logmel"
    assert f.array.dtype == np.float16 and isinstance(f.array, np.memmap)
    assert f.array.shape == (4, 1 + 4 * sr // 512, 32)
    assert f.lengths.tolist() == [1 + len(w) // 512 for w in waves]
    assert f.window == round(1.0 * sr / 512)
    for i, w in enumerate(waves):
        np.testing.assert_allclose(f.array[i, :f.lengths[i]].astype(np.float32),
                                   _librosa_db(w, p), atol=0.05)  # float16 storage
        assert not np.any(f.array[i, f.lengths[i]:])
    calls = d.audio.calls
    g = load_features(d, "logmel", [0, 1], tmp_path, params=params)
    assert d.audio.calls == calls  # cache hit: no audio read
    assert g.key == f.key
    np.testing.assert_array_equal(np.asarray(g.array), np.asarray(f.array))
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    # new parameters or new audio identities: a new cache entry
    h = load_features(d, "logmel", [0, 1], tmp_path, params={**params, "n_mels": 16})
    assert h.key != f.key and h.array.shape[2] == 16
    d2 = _dataset(waves, sr, tag="v2")
    assert load_features(d2, "logmel", [0, 1], tmp_path, params=params).key != f.key


def test_parallel_equals_serial(tmp_path):
    rng = np.random.default_rng(2)
    waves = [_signal(rng, 1.0, 8000) for _ in range(40)]
    params = {"sample_rate": 8000, "n_mels": 24, "clip_s": 1.0}
    a = load_features(_dataset(waves, 8000), "logmel", range(30), tmp_path / "a", params,
                      workers=1)
    b = load_features(_dataset(waves, 8000), "logmel", range(30), tmp_path / "b", params,
                      workers=2)
    np.testing.assert_array_equal(np.asarray(a.array), np.asarray(b.array))
    np.testing.assert_array_equal(a.mean, b.mean)


def test_failed_songs_are_listed_with_length_zero(tmp_path):
    rng = np.random.default_rng(3)
    waves = [_signal(rng, 1.0, 8000), None, _signal(rng, 1.0, 8000), np.zeros(0, np.float32)]
    f = load_features(_dataset(waves, 8000), "logmel", [0, 1, 2], tmp_path,
                      {"sample_rate": 8000, "n_mels": 16})
    assert f.failed.tolist() == [1, 3]
    assert f.lengths[1] == 0 and f.lengths[3] == 0 and f.lengths[0] > 0
    assert "cannot decode song 1" in f.errors[1] and "empty" in f.errors[3]
    # and survive the cache
    g = load_features(_dataset(waves, 8000), "logmel", [0], tmp_path,
                      {"sample_rate": 8000, "n_mels": 16})
    assert g.failed.tolist() == [1, 3] and g.errors == f.errors


def test_standardisation_uses_training_songs_only(tmp_path):
    rng = np.random.default_rng(4)
    sr = 8000
    waves = [_signal(rng, 1.0 + 0.25 * i, sr) for i in range(6)]
    params = {"sample_rate": sr, "n_mels": 20}
    train = [0, 2, 3]
    f = load_features(_dataset(waves, sr), "logmel", train, tmp_path, params)
    frames = np.concatenate([np.asarray(f.array[s, :f.lengths[s]], dtype=np.float64)
                             for s in train])
    np.testing.assert_allclose(f.mean, frames.mean(axis=0), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(f.std, frames.std(axis=0), rtol=1e-4, atol=1e-4)
    # wildly different test songs leave mean / std untouched
    loud = list(waves)
    for s in (1, 4, 5):
        loud[s] = (waves[s] * 50 + rng.normal(size=len(waves[s]))).astype(np.float32)
    g = load_features(_dataset(loud, sr, tag="loud"), "logmel", train, tmp_path, params)
    assert g.key != f.key
    np.testing.assert_array_equal(g.mean, f.mean)
    np.testing.assert_array_equal(g.std, f.std)
    assert not np.allclose(np.asarray(g.array[1]), np.asarray(f.array[1]))


def test_waveform_kind_resamples(tmp_path):
    import soxr

    rng = np.random.default_rng(5)
    waves = [_signal(rng, 1.0, 16000), _signal(rng, 0.5, 16000)]
    f = load_features(_dataset(waves, 16000), "waveform", [0, 1], tmp_path,
                      {"sample_rate": 8000, "window_s": 0.25})
    assert f.array.shape == (2, 8000, 1) and f.array.dtype == np.float16
    assert f.lengths.tolist() == [8000, 4000] and f.window == 2000
    ref = soxr.resample(waves[1], 16000, 8000)
    np.testing.assert_allclose(f.array[1, :4000, 0].astype(np.float32), ref, atol=1e-3)


def _manual(window, mean, std):
    return (window.astype(np.float32) - mean) / std


def test_crops_and_song_windows():
    rng = np.random.default_rng(6)
    arr = rng.normal(size=(4, 20, 3)).astype(np.float16)
    lengths = np.array([20, 7, 3, 0])
    for s, n in enumerate(lengths):
        arr[s, n:] = 0
    mean = np.array([0.1, -0.2, 0.3], np.float32)
    std = np.array([1.0, 2.0, 0.5], np.float32)
    f = SongFeatures("logmel", arr, lengths, mean, std, window=5)
    c = f.crops(np.array([0, 0, 1, 2, 3]), np.random.default_rng(0))
    assert c.shape == (5, 5, 3) and c.dtype == np.float32
    for row, s in zip(c, [0, 0, 1, 2]):  # each crop is a contiguous window of its song
        ok = [np.allclose(row, _manual(arr[s, t:t + 5], mean, std), atol=1e-6)
              for t in range(max(lengths[s] - 5, 0) + 1)]
        if lengths[s] < 5:  # short song: its frames, then zeros (the training mean)
            ok = [np.allclose(row[:lengths[s]], _manual(arr[s, :lengths[s]], mean, std))
                  and not np.any(row[lengths[s]:])]
        assert any(ok), s
    assert not np.any(c[4])  # missing audio: all zeros
    np.testing.assert_array_equal(c, f.crops(np.array([0, 0, 1, 2, 3]),
                                             np.random.default_rng(0)))
    w, owner = f.song_windows(np.array([2, 0, 1]))
    assert owner.tolist() == [0, 1, 1, 1, 1, 2]
    np.testing.assert_allclose(w[1], _manual(arr[0, 0:5], mean, std), atol=1e-6)
    np.testing.assert_allclose(w[4], _manual(arr[0, 15:20], mean, std), atol=1e-6)
    np.testing.assert_allclose(w[5], _manual(arr[1, 0:5], mean, std), atol=1e-6)
    w2, owner2 = f.song_windows(np.array([0]), max_windows=2)
    assert owner2.tolist() == [0, 0]
    np.testing.assert_allclose(w2[1], _manual(arr[0, 15:20], mean, std), atol=1e-6)


def test_precomputed_features_are_used(tmp_path):
    rng = np.random.default_rng(7)
    arr = rng.normal(size=(3, 10, 4)).astype(np.float32)
    counts = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    d = Dataset("pre", counts, np.array(["a", "b"]), np.array(["x", "y", "z"]),
                features={"logmel": arr})
    f = load_features(d, "logmel", [0, 1], tmp_path, {"window_s": 0.1})
    assert f.array is arr and f.lengths.tolist() == [10, 10, 10]
    np.testing.assert_allclose(f.mean, arr[:2].reshape(-1, 4).mean(axis=0), rtol=1e-5)
    assert not os.listdir(tmp_path) and len(f.failed) == 0
    d.features["logmel.lengths"] = np.array([10, 0, 4])
    g = load_features(d, "logmel", [0, 1], tmp_path, {"window_s": 0.1})
    assert g.failed.tolist() == [1]
    np.testing.assert_allclose(g.mean, arr[0].mean(axis=0), rtol=1e-5)  # song 1 has no frames
    with pytest.raises(DataError, match="no audio"):
        load_features(d, "waveform", [0], tmp_path)


def test_bad_parameters_raise(tmp_path):
    d = _dataset([np.zeros(100, np.float32)], 8000)
    with pytest.raises(ConfigError, match="n_melz"):
        load_features(d, "logmel", [0], tmp_path, {"n_melz": 3})
    with pytest.raises(ConfigError, match="kind"):
        load_features(d, "mfcc", [0], tmp_path)
    with pytest.raises(ConfigError, match="hop_length"):
        resolve_params({"hop_length": 0})


def test_concurrent_callers_extract_once(tmp_path):
    import threading

    rng = np.random.default_rng(8)
    d = _dataset([_signal(rng, 0.5, 8000) for _ in range(6)], 8000)
    params = {"sample_rate": 8000, "n_mels": 16}
    out = []
    threads = [threading.Thread(target=lambda: out.append(
        load_features(d, "logmel", [0, 1], tmp_path, params, workers=1))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 3 and len({f.key for f in out}) == 1
    assert d.audio.calls == 6  # every song decoded once in all


def test_interrupted_extraction_leaves_nothing(tmp_path):
    class Boom(ListAudio):
        def waveform(self, i):
            if i == 2:
                raise KeyboardInterrupt  # not an audio error: aborts the extraction
            return super().waveform(i)

    rng = np.random.default_rng(9)
    d = _dataset([_signal(rng, 0.5, 8000) for _ in range(4)], 8000)
    d.audio = Boom(d.audio.waves, 8000)
    with pytest.raises(KeyboardInterrupt):
        load_features(d, "logmel", [0], tmp_path, {"sample_rate": 8000, "clip_s": 0.5},
                      workers=1)
    assert [n for n in os.listdir(tmp_path) if not n.endswith(".lock")] == []


# --------------------------------------------------------------------------- validation


def test_silent_and_non_finite_songs_are_dropped_and_counted(tmp_path):
    # Old code kept the silent song (a constant -100 dB log-mel entering the statistics)
    # and stored the overflowing song's infinite log-mel: mean and std became NaN/inf.
    rng = np.random.default_rng(11)
    sr = 8000
    loud = _signal(rng, 1.0, sr) * np.float32(1e20)  # |STFT|^2 overflows float32
    waves = [_signal(rng, 1.0, sr), np.zeros(sr, np.float32), loud, _signal(rng, 1.0, sr)]
    params = {"sample_rate": sr, "n_mels": 16}
    d = _dataset(waves, sr)
    f = load_features(d, "logmel", [0, 1, 2, 3], tmp_path, params)
    assert f.failed.tolist() == [1, 2]
    assert f.lengths[1] == 0 and f.lengths[2] == 0 and f.lengths[0] > 0
    assert np.isfinite(f.mean).all() and np.isfinite(f.std).all()
    assert np.isfinite(np.asarray(f.array, dtype=np.float32)).all()
    ref = load_features(_dataset([waves[0], waves[3]], sr), "logmel", [0, 1],
                        tmp_path / "ref", params)
    np.testing.assert_array_equal(f.mean, ref.mean)  # the dropped songs count for nothing
    m = f.manifest
    assert m["n_dropped"] == 2 and m["dropped"] == {"silent": 1, "non_finite_features": 1}
    assert [x["song"] for x in m["dropped_songs"]] == ["1", "2"]
    assert m["cache"]["entry"] == "extracted"
    # and the same from the cache
    g = load_features(_dataset(waves, sr), "logmel", [0], tmp_path, params)
    assert g.failed.tolist() == [1, 2] and g.manifest["dropped"] == m["dropped"]
    assert g.manifest["cache"]["entry"] == "read"


def test_waveform_beyond_float16_is_dropped(tmp_path):
    # Old code stored inf in the float16 waveform cache: NaN standardisation for all.
    rng = np.random.default_rng(12)
    waves = [_signal(rng, 0.5, 8000), _signal(rng, 0.5, 8000) * np.float32(1e6)]
    f = load_features(_dataset(waves, 8000), "waveform", [0, 1], tmp_path,
                      {"sample_rate": 8000})
    assert f.failed.tolist() == [1] and f.manifest["dropped"] == {"non_finite_features": 1}
    assert np.isfinite(f.mean).all() and np.isfinite(f.std).all()


def test_non_finite_precomputed_features_drop_the_song(tmp_path):
    arr = np.ones((3, 5, 2), dtype=np.float16)
    arr[1] = np.arange(10).reshape(5, 2)
    arr[2, 3, 1] = np.nan
    counts = sp.csr_matrix(np.ones((2, 3), dtype=np.float32))
    d = Dataset("p", counts, np.array(["a", "b"]), np.array(["x", "y", "z"]),
                features={"logmel": arr})
    for train in ([0, 1, 2], [0, 1]):  # a NaN in a training song or in another one
        f = load_features(d, "logmel", train, tmp_path)
        assert f.failed.tolist() == [2] and f.lengths.tolist() == [5, 5, 0]
        assert np.isfinite(f.mean).all()
        assert f.manifest["dropped"] == {"non_finite_features": 1}


def _entry(tmp_path, sr=8000):
    rng = np.random.default_rng(13)
    waves = [_signal(rng, 1.0, sr) for _ in range(5)]
    params = {"sample_rate": sr, "n_mels": 16}
    d = _dataset(waves, sr)
    f = load_features(d, "logmel", [0, 1, 2], tmp_path, params)
    good = np.array(f.array)
    npy = os.path.join(tmp_path, f"logmel-{f.key}.npy")
    return d, params, good, npy


def _damage_overwrite(npy):
    with open(npy, "r+b") as fh:  # same size, other bytes after the header
        fh.seek(-2000, os.SEEK_END)
        fh.write(np.full(1000, 7.0, np.float16).tobytes())


def _damage_truncate(npy):
    with open(npy, "r+b") as fh:
        fh.truncate(os.path.getsize(npy) // 2)


def _damage_shape(npy):
    np.save(npy, np.zeros((5, 3, 16), np.float16))


def _damage_npz(npy):
    npz = npy[:-4] + ".npz"
    with open(npz, "r+b") as fh:
        fh.truncate(os.path.getsize(npz) - 50)


@pytest.mark.parametrize("damage", [_damage_overwrite, _damage_truncate, _damage_shape,
                                    _damage_npz])
def test_damaged_cache_entry_is_detected_and_rebuilt(tmp_path, damage, caplog):
    # Old code read an overwritten or reshaped array silently (wrong numbers) and failed
    # with a raw numpy/zipfile traceback on a truncated one.
    import recbench.features as F

    d, params, good, npy = _entry(tmp_path)
    damage(npy)
    F._VERIFIED.clear()  # as a new process would
    calls = d.audio.calls
    with caplog.at_level("WARNING", logger="recbench"):
        g = load_features(d, "logmel", [0, 1, 2], tmp_path, params)
    np.testing.assert_array_equal(np.asarray(g.array), good)
    assert d.audio.calls == calls + 5  # re-extracted
    assert "rebuilt" in g.manifest["cache"] and g.manifest["cache"]["entry"] == "extracted"
    assert any("damaged" in r.getMessage() and "rebuilding" in r.getMessage()
               for r in caplog.records)
    h = load_features(d, "logmel", [0, 1, 2], tmp_path, params)  # now sound: read
    assert h.manifest["cache"]["entry"] == "read" and "rebuilt" not in h.manifest["cache"]
    assert d.audio.calls == calls + 5


def test_checksum_once_per_process_and_file_version(tmp_path, monkeypatch):
    import recbench.features as F

    d, params, good, npy = _entry(tmp_path)
    sums = []
    real = F._checksum
    monkeypatch.setattr(F, "_checksum", lambda p: sums.append(p) or real(p))
    f = load_features(d, "logmel", [0, 1, 2], tmp_path, params)
    assert sums == [] and "earlier in this process" in f.manifest["cache"]["verified"]
    F._VERIFIED.clear()
    f = load_features(d, "logmel", [0, 1, 2], tmp_path, params)
    assert sums == [npy] and "sha256 checksum" in f.manifest["cache"]["verified"]
    # an in-place overwrite in this process: a new mtime, so the checksum runs again
    _damage_overwrite(npy)
    st = os.stat(npy)
    os.utime(npy, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    g = load_features(d, "logmel", [0, 1, 2], tmp_path, params)
    assert "rebuilt" in g.manifest["cache"]
    np.testing.assert_array_equal(np.asarray(g.array), good)


def test_cache_entry_lock_excludes_another_holder(tmp_path):
    """One extraction per cache entry: while another holder has the entry's lock, the
    cache waits for it (checked with an independent filelock holder)."""
    import threading

    import filelock

    from recbench.features import _file_lock

    path = str(tmp_path / "entry.lock")
    held = filelock.FileLock(path)
    held.acquire()
    got = threading.Event()

    def worker():
        with _file_lock(path):
            got.set()

    t = threading.Thread(target=worker)
    t.start()
    assert not got.wait(0.3)
    held.release()
    assert got.wait(10)
    t.join()


def test_authors_front_end_matches_librosa_log10_1p_10x():
    """Magnitude mel + log10(1 + 10 x) (the authors' mp3s_to_mel.py) against librosa."""
    import librosa

    p = resolve_params({"power": 1.0, "compression": "log10-1p-10x"})
    rng = np.random.default_rng(11)
    ys = np.stack([_signal(rng, 3.0, 22050) for _ in range(2)])
    fast = logmel(ys, p)
    for y, f in zip(ys, fast):
        ref = np.log10(1 + 10 * librosa.feature.melspectrogram(
            y=y, sr=22050, n_fft=1024, hop_length=512, n_mels=128, power=1.0)).T
        assert f.shape == ref.shape == (1 + len(y) // 512, 128)
        np.testing.assert_allclose(f, ref, rtol=1e-5, atol=1e-5)
    # and it is not the dB front end
    assert not np.allclose(fast, logmel(ys, resolve_params({"power": 1.0})), atol=1.0)


def test_new_front_end_params_keep_default_cache_key_and_validate(tmp_path):
    from recbench.data import hash_arrays
    from recbench.features import _FORMAT, cache_key

    d = _dataset([np.ones(800, np.float32)], 8000)
    p = resolve_params({"sample_rate": 8000})
    # the key of default parameters is computed exactly as before these parameters existed
    old = {k: v for k, v in p.items()
           if k not in ("compression", "normalise", "window_frames")}
    assert cache_key(d, "logmel", p) == hash_arrays(_FORMAT, "logmel", sorted(old.items()),
                                                    8000, np.array(["v1:0"]))
    # normalisation and window length do not change what is extracted; compression does
    assert cache_key(d, "logmel", {**p, "normalise": "global", "window_frames": 9}) == \
        cache_key(d, "logmel", p)
    assert cache_key(d, "logmel", {**p, "compression": "log10-1p-10x"}) != \
        cache_key(d, "logmel", p)
    for bad in ({"compression": "log"}, {"normalise": "bin"}, {"window_frames": 0},
                {"window_frames": 2.5}):
        with pytest.raises(ConfigError, match="features."):
            resolve_params(bad)


def test_global_normalisation_and_window_frames(tmp_path):
    """normalise = "global": one scalar mean/std over every value of the training songs;
    window_frames sets the window in frames (the authors' 130)."""
    rng = np.random.default_rng(12)
    sr = 8000
    waves = [_signal(rng, 1.0 + 0.5 * i, sr) for i in range(4)]
    train = [0, 2]
    params = {"sample_rate": sr, "n_mels": 16, "power": 1.0, "compression": "log10-1p-10x",
              "normalise": "global", "window_frames": 7}
    f = load_features(_dataset(waves, sr), "logmel", train, tmp_path, params)
    values = np.concatenate([np.asarray(f.array[s, :f.lengths[s]], dtype=np.float64).ravel()
                             for s in train])
    assert f.window == 7
    np.testing.assert_allclose(f.mean, np.full(16, values.mean()), rtol=1e-5)
    np.testing.assert_allclose(f.std, np.full(16, values.std()), rtol=1e-4)
    per_bin = load_features(_dataset(waves, sr), "logmel", train, tmp_path,
                            {**params, "normalise": "per-bin", "window_frames": None})
    assert per_bin.key == f.key  # same cache entry, other statistics
    assert per_bin.window == round(3.0 * sr / 512)
    assert np.ptp(per_bin.mean) > 0.01 and np.ptp(f.mean) == 0.0
    # the authors' window: 130 frames at hop 512 (window_s would give 129 for 3 s)
    from recbench.features import window_steps

    assert window_steps("logmel", resolve_params({"window_frames": 130})) == 130
    assert window_steps("waveform", resolve_params({"window_frames": 130})) == 130 * 512
