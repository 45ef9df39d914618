"""Deprecated alias kept for one release: the bootstrap moved to
:mod:`recbench.metrics.uncertainty`. Import from there instead."""

from __future__ import annotations

from .metrics.uncertainty import bootstrap_ci, bootstrap_stats, paired_bootstrap, seed_summary

__all__ = ["bootstrap_ci", "bootstrap_stats", "paired_bootstrap", "seed_summary"]
