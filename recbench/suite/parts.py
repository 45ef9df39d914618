"""Suites in parts: ``[suite] parts = ["other.toml", ...]`` runs other suite files after this
one's own cells, each into ``OUT/parts/<its name>/``, and the suite's leaderboard shows
every part's board after its own.

Why: a suite has one dataset, one split and one set of tasks, while a family of systems
(issue 13: CML on the warm protocol, Siamese audio embeddings on new releases, artist
metric learning on unseen artists) needs several. A part is an ordinary suite file, run
exactly as on its own, so its cells (and cell ids) are the same whichever command ran them.

Overrides: ``--set KEY=VALUE`` changes the suite named on the command line only;
``--set PART:KEY=VALUE`` changes the part whose ``[suite] name`` is PART, and
``--set '*:KEY=VALUE'`` every part (not the suite itself). A part cannot have parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import ConfigError
from .locate import _Locator

# the prefix of an override that applies to every part
EVERY_PART = "*"


def split_overrides(overrides: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(the overrides of the suite itself, [(part name or "*", override)]): an override
    whose key (the text before the first "=") holds a ":" is a part's."""
    own: list[str] = []
    prefixed: list[tuple[str, str]] = []
    for ov in overrides:
        key = ov.split("=", 1)[0]
        if ":" in key:
            name, rest = ov.split(":", 1)
            prefixed.append((name.strip(), rest))
        else:
            own.append(ov)
    return own, prefixed


def part_files(raw: dict[str, Any], file: str, text: str) -> list[tuple[str, str, int | None]]:
    """[(part file path, key path, line)] of ``[suite] parts``, paths relative to the suite
    file's folder; a part file that does not exist is a ConfigError naming the entry."""
    entries = (raw.get("suite") or {}).get("parts") or []
    loc = _Locator(text)
    folder = Path(file).parent
    found = []
    for i, entry in enumerate(entries):
        key = f"suite.parts[{i}]"
        path = folder / entry
        if not path.is_file():
            raise ConfigError(f"part {entry!r} not found (looked for {path}); a part is a "
                              f"suite file, its path relative to this suite's folder",
                              file=file, key=key, line=loc.line("suite.parts"))
        found.append((str(path), key, loc.line("suite.parts")))
    return found


def _peek_name(path: str) -> str:
    """The ``[suite] name`` of a suite file, else its stem (read without validation: the
    part's own load reports any problem)."""
    try:
        with open(path, "rb") as f:
            name = (tomllib.load(f).get("suite") or {}).get("name")
    except (OSError, ValueError):
        name = None
    return name if isinstance(name, str) else Path(path).stem


def load_parts(suite: Any, raw: dict[str, Any], file: str, text: str,
               prefixed: list[tuple[str, str]],
               load: Callable[[str, Sequence[str], bool], Any]) -> list[Any]:
    """The part suites of `suite`, each loaded by `load(path, overrides, as_part)` with the
    overrides addressed to it; names must be unique and differ from the suite's, and an
    override addressed to no part is a ConfigError."""
    parts = []
    names = {suite.name}
    for path, key, line in part_files(raw, file, text):
        name = _peek_name(path)  # overrides are addressed by the name
        part = load(path, [ov for n, ov in prefixed if n in (EVERY_PART, name)], True)
        if part.name in names:
            raise ConfigError(f"part {path} is named {part.name!r}, as "
                              f"{'this suite' if part.name == suite.name else 'another part'}"
                              f" is: each part writes OUT/parts/<name>/, so names must differ",
                              file=file, key=key, line=line)
        names.add(part.name)
        parts.append(part)
    unknown = sorted({name for name, _ in prefixed if name != EVERY_PART} - names)
    if unknown or (prefixed and not parts):
        which = ", ".join(sorted(names - {suite.name})) or "none"
        bad = unknown[0] if unknown else prefixed[0][0]
        raise ConfigError(f"--set {bad}:...: no part named {bad!r} (parts: {which}); "
                          f"KEY=VALUE without a prefix changes the suite itself", file=file)
    own = [ov for name, ov in prefixed if name == suite.name]
    if own:
        raise ConfigError(f"--set {suite.name}:...: {suite.name!r} is the suite itself; "
                          f"write its overrides without a prefix", file=file)
    return parts
