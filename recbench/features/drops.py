"""Why a song is dropped at extraction: the reasons and their exceptions."""

from __future__ import annotations

import logging

from ..errors import DataError


log = logging.getLogger("recbench")

# reasons a song is dropped at extraction (SongFeatures.manifest["dropped"] keys)
REASONS = ("unreadable", "empty_audio", "non_finite_audio", "silent", "non_finite_features",
           "no_precomputed_features")


class SongDropped(DataError):
    """A song's audio or features failed validation; `reason` is one of REASONS."""

    reason = "unreadable"


class EmptyAudio(SongDropped):
    reason = "empty_audio"


class NonFiniteAudio(SongDropped):
    reason = "non_finite_audio"


class SilentAudio(SongDropped):
    reason = "silent"


class NonFiniteFeatures(SongDropped):
    reason = "non_finite_features"


def drop_reason(message: str) -> str:
    """The REASONS entry of an error message as stored in SongFeatures.errors."""
    name = message.split(":", 1)[0]
    for cls in (EmptyAudio, NonFiniteAudio, SilentAudio, NonFiniteFeatures):
        if name == cls.__name__:
            return cls.reason
    if "NaN or infinite samples" in message:  # audio.decode's AudioDecodeError
        return "non_finite_audio"
    if message == "no precomputed features":
        return "no_precomputed_features"
    return "unreadable"
