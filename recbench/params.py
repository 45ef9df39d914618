"""Deprecated alias kept for one release: declared plugin parameters moved to
:mod:`recbench.registry.params`. Import from there instead."""

from __future__ import annotations

from .registry.params import NESTED_PLUGIN_KINDS, Param, ParamSet, suggest

__all__ = ["NESTED_PLUGIN_KINDS", "Param", "ParamSet", "suggest"]
