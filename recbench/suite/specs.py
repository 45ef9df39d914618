"""A suite's plugin tables turned into specs; the plugin's own option checks run now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, RecbenchError
from ..registry.params import ParamSet
from ..registry import Registry
from .locate import _Locator
from .model import ComponentSpec, MetricSpec
from .vars import _recorded

if TYPE_CHECKING:
    from ..components import Component


def _instantiate(cls: type[Component], options: dict[str, Any], key: str, file: str,
                 loc: _Locator) -> Any:
    """`cls(**options)`, so that a plugin's own checks of its options run now; their errors
    are located in the suite (a plugin's key such as ``split.cold-item.test_share`` becomes
    ``split.test_share`` with its line)."""
    try:
        return cls(**options)
    except ConfigError as exc:
        if exc.file is not None:
            raise
        where = key
        own = f"{cls.kind}.{cls.name}."
        if exc.key and exc.key.startswith(own):
            where = f"{key}.{exc.key[len(own):]}"
        elif exc.key and exc.key.startswith(f"{key}."):
            where = exc.key
        raise ConfigError(exc.message, file=file, key=where,
                          line=loc.line(where) or loc.line(key)) from None
    except RecbenchError:
        raise
    except Exception as exc:  # a plugin's own check of its options
        raise ConfigError(str(exc), file=file, key=key, line=loc.line(key)) from exc


def _check_nested(registry: Registry, cls: type[Component], options: dict[str, Any], key: str,
                  file: str, loc: _Locator) -> None:
    """Options that name another plugin (`loss`, `sampler`, `backbone`, or any Param with
    `plugin=KIND`) must name a registered one, and their sibling ``<name>_params`` must be
    valid parameters of it."""
    declared = {p.name for p in cls.params}
    for p in cls.params:
        kind = p.plugin_kind
        if kind is None or options.get(p.name) is None:
            continue
        sub_key = f"{key}.{p.name}"
        entry = registry.get(kind, options[p.name], key=sub_key, file=file,
                             line=loc.line(sub_key))
        params_name = f"{p.name}_params"
        values = options.get(params_name) if params_name in declared else None
        params_key = f"{key}.{params_name}"
        line = loc.line(params_key)
        sub_options = ParamSet(tuple(entry.cls.params)).resolve(
            values or {}, params_key, file, {k: line for k in values or {}})
        _instantiate(entry.cls, sub_options, params_key, file, loc)
        _check_nested(registry, entry.cls, sub_options, params_key, file, loc)


def _plugin_spec(registry: Registry, kind: str, table: Any, key: str, file: str,
                 loc: _Locator, reserved: tuple[str, ...] = ("name",),
                 from_env: dict[str, str] | None = None, raw_key: str | None = None
                 ) -> ComponentSpec:
    """Validate a plugin's table. `raw_key` is where its options sit in the raw suite when
    that is not `key` (the executor's are in ``run.executor_params``)."""
    if not isinstance(table, dict):
        raise ConfigError(f"expected a table, got {type(table).__name__}", file=file, key=key,
                          line=loc.line(key))
    name = table.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"missing `name` (the {kind} plugin to use)", file=file,
                          key=f"{key}.name", line=loc.line(key))
    entry = registry.get(kind, name, key=f"{key}.name", file=file,
                         line=loc.line(f"{key}.name"))
    values = {k: v for k, v in table.items() if k not in reserved}
    lines = {k: loc.line(f"{key}.{k}") for k in values}
    options = ParamSet(tuple(entry.cls.params)).resolve(values, key, file, lines)
    _instantiate(entry.cls, options, key, file, loc)
    _check_nested(registry, entry.cls, options, key, file, loc)
    spec = ComponentSpec(kind, name, options, key)
    raw_key = raw_key or key
    if from_env and any(k == raw_key or k.startswith((f"{raw_key}.", f"{raw_key}["))
                        for k in from_env):
        spec.recorded = {k: _recorded(v, f"{raw_key}.{k}", from_env)
                         for k, v in options.items()}
    return spec


def _parse_metric(text: Any, key: str, registry: Registry, file: str, loc: _Locator
                  ) -> MetricSpec:
    if not isinstance(text, str):
        raise ConfigError(f"expected a metric name like 'auc' or 'ndcg@10', got {text!r}",
                          file=file, key=key, line=loc.line(key))
    name, _, k = text.partition("@")
    entry = registry.get("metric", name, key=key, file=file, line=loc.line(key))
    if entry.cls.needs_k and not k:
        raise ConfigError(f"metric {name!r} needs a cutoff, e.g. '{name}@10'", file=file,
                          key=key, line=loc.line(key))
    if k and not entry.cls.needs_k:
        raise ConfigError(f"metric {name!r} takes no cutoff", file=file, key=key,
                          line=loc.line(key))
    if k and (not k.isdigit() or int(k) < 1):
        raise ConfigError(f"cutoff must be a positive integer, got {k!r}", file=file, key=key,
                          line=loc.line(key))
    return MetricSpec(text, name, int(k) if k else None)
