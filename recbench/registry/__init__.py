"""The registry stage: plugin discovery, the hook specs, the component registry and the
declared parameters of components.

- :mod:`.discovery`: :func:`build_registry` (a pluggy manager loading the ``recbench``
  entry-point group) and :func:`default_registry`;
- :mod:`.entries`: :class:`Registry`, :class:`Entry`, :class:`LoadFailure` and the naming
  rules checked at registration;
- :mod:`.hookspecs`: one registration hook per component kind;
- :mod:`.params`: :class:`Param`, :class:`ParamSet` (validation of plugin options).

``recbench.hookspecs`` and ``recbench.params`` are aliases of the last two, kept for one
release.
"""

from __future__ import annotations

from . import hookspecs, params
from .discovery import ENTRY_POINT_GROUP, build_registry, default_registry
from .entries import NAME_RE, RESERVED_KEYS, Entry, LoadFailure, Registry

__all__ = ["ENTRY_POINT_GROUP", "NAME_RE", "RESERVED_KEYS", "Entry", "LoadFailure", "Registry",
           "build_registry", "default_registry", "hookspecs", "params"]
