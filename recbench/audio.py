"""Deprecated alias kept for one release: the audio-file code moved to
:mod:`recbench.io.audio`. Import from ``recbench.io`` instead."""

from __future__ import annotations

from .io.audio import (PROBE_FRAMES, AudioDecodeError, FileAudioSource, decode, file_sha256,
                       probe_audio, stat_identity)

__all__ = ["AudioDecodeError", "FileAudioSource", "PROBE_FRAMES", "decode", "file_sha256",
           "probe_audio", "stat_identity"]
