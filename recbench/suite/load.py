"""Reading a suite file: decoding, TOML, overrides and ${VAR} expansion, then validation."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from ..errors import ConfigError
from ..registry import Registry
from .locate import _Locator
from .model import ENV_KEY, SECTIONS, Suite
from .overrides import apply_override, parse_override
from .parts import load_parts, split_overrides
from .validate import validate_raw
from .vars import expand_vars


# --------------------------------------------------------------------------- loading


def load_suite(path: str | os.PathLike, registry: Registry,
               overrides: Sequence[str] = (), _as_part: bool = False) -> Suite:
    """Read, expand, override and validate a suite file and its ``[suite] parts``
    (recbench.suite.parts). Raises ConfigError on any problem."""
    path = Path(path)
    file = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("suite file not found", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read suite: {exc.strerror}", file=file) from None
    text = _decode_suite(data, file)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        raise ConfigError(f"invalid TOML: {msg}", file=file, line=line) from None
    overrides, prefixed = split_overrides(overrides)
    if _as_part and prefixed:  # e.g. --set 'a:b:key=1'
        raise ConfigError(f"--set {prefixed[0][0]}:{prefixed[0][1]}: a part has no parts; "
                          f"one PART: prefix only", file=file)
    for ov in overrides:
        p, v = parse_override(ov)
        apply_override(raw, p, v, ov)
    if ENV_KEY in raw:
        raise ConfigError(f"unknown section. Known: {', '.join(SECTIONS)}", file=file,
                          key=ENV_KEY, line=_Locator(text).line(ENV_KEY))
    from_env: dict[str, str] = {}
    raw = expand_vars(raw, "", file, from_env)
    if from_env:
        raw[ENV_KEY] = from_env
    suite = validate_raw(raw, registry, file, text)
    if _as_part and (raw.get("suite") or {}).get("parts"):
        raise ConfigError("a part cannot have parts of its own (list them in the suite "
                          "that runs them all)", file=file, key="suite.parts",
                          line=_Locator(text).line("suite.parts"))
    suite.parts = load_parts(suite, raw, file, text, prefixed,
                             lambda p, ovs, part: load_suite(p, registry, ovs, part))
    return suite


def _decode_suite(data: bytes, file: str) -> str:
    """The suite's text; a BOM, binary content or invalid UTF-8 is one clear error."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError("the file starts with a UTF-8 byte-order mark (BOM), which TOML "
                          "readers refuse; save it as UTF-8 without BOM", file=file, line=1)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError("the file is UTF-16 encoded; save it as UTF-8", file=file, line=1)
    if b"\x00" in data:
        raise ConfigError("not a text file (it contains NUL bytes); a suite is a UTF-8 "
                          "TOML file", file=file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte offset "
                          f"{exc.start}); save the suite as UTF-8", file=file,
                          line=line) from None
