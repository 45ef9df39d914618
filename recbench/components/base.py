"""Component: the base of every plugin kind (parameters, ``self.options``)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..registry.params import Param, ParamSet


class Component:
    """Base of all plugin components.

    Class attributes: `name` (unique within its kind), `description` (one line),
    `params` (declared parameters). Instances hold resolved values in `self.options`.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **options: Any):
        self.options: dict[str, Any] = ParamSet(tuple(self.params)).resolve(
            options, where=f"{self.kind}.{self.name}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"
