"""Declared plugin parameters: one source for validation, `recbench list -v` and result rows."""

from __future__ import annotations

import builtins
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError

# Kinds that a component's str parameter of the same name refers to by convention.
NESTED_PLUGIN_KINDS = ("backbone", "loss", "sampler")

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "table"}


@dataclass(frozen=True)
class Param:
    """One declared parameter of a component.

    `type` is one of bool, int, float, str, list, dict. `choices` restricts values;
    `min` / `max` bound numbers (inclusive), `gt` excludes a lower bound (`gt=0`: strictly
    positive). Floats must be finite (TOML's nan and inf are refused). For a list with an
    `item_type`, `choices`, `min`, `max` and `gt` apply to each element. `default=None`
    with `required=False` means "unset" and is allowed whatever the type (the component
    decides what None means).

    `plugin` says that a str parameter names another plugin of that kind (e.g.
    ``Param("loss", str, "hinge", plugin="loss")``); its sibling ``<name>_params`` table,
    when declared, holds that plugin's parameters. Suites validate both before any work
    starts. By convention a str parameter named like a nested kind (`backbone`, `loss`,
    `sampler`) is such a reference even without `plugin` (see :attr:`plugin_kind`).
    """

    name: str
    type: builtins.type
    default: Any = None
    help: str = ""
    choices: Sequence[Any] | None = None
    min: float | None = None
    max: float | None = None
    required: bool = False
    item_type: builtins.type | None = None  # element type for lists
    gt: float | None = None  # exclusive lower bound
    plugin: str | None = None  # the value names a plugin of this kind

    @property
    def plugin_kind(self) -> str | None:
        """The plugin kind this parameter names, or None."""
        if self.plugin:
            return self.plugin
        if self.type is str and self.name in NESTED_PLUGIN_KINDS:
            return self.name
        return None

    def type_name(self) -> str:
        base = _TYPE_NAMES.get(self.type, self.type.__name__)
        if self.type is list and self.item_type is not None:
            base = f"list[{_TYPE_NAMES.get(self.item_type, self.item_type.__name__)}]"
        return base

    def check(self, value: Any, key: str, file: str | None = None,
              line: int | None = None) -> Any:
        """Return `value` converted to this parameter's type, or raise ConfigError at `key`."""

        def fail(msg: str) -> ConfigError:
            return ConfigError(msg, file=file, key=key, line=line)

        if value is None:
            if self.required:
                raise fail("is required")
            return None
        v = _coerce(value, self.type)
        if v is _BAD:
            raise fail(f"expected {self.type_name()}, got {type(value).__name__} {value!r}")
        if self.type is list and self.item_type is not None:
            items = []
            for i, item in enumerate(v):
                c = _coerce(item, self.item_type)
                if c is _BAD:
                    raise fail(f"item {i} expected {_TYPE_NAMES.get(self.item_type)}, "
                               f"got {item!r}")
                problem = self._bounds(c)
                if problem:
                    raise fail(f"item {i} {problem}")
                items.append(c)
            return items
        problem = self._bounds(v)
        if problem:
            raise fail(problem)
        return v

    def _bounds(self, v: Any) -> str | None:
        """What is wrong with a scalar `v` against finiteness, choices and bounds, or None."""
        if isinstance(v, float) and not math.isfinite(v):
            return f"must be a finite number, got {v!r}"
        if self.choices is not None and v not in self.choices:
            return (f"expected one of {', '.join(map(str, self.choices))}; got {v!r}"
                    + _suggest(v, self.choices))
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        if self.min is not None and v < self.min:
            return f"must be >= {self.min}, got {v!r}"
        if self.gt is not None and v <= self.gt:
            return f"must be > {self.gt}, got {v!r}"
        if self.max is not None and v > self.max:
            return f"must be <= {self.max}, got {v!r}"
        return None


_BAD = object()


def _coerce(value: Any, typ: type) -> Any:
    if typ is bool:
        return value if isinstance(value, bool) else _BAD
    if typ is int:
        if isinstance(value, bool):
            return _BAD
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _BAD
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _BAD
        return float(value)
    if typ is str:
        return value if isinstance(value, str) else _BAD
    if typ is list:
        return list(value) if isinstance(value, (list, tuple)) else _BAD
    if typ is dict:
        return dict(value) if isinstance(value, dict) else _BAD
    return value if isinstance(value, typ) else _BAD


def _suggest(value: Any, options: Sequence[Any]) -> str:
    close = difflib.get_close_matches(str(value), [str(o) for o in options], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def suggest(value: str, options: Iterable[str]) -> str:
    """`" Did you mean: x?"` for the closest option, or an empty string."""
    close = difflib.get_close_matches(value, list(options), n=3, cutoff=0.5)
    return f" Did you mean: {', '.join(close)}?" if close else ""


@dataclass
class ParamSet:
    """The declared parameters of a component, with resolution of user values."""

    params: tuple[Param, ...] = field(default_factory=tuple)

    def resolve(self, values: dict[str, Any], where: str, file: str | None = None,
                lines: Mapping[str, int | None] | None = None) -> dict[str, Any]:
        """Defaults overlaid with `values`; unknown or ill-typed keys raise ConfigError."""
        by_name = {p.name: p for p in self.params}
        for key in values:
            if key not in by_name:
                raise ConfigError(
                    "unknown parameter." + suggest(key, list(by_name))
                    + (f" Known: {', '.join(sorted(by_name))}" if by_name else " (takes none)"),
                    file=file, key=f"{where}.{key}", line=(lines or {}).get(key))
        out = {}
        for p in self.params:
            raw = values.get(p.name, p.default)
            out[p.name] = p.check(raw, f"{where}.{p.name}", file, (lines or {}).get(p.name))
        return out
