"""Validation of a parsed suite: every section, plugin and task need, before anything runs."""

from __future__ import annotations

import copy
import math
import os
import re
from pathlib import Path
from typing import Any

from .. import defaults
from ..errors import ConfigError, DataUnavailable, RecbenchError
from ..registry.params import Param, suggest
from ..registry import RESERVED_KEYS, Registry
from .claims import validate_claims
from .fallback import _fallback_model_specs
from .locate import _Locator
from .model import (ComponentSpec, ENV_KEY, FEATURE_PARAMS, MAX_SEED, RUN_PARAMS, SECTIONS,
                    SUITE_PARAMS, Suite, TaskSpec, _RESERVED_MODEL_KEYS)
from .specs import _parse_metric, _plugin_spec
from .tuning import resolve_tuning


def validate_raw(raw: dict[str, Any], registry: Registry, file: str, text: str = "") -> Suite:
    """Validate an already-parsed suite dictionary."""
    loc = _Locator(text)
    from_env: dict[str, str] = dict(raw.get(ENV_KEY) or {})
    for key in raw:
        if key == ENV_KEY:
            continue
        if key not in SECTIONS:
            raise ConfigError(f"unknown section.{suggest(key, SECTIONS)} Known: "
                              f"{', '.join(SECTIONS)}", file=file, key=key, line=loc.line(key))

    def table(name: str, default: Any) -> Any:
        value = raw.get(name, default)
        want = list if isinstance(default, list) else dict
        if not isinstance(value, want):
            raise ConfigError(f"expected {'an array of tables' if want is list else 'a table'}",
                              file=file, key=name, line=loc.line(name))
        return value

    suite_t = table("suite", {})
    suite_o = SUITE_PARAMS.resolve(suite_t, "suite", file,
                                   {k: loc.line(f"suite.{k}") for k in suite_t})
    name = suite_o["name"] or Path(file).stem
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ConfigError("must contain only letters, digits, '_', '-' and '.'", file=file,
                          key="suite.name", line=loc.line("suite.name"))
    results = Path("/results")
    if not name.strip(".") or Path(os.path.normpath(results / name)).parent != results:
        raise ConfigError(f"{name!r} names no folder inside results/ (it would write "
                          f"outside it); choose a name with a letter or digit", file=file,
                          key="suite.name", line=loc.line("suite.name"))
    if not suite_o["seeds"]:
        raise ConfigError("needs at least one seed", file=file, key="suite.seeds",
                          line=loc.line("suite.seeds"))

    if "dataset" not in raw:
        raise ConfigError("missing [dataset] section", file=file, key="dataset")
    ds_t = dict(table("dataset", {}))
    fallback_t = ds_t.pop("fallback", None)
    fallback_models = None
    if isinstance(fallback_t, dict) and "models" in fallback_t:
        fallback_t = dict(fallback_t)
        fallback_models = fallback_t.pop("models")
    dataset = _plugin_spec(registry, "dataset", ds_t, "dataset", file, loc,
                           reserved=RESERVED_KEYS["dataset"], from_env=from_env)
    fallback = (_plugin_spec(registry, "dataset", fallback_t, "dataset.fallback", file, loc,
                             from_env=from_env)
                if fallback_t is not None else None)

    split_t = dict(table("split", {"name": defaults.SPLIT}))
    split_t.setdefault("name", defaults.SPLIT)
    split_seed = Param("seed", int, 0, min=0, max=MAX_SEED).check(
        split_t.pop("seed", 0), "split.seed", file, loc.line("split.seed"))
    split = _plugin_spec(registry, "split", split_t, "split", file, loc,
                         reserved=RESERVED_KEYS["split"], from_env=from_env)

    feat_t = table("features", {})
    features = FEATURE_PARAMS.resolve(feat_t, "features", file,
                                      {k: loc.line(f"features.{k}") for k in feat_t})
    features = {k: v for k, v in features.items() if v is not None}

    run_t = table("run", {})
    run = RUN_PARAMS.resolve(run_t, "run", file, {k: loc.line(f"run.{k}") for k in run_t})
    if "name" in run["executor_params"]:
        raise ConfigError("`name` is not an executor parameter (set run.executor)",
                          file=file, key="run.executor_params.name",
                          line=loc.line("run.executor_params"))
    executor = _plugin_spec(registry, "executor",
                            {"name": run["executor"], **run["executor_params"]},
                            "run.executor", file, loc, from_env=from_env,
                            raw_key="run.executor_params")

    tasks_t = table("tasks", [{"name": defaults.TASK}])
    if not tasks_t:
        raise ConfigError("needs at least one [[tasks]] entry", file=file, key="tasks")
    tasks = []
    for i, t in enumerate(tasks_t):
        key = f"tasks[{i}]"
        if not isinstance(t, dict):
            raise ConfigError("expected a table", file=file, key=key, line=loc.line(key))
        t = dict(t)
        metric_names = t.pop("metrics", None)
        spec = _plugin_spec(registry, "task", t, key, file, loc,
                            reserved=RESERVED_KEYS["task"], from_env=from_env)
        cls = registry.get("task", spec.name).cls
        if metric_names is None:
            metric_names = list(cls.default_metrics)
        if not isinstance(metric_names, list):
            raise ConfigError("expected a list of metric names", file=file,
                              key=f"{key}.metrics", line=loc.line(f"{key}.metrics"))
        metrics = [_parse_metric(m, f"{key}.metrics[{j}]", registry, file, loc)
                   for j, m in enumerate(metric_names)]
        spec.id = spec.name
        tasks.append(TaskSpec(spec, metrics))
    ids = [t.spec.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ConfigError("each task may appear once", file=file, key="tasks")

    models_t = table("models", [])
    if not models_t:
        raise ConfigError("needs at least one [[models]] entry", file=file, key="models")
    models: list[ComponentSpec] = []
    seen: dict[str, str] = {}
    searches: dict[int, Any] = {}
    for i, m in enumerate(models_t):
        key = f"models[{i}]"
        if isinstance(m, dict) and "search" in m:
            searches[i] = m["search"]
        spec = _plugin_spec(registry, "recommender", m, key, file, loc,
                            reserved=_RESERVED_MODEL_KEYS, from_env=from_env)
        spec.id = str(m.get("id", spec.name))
        spec.label = str(m.get("label", spec.id))
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", spec.id):
            raise ConfigError("id must contain only letters, digits and _ . + -", file=file,
                              key=f"{key}.id", line=loc.line(f"{key}.id"))
        if spec.id in seen:
            raise ConfigError(f"duplicate model id {spec.id!r} (also {seen[spec.id]}); give "
                              f"each entry a distinct `id`", file=file, key=f"{key}.id",
                              line=loc.line(key))
        seen[spec.id] = key
        models.append(spec)

    resolve_tuning(raw, registry, tasks, searches, models, file, loc)
    fallback_specs = _fallback_model_specs(registry, fallback_models, models_t, models,
                                           file, text, from_env)
    for spec in fallback_specs.values():  # the fallback changes parameters, not the search
        spec.tuning = next(m.tuning for m in models if m.id == spec.id)

    primary = suite_o["primary_metric"]
    if primary is not None:
        columns = {m.column for t in tasks for m in t.metrics}
        columns |= {registry.get("task", t.spec.name).cls.primary_metric for t in tasks}
        if primary not in columns:
            raise ConfigError(f"{primary!r} is not computed by any task.{suggest(primary, columns)}",
                              file=file, key="suite.primary_metric",
                              line=loc.line("suite.primary_metric"))

    refs = table("references", [])
    task_ids = [t.spec.id for t in tasks]
    for i, r in enumerate(refs):
        key = f"references[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("label"), str):
            raise ConfigError("expected a table with a `label` and metric values", file=file,
                              key=key, line=loc.line(key))
        if "task" in r and r["task"] not in task_ids:
            raise ConfigError(f"names no task of this suite: {r['task']!r}."
                              f"{suggest(str(r['task']), task_ids)} Tasks: "
                              f"{', '.join(task_ids)}", file=file, key=f"{key}.task",
                              line=loc.line(f"{key}.task"))
        for k, v in r.items():
            if k in ("label", "task", "source", "uses_test_interactions"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"expected a number, got {v!r}", file=file, key=f"{key}.{k}",
                                  line=loc.line(f"{key}.{k}"))
            if not math.isfinite(v):
                raise ConfigError(f"must be a finite number, got {v!r}", file=file,
                                  key=f"{key}.{k}", line=loc.line(f"{key}.{k}"))

    claims = validate_claims(raw.get("claims"), registry, tasks, models, suite_o["bootstrap"],
                             suite_o["confidence"], file, loc)

    # Checks that need the data (roots exist …), still before any work starts. A declared
    # [dataset.fallback] replaces a dataset whose data is not there, with a loud notice.
    suite_dir = str(Path(file).parent)
    notice = None
    try:
        loader = registry.get("dataset", dataset.name).cls(**dataset.options)
        loader.validate(suite_dir)
    except RecbenchError as exc:
        if fallback is None or not isinstance(exc, DataUnavailable):
            raise ConfigError(str(exc), file=file, key="dataset",
                              line=loc.line("dataset")) from None
        notice = (f"dataset {dataset.name!r} is not available ({exc}); running on the "
                  f"fallback {fallback.name!r} {fallback.options.get('preset') or ''} instead. "
                  f"These numbers are NOT the paper's data.")
        dataset = fallback
        if fallback_specs:
            models = [fallback_specs.get(m.id, m) for m in models]
            notice += (" Model parameters set for the fallback ([dataset.fallback.models]): "
                       + "; ".join(f"{mid}: {', '.join(sorted(values))}"
                                   for mid, values in (fallback_models or {}).items())
                       + ".")
        try:
            loader = registry.get("dataset", dataset.name).cls(**dataset.options)
            loader.validate(suite_dir)
        except RecbenchError as exc2:
            raise ConfigError(str(exc2), file=file, key="dataset.fallback",
                              line=loc.line("dataset.fallback")) from None
    _check_task_needs(registry, tasks, dataset, loader, suite_dir, file, loc)

    return Suite(path=file, name=name, description=suite_o["description"],
                 seeds=suite_o["seeds"], primary_metric=primary,
                 bootstrap=suite_o["bootstrap"], confidence=suite_o["confidence"],
                 dataset=dataset, split=split, split_seed=split_seed, features=features,
                 run=run, executor=executor, tasks=tasks, models=models,
                 references=[dict(r) for r in refs], claims=claims, raw=copy.deepcopy(raw),
                 notice=notice)


def _check_task_needs(registry: Registry, tasks: list[TaskSpec], dataset: ComponentSpec,
                      loader: Any, suite_dir: str, file: str, loc: _Locator) -> None:
    """A task whose class declares `needs` (e.g. ("tags",)) must get a dataset that
    provides them, when the dataset loader says what it provides (see the module doc)."""
    provides = getattr(loader, "provides", None)
    if callable(provides):
        provides = provides(suite_dir)
    if provides is None:
        return
    provides = set(provides)
    for i, t in enumerate(tasks):
        needs = tuple(getattr(registry.get("task", t.spec.name).cls, "needs", ()) or ())
        missing = [n for n in needs if n not in provides]
        if missing:
            key = f"tasks[{i}].name"
            raise ConfigError(f"task {t.spec.name!r} needs {', '.join(missing)}, which "
                              f"dataset {dataset.name!r} does not provide (it has: "
                              f"{', '.join(sorted(provides)) or 'nothing declared'}); drop the "
                              f"task or use a dataset with {', '.join(missing)}", file=file,
                              key=key, line=loc.line(key))
