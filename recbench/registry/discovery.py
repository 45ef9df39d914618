"""Plugin discovery and the component registry.

One factory (`build_registry`) makes a pluggy manager, adds the hook specs, loads every
module of the ``recbench`` entry-point group (built-ins included: the core names none),
then calls each registration hook. A plugin whose import fails, or that implements a hook
of unknown (misspelt) name, is recorded and the rest still load. Environment switches:

- ``RECBENCH_DISABLE_PLUGINS=a,b``: skip these entry-point (or distribution) names;
- ``RECBENCH_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points (tests add plugins by hand).
"""

from __future__ import annotations

import importlib.metadata as md
import os
import traceback
from typing import Any, Iterable

import pluggy

from ..errors import PluginError
from . import hookspecs
from .entries import Entry, LoadFailure, Registry
from .params import suggest

ENTRY_POINT_GROUP = "recbench"


def _disabled() -> set[str]:
    raw = os.environ.get("RECBENCH_DISABLE_PLUGINS", "")
    return {s.strip() for s in raw.split(",") if s.strip()}


def _entry_points() -> list[md.EntryPoint]:
    eps = md.entry_points()
    return list(eps.select(group=ENTRY_POINT_GROUP))


def _unknown_hooks(pm: pluggy.PluginManager, plugin: Any) -> list[str]:
    """Hook implementations of `plugin` that match no recbench hook (a misspelt name)."""
    names = []
    for name, caller in vars(pm.hook).items():
        if isinstance(caller, pluggy.HookCaller) and not caller.has_spec():
            if any(impl.plugin is plugin for impl in caller.get_hookimpls()):
                names.append(name)
    return sorted(names)


def _register_checked(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register `plugin`; a hook implementation of unknown name unregisters it again and
    raises PluginError naming the hook and the closest known ones."""
    pm.register(plugin, name=name)
    unknown = _unknown_hooks(pm, plugin)
    if unknown:
        pm.unregister(plugin)
        known = list(hookspecs.HOOKS.values())
        raise PluginError("; ".join(f"unknown hook {h!r}.{suggest(h, known)}" for h in unknown))


def build_registry(extra_plugins: Iterable[Any] = (), *, autoload: bool | None = None
                   ) -> Registry:
    """Discover plugins and return a fresh Registry.

    `extra_plugins` are modules or objects with hook implementations, added after the
    entry points (tests use them). `autoload=None` follows RECBENCH_DISABLE_PLUGIN_AUTOLOAD.
    """
    if autoload is None:
        autoload = os.environ.get("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    pm = pluggy.PluginManager("recbench")
    pm.add_hookspecs(hookspecs)
    registry = Registry()
    sources: dict[int, tuple[str, str, str]] = {}
    disabled = _disabled()

    if autoload:
        seen: set[tuple[str, str]] = set()
        for ep in _entry_points():
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else ""
            if (ep.name, ep.value) in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add((ep.name, ep.value))
            if ep.name in disabled or dist in disabled:
                continue
            try:
                module = ep.load()
                _register_checked(pm, module, f"{dist}:{ep.name}")
            except Exception as exc:  # noqa: BLE001 - reported, the rest still load
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                registry.failures.append(LoadFailure(ep.name, f"{dist} {version}".strip(),
                                                     detail))
                continue
            sources[id(module)] = (ep.name, dist, version)
    for obj in extra_plugins:
        name = getattr(obj, "__name__", type(obj).__name__)
        try:
            _register_checked(pm, obj, f"extra:{name}:{id(obj)}")
        except PluginError as exc:
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            registry.failures.append(LoadFailure(name, "(local)", detail))
            continue
        sources[id(obj)] = (name, "(local)", "")
    pm.check_pending()  # every remaining implementation has a spec: a safety net

    for kind, hook_name in hookspecs.HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            plugin_name, dist, version = sources.get(id(impl.plugin), (impl.plugin_name, "?", ""))

            def register(cls: type, _kind=kind, _p=plugin_name, _d=dist, _v=version) -> type:
                registry.add(Entry(_kind, getattr(cls, "name", ""), cls, _p, _d, _v))
                return cls

            try:
                impl.function(register)
            except PluginError:
                raise
            except Exception as exc:  # noqa: BLE001
                detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                registry.failures.append(
                    LoadFailure(plugin_name, f"{dist} {version}".strip(), detail))
    return registry


_DEFAULT: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry built from installed entry points (built once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = build_registry()
    return _DEFAULT
