"""Best-effort line numbers for suite key paths (tomllib reports none for valid TOML)."""

from __future__ import annotations

import re


# --------------------------------------------------------------------------- helpers


class _Locator:
    """Best-effort line numbers for key paths (tomllib reports none for valid TOML)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line(self, key: str) -> int | None:
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", key)
        if not parts:
            return None
        section, rest = parts[0], parts[1:]
        index = 0
        if rest and rest[0].startswith("["):
            index = int(rest[0][1:-1])
            rest = rest[1:]
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(section)}\s*\]\]?\s*(#.*)?$")
        start, seen = None, -1
        for i, ln in enumerate(self.lines):
            if header.match(ln):
                seen += 1
                if seen == index:
                    start = i
                    break
        if start is None:
            return None
        if not rest:
            return start + 1
        return self._leaf_line(start, rest[0])

    def _leaf_line(self, start: int, name: str) -> int:
        """The line of ``name = ...`` in the table whose header is at index `start` (the
        header's line when the table does not hold it)."""
        leaf = re.compile(rf"^\s*\"?{re.escape(name)}\"?\s*=")
        for j in range(start + 1, len(self.lines)):
            if re.match(r"^\s*\[", self.lines[j]):
                break
            if leaf.match(self.lines[j]):
                return j + 1
        return start + 1


class _FallbackLocator(_Locator):
    """Lines of keys under ``[dataset.fallback.models.<id>]`` headers."""

    def line(self, key: str) -> int | None:
        parts = key.split(".")
        for cut in range(len(parts), 3, -1):
            head = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(
                rf'"?{re.escape(p)}"?' for p in parts[:cut]) + r"\s*\]\s*(#.*)?$")
            for i, ln in enumerate(self.lines):
                if head.match(ln):
                    if cut == len(parts):
                        return i + 1
                    return self._leaf_line(i, parts[cut])
        return super().line(key)
