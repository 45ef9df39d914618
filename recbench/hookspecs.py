"""Deprecated alias kept for one release: the hook specifications moved to
:mod:`recbench.registry.hookspecs`. Import from there instead.

The spec functions below are the same objects (they carry pluggy's spec markers), so
``PluginManager.add_hookspecs`` accepts this module as well."""

from __future__ import annotations

from .registry.hookspecs import (HOOKS, hookspec, recbench_register_backbones,
                                 recbench_register_datasets, recbench_register_executors,
                                 recbench_register_losses, recbench_register_metrics,
                                 recbench_register_recommenders, recbench_register_samplers,
                                 recbench_register_splits, recbench_register_tasks)

__all__ = ["HOOKS", "hookspec", "recbench_register_backbones", "recbench_register_datasets",
           "recbench_register_executors", "recbench_register_losses", "recbench_register_metrics",
           "recbench_register_recommenders", "recbench_register_samplers",
           "recbench_register_splits", "recbench_register_tasks"]
