"""Suites: TOML files that say which data, split, tasks, models and seeds to run.

A suite is validated completely before anything runs: unknown keys, unknown plugin names
(with the closest suggestion), wrong types or ranges each raise a ConfigError naming the
file, the key path and (best effort) the line. ``${VAR}`` and ``${VAR:-default}`` are
expanded in string values; ``--set key.path=value`` overrides are applied before
validation. Values that came from environment variables are not recorded in results: each
spec's ``record_options`` shows ``${VAR}`` in their place (the cell id still hashes the
expanded value; a ``${VAR:-default}`` whose default was used is recorded as expanded).

Before any work starts the suite also checks that every task can run on the dataset: a
task class may declare ``needs = ("tags",)``, and a dataset loader class may declare what
it provides without loading, as ``provides = ("interactions", ...)`` or as a method
``provides(self, suite_dir)`` returning such names (None: unknown, not checked).

Layout (see README "Suite format")::

    [suite]     name, description, seeds, primary_metric, bootstrap
    [dataset]   name = "<dataset plugin>", then that plugin's parameters
    [dataset.fallback]  the dataset used when the first one's data is not there (loud
                notice); [dataset.fallback.models.<model id>] model parameters used only then
    [split]     name = "<split plugin>", seed, then its parameters
    [features]  log-mel / waveform parameters (optional)
    [run]       executor, executor parameters, device, chunk_users
    [[tasks]]   name = "<task plugin>", metrics = [...], then its parameters
    [[models]]  name = "<recommender plugin>", id, label, then its parameters; optional
                [models.search]: a search space over them (recbench.tuning)
    [tuning]    sampler, trials / seconds (the same budget for every searched model),
                metric, task, pruner, seed, refit, per_model (see recbench.suite.tuning)
    [[references]]  task, label, and published metric values (reference rows)
    [[claims]]  label, model, baseline, metric, task, expect: judged on the leaderboard by
                a paired bootstrap over users (recbench.suite.claims)
"""

from __future__ import annotations

from .model import (SECTIONS, MAX_SEED, ENV_KEY, SUITE_PARAMS, RUN_PARAMS, FEATURE_PARAMS,
                    ComponentSpec, MetricSpec, TaskSpec, Suite)
from .vars import expand_vars
from .overrides import parse_override, apply_override
from .load import load_suite
from .validate import validate_raw

__all__ = ["ComponentSpec", "ENV_KEY", "FEATURE_PARAMS", "MAX_SEED", "MetricSpec", "RUN_PARAMS",
           "SECTIONS", "SUITE_PARAMS", "Suite", "TaskSpec", "apply_override", "expand_vars",
           "load_suite", "parse_override", "validate_raw"]
