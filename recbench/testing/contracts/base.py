"""ComponentContract: what every contract shares (the component under test, its factory)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from recbench.components import Component
from recbench import defaults
from recbench.errors import ConfigError


PROTOCOLS = defaults.PROTOCOLS


def _registry() -> Any:
    from recbench.registry import default_registry

    return default_registry()


class ComponentContract:
    """Checks shared by every kind: identity, declared parameters, option validation."""

    kind: ClassVar[str] = ""
    component: ClassVar[type[Component] | str | None] = None
    options: ClassVar[dict[str, Any]] = {}

    @classmethod
    def component_class(cls) -> type[Component]:
        """The class under test (looked up in the registry when `component` is a name)."""
        if isinstance(cls.component, str):
            return _registry().get(cls.kind, cls.component).cls
        if cls.component is None:
            raise TypeError(f"{cls.__name__}: set `component` or override make_component()")
        return cls.component

    def make_component(self, **overrides: Any) -> Any:
        """The component under test, with `options` updated by `overrides`."""
        return self.component_class()(**{**self.options, **overrides})

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _one_torch_thread(cls):
        """Tiny models on shared machines: one intra-op thread is faster and reproducible."""
        try:
            import torch
        except ImportError:  # pragma: no cover
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(before)

    def test_identity(self):
        cls = self.component_class()
        assert cls.kind == self.kind, f"{cls.__name__} is a {cls.kind!r}, not a {self.kind!r}"
        assert cls.name and cls.name == cls.name.strip(), "a component needs a name"
        assert (cls.description or cls.__doc__ or "").strip(), "a component needs a description"
        assert len({p.name for p in cls.params}) == len(cls.params), "duplicate parameters"

    def test_unknown_option_is_rejected(self):
        with pytest.raises(ConfigError):
            self.make_component(no_such_option_for_contract_tests=1)
