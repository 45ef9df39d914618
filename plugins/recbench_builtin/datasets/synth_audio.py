"""The synthetic audio of synth-msd: each song's clip drawn on demand from its acoustic
parameters (tempo, key, register, brightness, percussion, density and, with the artist
mechanism, timbre and chorus), deterministic per song and seed. Moved out of synth_msd.py
unchanged; the generator's formulas are in synth_msd's module docstring."""

from __future__ import annotations

import numpy as np

from . import synth_side

SCALE = np.array([0, 2, 4, 5, 7, 9, 11])  # major scale, semitones above the key


class SynthAudio:
    """An AudioSource synthesising each song's clip on demand from its acoustic params.

    waveform(i): float32 mono (round(clip_s * sample_rate),) with RMS 0.1; identity(i) =
    hash of the generator params + i.
    """

    def __init__(self, acoustic: dict[str, np.ndarray], sample_rate: int, clip_s: float,
                 seed: int, token: str):
        self.acoustic, self.sample_rate, self.clip_s = acoustic, int(sample_rate), clip_s
        self.seed, self.token = seed, token

    def __len__(self) -> int:
        return len(self.acoustic["tempo_bpm"])

    def _noise(self, n: int) -> np.ndarray:
        """A fixed unit-variance white-noise clip; songs use it at their own circular
        shift (drawing fresh Gaussian noise per song costs more than the rest together)."""
        noise = getattr(self, "_noise_cache", None)
        if noise is None or len(noise) != n:
            noise = np.random.default_rng([self.seed, 8]).standard_normal(n, dtype=np.float32)
            self._noise_cache = noise
        return noise

    def identity(self, i: int) -> str:
        return f"{self.token}:{int(i)}"

    def waveform(self, i: int) -> np.ndarray:
        """The clip of song i (float32, RMS 0.1), deterministic in (seed, i)."""
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"song {i} out of range")
        p = {k: v[i] for k, v in self.acoustic.items()}
        sr = self.sample_rate
        n = round(self.clip_s * sr)
        f32 = np.float32
        rng = np.random.default_rng([self.seed, 7, i])
        t = np.arange(n, dtype=f32) / f32(sr)
        beat = 60.0 / p["tempo_bpm"]
        t0 = t - f32(rng.uniform(0.0, beat))  # where the beat grid starts

        # kick on every beat: a 45 Hz tone with a fast downward sweep, decaying in ~0.12 s;
        # one exp serves the kick, its sweep (e^3) and the snare (e^2): float32 for speed
        # (float32 throughout: an int64 or float64 operand would silently promote the clip)
        beat_f = np.floor(t0 / f32(beat))
        tau = t0 - beat_f * f32(beat)
        e = np.exp(tau * f32(-1 / 0.12))
        kick = e * np.sin(f32(2 * np.pi) * (f32(45.0) * tau + f32(3.6) * (1 - e * e * e)))
        white = np.roll(self._noise(n), int(rng.integers(n)))
        bright_noise = np.diff(white, prepend=f32(0))  # first difference: high-passed noise
        snare = white * (e * e) * (beat_f.astype(np.int64) & 1).astype(f32)

        # hi-hats on a 1-4 per-beat grid, each hit present with probability 0.4-1.0
        per_beat = 1 + int(min(p["density"] * 4, 3.999))
        sub = f32(beat / per_beat)
        sub_f = np.floor(t0 / sub)
        tau_s = t0 - sub_f * sub
        sub_i = sub_f.astype(np.int64)
        hits = (rng.random(sub_i[-1] - sub_i[0] + 1) < 0.4 + 0.6 * p["density"]).astype(f32)
        hat = bright_noise * np.exp(tau_s * f32(-1 / 0.015)) * hits[sub_i - sub_i[0]]

        # melody: notes of the key's major scale within an octave above the register
        note = beat / p["notes_per_beat"]
        tm = t - f32(rng.uniform(0.0, note))
        note_f = np.floor(tm / f32(note))
        note_i = note_f.astype(np.int64)
        n_notes = note_i[-1] - note_i[0] + 1
        degree = rng.integers(0, 9, size=n_notes)
        pitch_class = (p["key"] + SCALE[degree % 7] - p["register"]) % 12
        midi = p["register"] + pitch_class + 12 * (degree // 7)
        freq = 440.0 * 2.0 ** ((midi - 69) / 12.0)
        # band-limited wavetable: harmonics k^-tilt below 0.45 * sr (no aliasing)
        n_harm = int(max(1, min(16, np.floor(0.45 * sr / freq.max()))))
        tilt = 3.0 - 2.6 * p["brightness"]
        spectrum = np.zeros(1025, dtype=complex)
        spectrum[1:n_harm + 1] = -1j * np.arange(1, n_harm + 1) ** -tilt  # sines
        synth_side.timbre(spectrum, n_harm, p)  # the artist cue, when set
        table = np.fft.irfft(spectrum, 2048)
        table = (table / np.abs(table).max()).astype(f32)
        tn = tm - note_f * f32(note)
        # phase in cycles: each note starts where the previous one ended (no clicks)
        start = np.r_[0.0, np.cumsum(freq[:-1] * note)] % 1.0
        j = note_i - note_i[0]
        cycles = start.astype(f32)[j] + freq.astype(f32)[j] * tn
        tone = table[(cycles * f32(2048)).astype(np.int64) & 2047]
        tone = synth_side.chorus(tone, table, cycles, p)  # the artist cue, when set
        # 5-ms linear attack (no click), exponential decay over a fraction of the note
        env = np.minimum(tn * f32(200.0), f32(1.0)) * np.exp(tn * f32(-1 / (0.25 + 0.5 * note)))

        perc = f32(p["percussion"])
        y = (f32(0.8) * kick + perc * (f32(0.5) * snare + f32(0.35) * hat)
             + f32(0.45) * tone * env + f32(0.003) * white)
        y *= f32(0.1 / max(float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))), 1e-9))
        return y
