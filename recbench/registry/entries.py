"""The component registry: registered classes by kind and name, checked as they register."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from ..errors import ConfigError, PluginError
from .params import suggest

if TYPE_CHECKING:
    from ..components import (Backbone, Component, DatasetLoader, Executor, Loss, Metric,
                              Recommender, Sampler, Splitter, Task)

C = TypeVar("C", bound="Component")

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


def _kinds() -> dict[str, type[Component]]:
    """recbench.components.KINDS, imported on first use: recbench.components imports
    .params of this package, so a module-level import here would be circular."""
    from ..components import KINDS

    return KINDS


@dataclass(frozen=True)
class Entry(Generic[C]):
    """A registered component class and where it came from (typed by its kind's base)."""

    kind: str
    name: str
    cls: type[C]
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

    entries: dict[str, dict[str, Entry]] = field(default_factory=lambda: {k: {} for k in _kinds()})
    failures: list[LoadFailure] = field(default_factory=list)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def all(self, kind: str | None = None) -> list[Entry]:
        kinds = [kind] if kind else list(_kinds())
        return [self.entries[k][n] for k in kinds for n in sorted(self.entries[k])]

    # The kind names a suite uses give their base class to type checkers (same code).

    @overload
    def get(self, kind: Literal["recommender"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Recommender]: ...

    @overload
    def get(self, kind: Literal["backbone"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Backbone]: ...

    @overload
    def get(self, kind: Literal["loss"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Loss]: ...

    @overload
    def get(self, kind: Literal["sampler"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Sampler]: ...

    @overload
    def get(self, kind: Literal["dataset"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[DatasetLoader]: ...

    @overload
    def get(self, kind: Literal["split"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Splitter]: ...

    @overload
    def get(self, kind: Literal["metric"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Metric]: ...

    @overload
    def get(self, kind: Literal["executor"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Executor]: ...

    @overload
    def get(self, kind: Literal["task"], name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Task]: ...

    @overload
    def get(self, kind: str, name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Component]: ...

    def get(self, kind: str, name: str, *, key: str | None = None,
            file: str | None = None, line: int | None = None) -> Entry[Any]:
        """The entry for `name`, or a ConfigError suggesting the closest names."""
        if kind not in self.entries:
            raise ConfigError(f"unknown component kind {kind!r}.{suggest(kind, list(_kinds()))}",
                              file=file, key=key, line=line)
        if name not in self.entries[kind]:
            names = self.names(kind)
            raise ConfigError(
                f"unknown {kind} {name!r}.{suggest(name, names)} "
                f"Available: {', '.join(names) or '(none)'}", file=file, key=key, line=line)
        return self.entries[kind][name]

    @overload
    def create(self, kind: Literal["recommender"], name: str, /, **options: Any) -> Recommender: ...

    @overload
    def create(self, kind: Literal["backbone"], name: str, /, **options: Any) -> Backbone: ...

    @overload
    def create(self, kind: Literal["loss"], name: str, /, **options: Any) -> Loss: ...

    @overload
    def create(self, kind: Literal["sampler"], name: str, /, **options: Any) -> Sampler: ...

    @overload
    def create(self, kind: Literal["dataset"], name: str, /, **options: Any) -> DatasetLoader: ...

    @overload
    def create(self, kind: Literal["split"], name: str, /, **options: Any) -> Splitter: ...

    @overload
    def create(self, kind: Literal["metric"], name: str, /, **options: Any) -> Metric: ...

    @overload
    def create(self, kind: Literal["executor"], name: str, /, **options: Any) -> Executor: ...

    @overload
    def create(self, kind: Literal["task"], name: str, /, **options: Any) -> Task: ...

    @overload
    def create(self, kind: str, name: str, /, **options: Any) -> Component: ...

    def create(self, kind: str, name: str, /, **options: Any) -> Any:
        """Instantiate a component with resolved options."""
        return self.get(kind, name).cls(**options)

    def metric_direction(self, column: str) -> bool | None:
        """``higher_is_better`` of the metric plugin a column names ('ndcg@10' -> 'ndcg'),
        or None when it is not a registered metric or declares no direction."""
        entry = self.entries.get("metric", {}).get(column.split("@", 1)[0])
        hib = getattr(entry.cls, "higher_is_better", None) if entry is not None else None
        return hib if isinstance(hib, bool) else None

    def add(self, entry: Entry[Any]) -> None:
        base = _kinds()[entry.kind]
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
