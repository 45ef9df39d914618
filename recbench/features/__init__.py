"""Per-song audio features shared by every audio model: log-mel spectrograms or waveforms.

``load_features(dataset, kind, train_songs, cache_dir)`` extracts (or reads from the disk
cache) one array of shape (n_songs, n_steps, n_channels) float16 and returns a
:class:`SongFeatures` standardised with the mean and std of the TRAINING songs only.

Feature parameters (defaults = recbench's reading of the DCUE paper): ``sample_rate`` 22,050 Hz, ``n_fft`` 1024
(Hann window), ``hop_length`` 512, ``n_mels`` 128, ``fmin`` 0 Hz, ``fmax`` None (Nyquist),
``power`` 2.0 and ``amin`` 1e-10 (log-mel = 10 log10(max(mel power, amin)), i.e.
``librosa.power_to_db(ref=1, top_db=None)``), ``window_s`` 3.0 s per model input window,
``clip_s`` None (the whole clip; a number truncates each song and lets extraction stream to
disk instead of holding every song in memory), ``compression`` "db" (or "log10-1p-10x":
log10(1 + 10 mel)), ``normalise`` "per-bin" (or "global": one scalar mean and std),
``window_frames`` None (a number of frames per window, winning over ``window_s``).
The authors' released front end (jongpillee/deep-content-user ``mp3s_to_mel.py``,
``train.py``) is ``power = 1.0``,
``compression = "log10-1p-10x"``, ``normalise = "global"``, ``window_frames = 130``.
They are resolved as
defaults < ``dataset.manifest["feature_params"]`` (what the dataset says fits it) < ``params``.

Validation (no silently wrong number). At extraction a song is dropped -- length 0, listed
in ``failed`` with its reason -- when its audio does not decode, is empty, holds NaN or
infinite samples, is silent (peak |sample| below ``SILENCE_PEAK``, -120 dBFS: its log-mel
would be the constant floor ``10 log10(amin)``), or when its features hold NaN or infinite
values (e.g. a waveform beyond float16's range). ``SongFeatures.manifest`` counts the
dropped songs by reason and names the first ``MAX_NAMED_DROPPED``, and records how the
cache entry was verified or rebuilt; the runner copies it into each row that used the
features. What a model sees of a dropped song is what it sees of any song without audio:
nothing in training (the built-in audio models train on songs with length > 0 only) and
nothing in the standardisation statistics; at scoring it stays a candidate -- every model
is evaluated on the same songs, so rows stay comparable -- and is represented by one
all-zero standardised window (the training mean): an uninformative, identical input for
every dropped song, never features computed from broken audio.

Cache layout under ``cache_dir``: ``<kind>-<key>.npy`` (the float16 array, opened as a
memory map) and ``<kind>-<key>.npz`` (lengths, per-song sums and sums of squares for
standardisation, failures and their reasons, and the integrity record of the array: file
size, shape, dtype and SHA-256, with the format and key); ``key`` hashes every song's audio
identity and the parameters. Both files are written to a temporary name and moved into
place, the array first, so a reader never sees a partial entry. Every read checks the
record against the files (size, shape, dtype, key, finite statistics, lengths within the
array) and, once per process and file version, the array's SHA-256; an entry that fails --
overwritten, truncated, of the wrong shape, unreadable -- is logged, rebuilt under the
entry's lock, and the rebuild is noted in the manifest. Measured cost on the `small`
preset (16 MB entry, page cache warm, a shared 2-core machine): the first read in a
process takes 37 ms instead of 2 ms (SHA-256 28 ms, about 1.7 s per GB; the `paper`
preset's 3.1 GB entry: ~5 s, once per process); extraction took 13.9 s, so writing the
record adds 0.2%.
"""

from __future__ import annotations

from .frontend import (KINDS, DEFAULT_PARAMS, COMPRESSIONS, NORMALISATIONS, SILENCE_PEAK,
                       MAX_NAMED_DROPPED, resolve_params, window_steps, n_frames, logmel)
from .drops import (REASONS, SongDropped, EmptyAudio, NonFiniteAudio, SilentAudio,
                    NonFiniteFeatures, drop_reason)
from .song_features import SongFeatures
from .extract import cache_key, extract_songs
from .store import CacheEntryDamaged, _FORMAT, _VERIFIED, _checksum, _file_lock
from .cache import default_workers, load_features

__all__ = ["COMPRESSIONS", "CacheEntryDamaged", "DEFAULT_PARAMS", "EmptyAudio", "KINDS",
           "MAX_NAMED_DROPPED", "NORMALISATIONS", "NonFiniteAudio", "NonFiniteFeatures", "REASONS",
           "SILENCE_PEAK", "SilentAudio", "SongDropped", "SongFeatures", "cache_key",
           "default_workers", "drop_reason", "extract_songs", "load_features", "logmel",
           "n_frames", "resolve_params", "window_steps"]
