"""${VAR} and ${VAR:-default} expansion in suite values, and how expanded values are recorded."""

from __future__ import annotations

import os
import re
from typing import Any

from ..errors import ConfigError


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_vars(value: Any, key: str, file: str,
                from_env: dict[str, str] | None = None) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string inside `value`.

    When `from_env` is given, the original text of each string that took a value from the
    environment is stored there under its key path (e.g. ``dataset.root``)."""
    if isinstance(value, str):
        used_env = False

        def sub(m: re.Match) -> str:
            nonlocal used_env
            var, default = m.group(1), m.group(2)
            if var in os.environ and os.environ[var] != "":
                used_env = True
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(f"environment variable ${{{var}}} is not set (use "
                              f"${{{var}:-default}} for a default)", file=file, key=key)
        out = _VAR.sub(sub, value)
        if used_env and from_env is not None:
            from_env[key] = value
        return out
    if isinstance(value, dict):
        return {k: expand_vars(v, f"{key}.{k}" if key else k, file, from_env)
                for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, f"{key}[{i}]", file, from_env) for i, v in enumerate(value)]
    return value


def _recorded(value: Any, key: str, from_env: dict[str, str]) -> Any:
    """`value` (found at raw key path `key`) with environment-expanded strings replaced by
    their templates."""
    if key in from_env:
        return from_env[key]
    if isinstance(value, dict):
        return {k: _recorded(v, f"{key}.{k}", from_env) for k, v in value.items()}
    if isinstance(value, list):
        return [_recorded(v, f"{key}[{i}]", from_env) for i, v in enumerate(value)]
    return value
