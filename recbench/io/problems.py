"""What loading dropped or repaired: :class:`Problems`, and reporting a batch's bad rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError

if TYPE_CHECKING:
    from .tables import TableReader

MAX_NAMED = 1000  # songs named individually in a manifest list; the rest are only counted
MAX_EXAMPLES = 5  # located examples kept per kind of problem
MAX_EXAMPLE_CHARS = 300  # characters kept of one example (file:line: reason)
MAX_REASON_CHARS = 200  # characters kept of a dropped song's reason


class Problems:
    """What loading dropped or repaired: counts per kind, a few located examples.

    `bad(kind, where, reason)` records a malformed input (fatal under `strict`);
    `drop(kind, n)` counts values removed by a documented rule (e.g. non-positive counts);
    `repair(kind, n)` counts values fixed (e.g. duplicate rows summed).
    `drop_song(song, reason, file)` names a dropped song. `manifest()` renders all this
    as the plain dict stored in `Dataset.manifest`. What it keeps is bounded whatever the
    input: MAX_EXAMPLES located examples per kind of problem, each on one line of at most
    MAX_EXAMPLE_CHARS characters (a quoted bad line at most SNIPPET_CHARS), MAX_NAMED
    dropped songs with reasons of at most MAX_REASON_CHARS; the rest is only counted.
    """

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.dropped: dict[str, int] = {}
        self.repaired: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}
        self.dropped_songs: list[dict[str, str]] = []
        self.n_dropped_songs = 0

    def bad(self, kind: str, where: str, reason: str, n: int = 1) -> None:
        """Record `n` malformed inputs; the first is located at `where` (file:line)."""
        if n <= 0:
            return
        if self.strict:
            raise DataError(f"{where}: {reason} (strict mode; set strict = false to skip "
                            "and count such input)")
        self.dropped[kind] = self.dropped.get(kind, 0) + n
        ex = self.examples.setdefault(kind, [])
        if len(ex) < MAX_EXAMPLES:
            ex.append(_bounded(f"{where}: {reason}", MAX_EXAMPLE_CHARS))

    def drop(self, kind: str, n: int) -> None:
        """Count `n` items dropped by a documented rule (not an error)."""
        if n > 0:
            self.dropped[kind] = self.dropped.get(kind, 0) + int(n)

    def repair(self, kind: str, n: int) -> None:
        """Count `n` items repaired (kept in a fixed form)."""
        if n > 0:
            self.repaired[kind] = self.repaired.get(kind, 0) + int(n)

    def drop_song(self, song: str, reason: str, file: str | None = None,
                  fatal: bool = True) -> None:
        """Name a song dropped for `reason` (fatal under strict when `fatal`)."""
        if self.strict and fatal:
            raise DataError(f"{file or song}: {reason} (song {song}; strict mode)")
        self.n_dropped_songs += 1
        if len(self.dropped_songs) < MAX_NAMED:
            entry = {"song": _bounded(str(song), MAX_REASON_CHARS),
                     "reason": _bounded(str(reason), MAX_REASON_CHARS)}
            if file:
                entry["file"] = str(file)
            self.dropped_songs.append(entry)

    def manifest(self) -> dict[str, Any]:
        """{"dropped": {...}, "repaired": {...}, "examples": {...}, "dropped_songs": [...]}."""
        out: dict[str, Any] = {"dropped": dict(self.dropped), "repaired": dict(self.repaired)}
        if self.examples:
            out["examples"] = {k: list(v) for k, v in self.examples.items()}
        out["dropped_songs"] = list(self.dropped_songs)
        out["n_dropped_songs"] = self.n_dropped_songs
        if self.n_dropped_songs > len(self.dropped_songs):
            out["dropped_songs_truncated"] = True
        return out


def _bounded(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters (the cut marked with '...')."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def first_bad_rows(mask_bad: np.ndarray, k: int = MAX_EXAMPLES) -> np.ndarray:
    """Positions of the first `k` True entries."""
    return np.flatnonzero(mask_bad)[:k]


def report_bad_rows(problems: Problems, reader: TableReader, row0: int, bad: np.ndarray,
                    reason: Callable[[int], str], kind: str = "malformed_lines") -> None:
    """Record the rows flagged in `bad` (a bool mask over a batch starting at row0)."""
    n = int(bad.sum())
    if not n:
        return
    pos = first_bad_rows(bad, 1 if problems.strict else MAX_EXAMPLES)
    for j, p in enumerate(pos):
        problems.bad(kind, reader.where(row0 + int(p)), reason(int(p)),
                     n=1 if j < len(pos) - 1 else n - len(pos) + 1)
