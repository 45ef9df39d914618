"""``--set key.path=value`` overrides, applied to the raw suite before validation."""

from __future__ import annotations

import re
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import ConfigError


_SEGMENT = r"[^.\[\]\s=]+(?:\[\d+\])*"
_KEY_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """`"models.dcue.epochs=3"` -> (["models", "dcue", "epochs"], 3). Values are TOML
    literals when they parse as such, else plain strings. The key path is dot-separated
    names, each optionally followed by list indices (`models[0].lr`)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: empty key")
    if not _KEY_PATH.fullmatch(key):
        raise ConfigError(f"--set {text!r}: malformed key path {key!r}; expected names "
                          f"separated by dots, each optionally indexed, e.g. "
                          f"models.dcue.lr=0.01 or models[0].lr=0.01")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    path: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    return path, value


def _path_text(path: list[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


def apply_override(raw: dict[str, Any], path: list[str | int], value: Any, text: str) -> None:
    """Set `value` at `path` in the raw suite; list entries may be addressed by id/name."""
    node: Any = raw
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            if isinstance(part, str):
                matches = [e for e in node if isinstance(e, dict)
                           and part in (e.get("id"), e.get("name"))]
                if len(matches) != 1:
                    raise ConfigError(f"--set {text}: no single entry with id or name {part!r}")
                node = matches[0]
            else:
                if part >= len(node):
                    raise ConfigError(f"--set {text}: index {part} out of range")
                node = node[part]
        elif isinstance(node, dict):
            if isinstance(part, int):
                raise ConfigError(f"--set {text}: {_path_text(path[:i]) or 'the suite'} is a "
                                  f"table, not a list: cannot take index [{part}]")
            nxt = path[i + 1]
            if part not in node:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        else:
            raise ConfigError(f"--set {text}: {_path_text(path[:i])} is a "
                              f"{type(node).__name__} value, not a table or list")
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int):
            raise ConfigError(f"--set {text}: {_path_text(path[:-1])} is a list: address "
                              f"its entries by index, id or name")
        if last >= len(node):
            raise ConfigError(f"--set {text}: index {last} out of range")
        if isinstance(node[last], dict):
            raise ConfigError(f"--set {text}: cannot set a whole list entry")
        node[last] = value
    elif isinstance(node, dict):
        if isinstance(last, int):
            raise ConfigError(f"--set {text}: {_path_text(path[:-1]) or 'the suite'} is a "
                              f"table, not a list: cannot take index [{last}]")
        node[last] = value
    else:
        raise ConfigError(f"--set {text}: {_path_text(path[:-1])} is a "
                          f"{type(node).__name__} value, not a table or list")
