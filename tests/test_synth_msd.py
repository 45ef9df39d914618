"""synth-msd: determinism, presets, tags, audible cues and the audible_share=0 independence."""

from __future__ import annotations

import numpy as np
import pytest
from recbench_builtin.datasets.synth_msd import PRESETS, SynthMSD, make_counts, make_songs
from recbench_builtin.splits import ColdItemSplit
from scipy.stats import spearmanr

from recbench.components import LoadContext
from recbench.data import AudioSource
from recbench.errors import ConfigError
from recbench.features import load_features

CTX = LoadContext(cache_dir="unused")


@pytest.fixture(scope="module")
def tiny():
    return SynthMSD(preset="tiny").load(CTX)


def test_deterministic_under_seed(tiny):
    again = SynthMSD(preset="tiny").load(CTX)
    assert again.fingerprint == tiny.fingerprint
    np.testing.assert_array_equal(again.audio.waveform(7), tiny.audio.waveform(7))
    other = SynthMSD(preset="tiny", seed=1).load(CTX)
    assert other.fingerprint != tiny.fingerprint
    assert other.audio.identity(7) != tiny.audio.identity(7)
    assert not np.array_equal(other.audio.waveform(7), tiny.audio.waveform(7))
    # the audio does not depend on the listening: same identities for another audible_share
    shifted = SynthMSD(preset="tiny", audible_share=0.0).load(CTX)
    assert shifted.audio.identity(3) == tiny.audio.identity(3)
    assert shifted.counts.nnz != tiny.counts.nnz or (shifted.counts != tiny.counts).nnz


def test_tiny_preset_shapes_and_audio(tiny):
    assert tiny.synthetic and tiny.name == "synth-msd"
    assert tiny.counts.shape == (300, 200) and tiny.counts.dtype == np.float32
    assert np.asarray((tiny.counts > 0).sum(axis=0)).min() >= 1  # every song has a listener
    assert np.diff(tiny.counts.indptr).min() >= 5
    assert isinstance(tiny.audio, AudioSource) and len(tiny.audio) == 200
    assert tiny.audio.sample_rate == 8000
    w = tiny.audio.waveform(0)
    assert w.dtype == np.float32 and w.shape == (12000,) and np.all(np.isfinite(w))
    assert np.sqrt(np.mean(w.astype(np.float64) ** 2)) == pytest.approx(0.1, rel=1e-3)
    fp = tiny.manifest["feature_params"]
    assert fp == {"n_fft": 256, "hop_length": 128, "n_mels": 32, "window_s": 1.0,
                  "sample_rate": 8000, "clip_s": 1.5}


@pytest.mark.parametrize("preset,users,songs,sr,clip", [
    ("tiny", 300, 200, 8000, 1.5), ("small", 2000, 1000, 16000, 4.0),
    ("default", 6000, 3000, 22050, 6.0), ("paper", 20000, 10000, 22050, 30.0)])
def test_presets(preset, users, songs, sr, clip):
    cfg = SynthMSD(preset=preset).config()
    assert (cfg["users"], cfg["songs"], cfg["sample_rate"], cfg["clip_s"]) == (users, songs, sr,
                                                                              clip)
    fp = cfg["feature_params"]
    assert fp["sample_rate"] == sr and fp["clip_s"] == clip
    if preset in ("default", "paper"):  # the paper's audio parameters
        assert (fp["n_fft"], fp["hop_length"], fp["n_mels"], fp["window_s"]) == (1024, 512,
                                                                                  128, 3.0)
    assert set(PRESETS) == {"tiny", "small", "default", "paper"}


def test_params_override_preset():
    d = SynthMSD(preset="small", users=50, songs=40, clip_s=0.5, sample_rate=8000,
                 plays_per_user=6.0).load(CTX)
    assert d.counts.shape == (50, 40) and d.audio.waveform(0).shape == (4000,)
    assert d.manifest["feature_params"]["sample_rate"] == 8000
    assert d.manifest["feature_params"]["window_s"] == 0.5  # clipped to the clip length
    with pytest.raises(ConfigError, match="plays_per_user"):
        SynthMSD(preset="tiny", songs=20, plays_per_user=30.0).validate()
    with pytest.raises(ConfigError, match="preset"):
        SynthMSD(preset="huge")


def test_tags(tiny):
    assert tiny.tags.shape == (200, 50) and len(tiny.tag_names) == 50
    assert len(set(tiny.tag_names)) == 50
    assert set(np.unique(tiny.tags.data)) == {1.0}
    per_tag = np.asarray(tiny.tags.sum(axis=0)).ravel()
    assert per_tag.min() >= 1 and per_tag.max() < 200
    clean = SynthMSD(preset="tiny", label_noise=0.0).load(CTX)
    genres = clean.tags[:, :12].toarray()
    assert np.all(genres.sum(axis=1) == 1)  # without noise, exactly one genre per song
    noisy = (clean.tags != tiny.tags).nnz / (200 * 50)
    assert 0.005 < noisy < 0.05


