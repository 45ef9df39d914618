"""Speed of audio feature extraction and of the feature cache.

Run with `pytest tests/benchmarks --benchmark-only`. Two comparisons, each timed in one run
with alternating rounds (the reference in the untimed setup), so that load changes on a
shared machine hit both sides alike:

1. log-mel of one 30-s clip at 22,050 Hz (n_fft 1024, hop 512, 128 mels, power 2, dB with
   amin 1e-10): ``recbench.features.logmel`` (torch.stft + a cached Slaney mel matrix) vs
   ``librosa.power_to_db(librosa.feature.melspectrogram(...), ref=1, top_db=None)``.
   Both on one thread (torch intra-op and BLAS), as extraction runs one song per thread.
2. the feature cache, for 32 songs x 30 s from two sources: 30-s MP3 files at 44.1 kHz
   stereo (the MSD previews' format; decoding and resampling to 22,050 Hz are part of
   extraction) and waveforms held in memory (no decoding: the STFT path alone, a lower
   bound). "extraction" = ``load_features`` into an empty cache (default workers);
   "cache read" = ``load_features`` on the finished cache
   (memmap + per-song statistics) followed by ``song_windows`` of every song, i.e. all
   songs' arrays read once and standardised into consecutive 3-s float32 windows, as
   embedding songs does. The page cache is warm (the entry was just written). A lighter
   read, ``load_features`` + a plain float16 copy of every song's array, is timed too.

Speed is a measurement, not an assertion: figures and ratios go into ``extra_info`` and
are printed; only correctness is asserted (log-mel equal to librosa's within 1e-3 dB, the
cache read returns what extraction stored).
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest
import scipy.sparse as sp

pytestmark = pytest.mark.benchmark

SR, CLIP_S = 22_050, 30.0
N_SONGS = 32
CACHE_TARGET = 20.0  # cache read at least 20x faster than extraction


def _report(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


def _clip(seed: int) -> np.ndarray:
    """A 30-s float32 clip at 22,050 Hz: noise plus a few tones (speed is content-blind)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(CLIP_S * SR), dtype=np.float32) / SR
    y = 0.05 * rng.standard_normal(t.size).astype(np.float32)
    for f in rng.uniform(60, 4000, 4):
        y += np.float32(0.05) * np.sin(np.float32(2 * np.pi * f) * t)
    return y


class _MemoryAudio:
    """An AudioSource over waveforms held in memory (no decoding cost)."""

    sample_rate = SR

    def __init__(self, waves: list[np.ndarray]):
        self.waves = waves

    def __len__(self) -> int:
        return len(self.waves)

    def identity(self, i: int) -> str:
        return f"bench-memory:{i}"

    def waveform(self, i: int) -> np.ndarray:
        return self.waves[i]


