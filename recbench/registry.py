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
import re
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable

import pluggy

from . import hookspecs
from .components import KINDS, Component
from .errors import ConfigError, PluginError
from .params import suggest

ENTRY_POINT_GROUP = "recbench"

# A component name a suite can address: starts with a letter or digit, then letters,
# digits, "-" or "_"; no "@" (the metric cutoff separator, `ndcg@10`), no whitespace, no
# ".", "=", "[", "]" (`--set models.<name>.lr=...` paths) and no ",".
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")

# Keys that a suite reads itself in a component's table, so a plugin of that kind may not
# declare a parameter of the same name (it could never be set).
RESERVED_KEYS: dict[str, tuple[str, ...]] = {
    "recommender": ("name", "id", "label"),
    "dataset": ("name", "fallback"),
    "split": ("name", "seed"),
    "task": ("name", "metrics"),
}


@dataclass(frozen=True)
class Entry:
    """A registered component class and where it came from."""

    kind: str
    name: str
    cls: type
    plugin: str
    dist: str
    version: str

    @property
    def provider(self) -> str:
        return f"{self.dist} {self.version}".strip()

    @property
    def description(self) -> str:
        return (self.cls.description or (self.cls.__doc__ or "").strip().split("\n")[0]).strip()


@dataclass(frozen=True)
class LoadFailure:
    """A plugin that could not be imported or registered."""

    plugin: str
    dist: str
    error: str


@dataclass
class Registry:
    """Registered components by kind and name, plus the plugins that failed to load."""

    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failures: list[LoadFailure] = field(default_factory=list)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def all(self, kind: str | None = None) -> list[Entry]:
        kinds = [kind] if kind else list(KINDS)
        return [self.entries[k][n] for k in kinds for n in sorted(self.entries[k])]

    def get(self, kind: str, name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry:
        """The entry for `name`, or a ConfigError suggesting the closest names."""
        if kind not in self.entries:
            raise ConfigError(f"unknown component kind {kind!r}.{suggest(kind, list(KINDS))}",
                              file=file, key=key, line=line)
        if name not in self.entries[kind]:
            names = self.names(kind)
            raise ConfigError(
                f"unknown {kind} {name!r}.{suggest(name, names)} "
                f"Available: {', '.join(names) or '(none)'}", file=file, key=key, line=line)
        return self.entries[kind][name]

    def create(self, kind: str, name: str, /, **options: Any) -> Component:
        """Instantiate a component with resolved options."""
        return self.get(kind, name).cls(**options)

    def add(self, entry: Entry) -> None:
        base = KINDS[entry.kind]
        if not (isinstance(entry.cls, type) and issubclass(entry.cls, base)):
            raise PluginError(f"plugin {entry.plugin} ({entry.provider}) registered "
                              f"{entry.cls!r} as a {entry.kind}, but it does not subclass "
                              f"recbench.components.{base.__name__}")
        if not entry.cls.name:
            raise PluginError(f"plugin {entry.plugin} ({entry.provider}) registered "
                              f"{entry.cls.__name__} without a `name`")
        if not isinstance(entry.cls.name, str) or not NAME_RE.fullmatch(entry.cls.name):
            raise PluginError(f"plugin {entry.plugin} ({entry.provider}): {entry.kind} name "
                              f"{entry.cls.name!r} cannot be used in a suite (letters, "
                              f"digits, '-' and '_' only; '@' separates a metric's cutoff)")
        reserved = set(RESERVED_KEYS.get(entry.kind, ("name",)))
        clash = reserved & {p.name for p in entry.cls.params}
        if clash:
            raise PluginError(f"plugin {entry.plugin} ({entry.provider}): {entry.kind} "
                              f"{entry.cls.name!r} declares reserved parameter(s) "
                              f"{', '.join(sorted(clash))} (suite keys of their own; "
                              f"reserved for a {entry.kind}: {', '.join(sorted(reserved))})")
        other = self.entries[entry.kind].get(entry.cls.name)
        if other is not None and other.cls is not entry.cls:
            raise PluginError(
                f"{entry.kind} {entry.cls.name!r} is registered twice: by plugin "
                f"{other.plugin} ({other.provider}, {other.cls.__module__}.{other.cls.__name__})"
                f" and by plugin {entry.plugin} ({entry.provider}, "
                f"{entry.cls.__module__}.{entry.cls.__name__})")
        self.entries[entry.kind][entry.cls.name] = entry


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