def test_features_use_the_presets_params(tiny, tmp_path):
    f = load_features(tiny, "logmel", np.arange(140), tmp_path)
    assert f.array.shape == (200, 1 + 12000 // 128, 32) and f.window == round(8000 / 128)
    assert len(f.failed) == 0


def test_audible_cues(tiny, tmp_path):
    """Brightness, register and percussion are readable from the log-mel spectrogram;
    tempo from the kick's periodicity."""
    f = load_features(tiny, "logmel", np.arange(200), tmp_path)
    mel = np.asarray(f.array, dtype=np.float32)
    ac = tiny.audio.acoustic
    high = mel[:, :, 20:].mean(axis=(1, 2))
    import librosa

    freqs = librosa.mel_frequencies(n_mels=32, fmax=4000)
    power = (10 ** (mel / 10)).mean(axis=1)
    centroid = (power * freqs).sum(axis=1) / power.sum(axis=1)
    assert spearmanr(ac["brightness"], high)[0] > 0.4
    assert spearmanr(ac["percussion"], high)[0] > 0.3
    assert spearmanr(ac["register"], centroid)[0] > 0.6
    # tempo: the strongest autocorrelation lag of the low band's onset envelope
    est = []
    for i in range(40):
        w = tiny.audio.waveform(i)
        low = np.abs(librosa.stft(w, n_fft=512, hop_length=64))[:6].sum(axis=0)
        env = np.maximum(np.diff(low), 0)
        ac_env = np.correlate(env - env.mean(), env - env.mean(), "full")[len(env) - 1:]
        lags = np.arange(len(ac_env)) * 64 / 8000
        ok = (lags > 60 / 180) & (lags < 60 / 65)
        est.append(60 / lags[ok][np.argmax(ac_env[ok])])
    assert spearmanr(ac["tempo_bpm"][:40], est)[0] > 0.8


def test_audible_share_zero_listening_ignores_audible_factors():
    """Exact: at audible_share 0 the counts do not change when the audible factors (the only
    input of the audio) are shuffled across songs; at 1 they do."""
    world = make_songs(3, 150)
    shuffled = dict(world, audible=world["audible"][np.random.default_rng(0).permutation(150)])
    a = make_counts(3, 120, world, 0.0, 10)
    b = make_counts(3, 120, shuffled, 0.0, 10)
    assert (a != b).nnz == 0
    c = make_counts(3, 120, world, 1.0, 10)
    d = make_counts(3, 120, shuffled, 1.0, 10)
    assert (c != d).nnz > 0


def _content_profile_auc(d, tmp_path):
    """Per-user AUC on cold test songs of a content profile built from mean log-mel frames,
    and the cross-validated R^2 of predicting log popularity from the same descriptors."""
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import roc_auc_score

    s = ColdItemSplit().split(d, 0)
    f = load_features(d, "logmel", s.train_songs, tmp_path)
    x = np.stack([f.standardise(f.array[i, :f.lengths[i]]).mean(axis=0)
                  for i in range(d.n_songs)])
    x = (x - x[s.train_songs].mean(0)) / x[s.train_songs].std(0)
    prof = (s.train > 0).astype(np.float32) @ x
    ts = s.test_songs
    aucs = []
    for u in s.test_users:
        y = s.test[u, ts].toarray().ravel() > 0
        if 0 < y.sum() < len(y):
            aucs.append(roc_auc_score(y, x[ts] @ prof[u]))
    pop = np.log1p(np.asarray((d.counts > 0).sum(axis=0)).ravel())
    r2 = RidgeCV(alphas=[1.0, 10.0, 100.0]).fit(x[s.train_songs], pop[s.train_songs]).score(
        x[ts], pop[ts])
    return float(np.mean(aucs)), float(r2)


@pytest.mark.slow
def test_audio_predicts_listening_only_through_audible_share(tmp_path):
    kw = {"preset": "tiny", "users": 800, "songs": 600, "clip_s": 1.0}
    auc0, r2_0 = _content_profile_auc(SynthMSD(audible_share=0.0, **kw).load(CTX),
                                      tmp_path / "a")
    auc1, r2_1 = _content_profile_auc(SynthMSD(audible_share=1.0, **kw).load(CTX),
                                      tmp_path / "b")
    assert abs(auc0 - 0.5) < 0.03  # audio says nothing about users at share 0
    assert auc1 > 0.65  # and a lot at share 1
    assert r2_0 < 0.05 and r2_1 < 0.05  # popularity is never audible