@pytest.fixture()
def one_thread():
    """torch intra-op and BLAS on one thread for the duration of a test."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


def test_bench_logmel_vs_librosa(benchmark, one_thread, capsys):
    """One 30-s clip: recbench's log-mel vs librosa's, same parameters, one thread each."""
    import librosa

    from recbench.features import logmel, resolve_params

    p = resolve_params(None)  # the paper's: 22,050 Hz, n_fft 1024, hop 512, 128 mels
    y = _clip(0)

    def ref():
        m = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=p["n_fft"],
                                           hop_length=p["hop_length"], n_mels=p["n_mels"],
                                           power=p["power"])
        return librosa.power_to_db(m, ref=1.0, amin=p["amin"], top_db=None).T

    ref_times: list[float] = []
    ref_cpu: list[float] = []
    ours_cpu: list[float] = []
    ref_out: list[np.ndarray] = []

    def setup():  # untimed: librosa on the same clip right before each timed round
        c0, t0 = time.thread_time(), time.perf_counter()
        ref_out[:] = [ref()]
        ref_times.append(time.perf_counter() - t0)
        ref_cpu.append(time.thread_time() - c0)

    def ours_fn():
        c0 = time.thread_time()
        out = logmel(y[None], p)[0]
        ours_cpu.append(time.thread_time() - c0)
        return out

    ours = benchmark.pedantic(ours_fn, setup=setup, rounds=25, warmup_rounds=2, iterations=1)
    assert ours.shape == ref_out[0].shape == (1 + y.size // p["hop_length"], p["n_mels"])
    max_diff = float(np.abs(ours - ref_out[0]).max())
    assert max_diff < 1e-3

    ours_s, ref_s = benchmark.stats.stats.min, min(ref_times[2:] or ref_times)
    ratio = ref_s / ours_s
    cpu_ratio = min(ref_cpu) / min(ours_cpu)  # one thread: CPU time is the steadier figure
    benchmark.extra_info.update(ours_ms=round(ours_s * 1e3, 2), librosa_ms=round(ref_s * 1e3, 2),
                                speedup_vs_librosa=round(ratio, 2),
                                cpu_time_speedup=round(cpu_ratio, 2),
                                clips_per_s=round(1 / ours_s, 1),
                                librosa_clips_per_s=round(1 / ref_s, 1),
                                max_abs_diff_db=max_diff, threads=1)
    _report(capsys, f"log-mel 30-s clip @22,050 Hz, 1 thread: recbench {ours_s * 1e3:.2f} ms "
                    f"({1 / ours_s:.0f} clips/s), librosa {ref_s * 1e3:.2f} ms "
                    f"({1 / ref_s:.0f} clips/s) -> {ratio:.2f}x faster (CPU time "
                    f"{cpu_ratio:.2f}x); max diff "
                    f"{max_diff:.1e} dB")


def _mp3_audio(folder) -> object:
    """N_SONGS 30-s MP3 files at 44.1 kHz stereo (the format of the MSD previews), read
    through recbench's FileAudioSource at 22,050 Hz. One clip is encoded (slow) and copied:
    each path is its own song to the cache, and decoding costs the same."""
    import soundfile as sf

    from recbench.audio import FileAudioSource

    rng = np.random.default_rng(0)
    sr = 44_100
    t = np.arange(int(CLIP_S * sr)) / sr
    stereo = np.stack([0.1 * np.sin(2 * np.pi * f * t) + 0.03 * rng.standard_normal(t.size)
                       for f in (220.0, 330.0)], axis=1).astype(np.float32)
    first = folder / "song0.mp3"
    sf.write(first, stereo, sr, format="MP3")
    paths = [first]
    for i in range(1, N_SONGS):
        paths.append(folder / f"song{i}.mp3")
        shutil.copyfile(first, paths[-1])
    return FileAudioSource(paths, SR)


@pytest.mark.parametrize("source", ["mp3", "memory"])
def test_bench_cache_read_vs_extraction(benchmark, tmp_path, source, capsys):
    """Reading every song's windows from the cache vs extracting the same songs."""
    from recbench.data import Dataset
    from recbench.features import default_workers, load_features

    if source == "mp3":
        (tmp_path / "audio").mkdir()
        audio = _mp3_audio(tmp_path / "audio")
    else:
        audio = _MemoryAudio([_clip(i) for i in range(N_SONGS)])
    ds = Dataset("bench-audio", sp.csr_matrix((2, N_SONGS), dtype=np.float32),
                 np.array(["u0", "u1"]), np.array([f"s{i}" for i in range(N_SONGS)]),
                 audio=audio, synthetic=True)
    songs = np.arange(N_SONGS)
    train = songs[: N_SONGS * 7 // 10]
    extract_times: list[float] = []
    current: list = []  # the cache folder last extracted into
    reads: list[int] = []  # one entry per cache read done so far
    rounds, extract_every = 15, 5

    def setup():  # untimed: a fresh extraction before every 5th cache-read round
        if len(extract_times) * extract_every > len(reads):
            return
        if current:
            shutil.rmtree(current[0], ignore_errors=True)
        cache = tmp_path / f"cache{len(extract_times)}"
        t0 = time.perf_counter()
        feats = load_features(ds, "logmel", train, cache)
        extract_times.append(time.perf_counter() - t0)
        assert feats.failed.size == 0
        current[:] = [cache]

    def cache_read():
        reads.append(1)
        feats = load_features(ds, "logmel", train, current[0])
        return feats, feats.song_windows(songs)

    feats, (windows, owner) = benchmark.pedantic(cache_read, setup=setup, rounds=rounds,
                                                 warmup_rounds=1, iterations=1)
    n_win = feats.lengths // feats.window
    assert windows.shape == (int(n_win.sum()), feats.window, feats.n_channels)
    np.testing.assert_array_equal(np.bincount(owner), n_win)
    np.testing.assert_allclose(windows[0], feats.standardise(feats.array[0, :feats.window]))

    raw_s = []  # the lighter read: load_features + a plain float16 copy of every array
    for _ in range(5):
        t0 = time.perf_counter()
        raw = np.array(load_features(ds, "logmel", train, current[0]).array)
        raw_s.append(time.perf_counter() - t0)
    assert raw.shape == feats.array.shape

    read_s, extract_s = benchmark.stats.stats.min, min(extract_times)
    ratio = extract_s / read_s
    mb = windows.nbytes / 2 / 1e6  # float16 bytes read from the cache
    benchmark.extra_info.update(
        source=source, songs=N_SONGS, clip_s=CLIP_S, extraction_s=round(extract_s, 3),
        extraction_ms_per_song=round(extract_s * 1e3 / N_SONGS, 2),
        extraction_workers=default_workers(), cache_read_s=round(read_s, 4),
        cache_read_mb_per_s=round(mb / read_s), windows=len(windows),
        speedup=round(ratio, 1), target_speedup=CACHE_TARGET, extractions=len(extract_times),
        raw_read_s=round(min(raw_s), 4), raw_read_speedup=round(extract_s / min(raw_s), 1))
    what = "MP3 44.1 kHz stereo: decode + resample" if source == "mp3" else "in memory: no decoding"
    _report(capsys, f"feature cache, {N_SONGS} songs x {CLIP_S:.0f} s ({what}): extraction "
                    f"{extract_s:.2f} s ({extract_s * 1e3 / N_SONGS:.1f} ms/song, "
                    f"{default_workers()} workers), cache read + all windows "
                    f"{read_s * 1e3:.1f} ms ({mb / read_s:,.0f} MB/s of float16) -> "
                    f"{ratio:.0f}x faster (target >= {CACHE_TARGET:.0f}x); plain float16 read of "
                    f"all arrays {min(raw_s) * 1e3:.1f} ms -> {extract_s / min(raw_s):.0f}x")
