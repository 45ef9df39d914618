"""Suites: TOML files that say which data, split, tasks, models and seeds to run.

A suite is validated completely before anything runs: unknown keys, unknown plugin names
(with the closest suggestion), wrong types or ranges each raise a ConfigError naming the
file, the key path and (best effort) the line. ``${VAR}`` and ``${VAR:-default}`` are
expanded in string values; ``--set key.path=value`` overrides are applied before
validation.

Layout (see README "Suite format")::

    [suite]     name, description, seeds, primary_metric, bootstrap
    [dataset]   name = "<dataset plugin>", then that plugin's parameters
    [split]     name = "<split plugin>", seed, then its parameters
    [features]  log-mel / waveform parameters (optional)
    [run]       executor, executor parameters, device, chunk_users
    [[tasks]]   name = "<task plugin>", metrics = [...], then its parameters
    [[models]]  name = "<recommender plugin>", id, label, then its parameters
    [[references]]  task, label, and published metric values (reference rows)
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from .errors import ConfigError, DataUnavailable, RecbenchError
from .params import Param, ParamSet, suggest
from .registry import Registry

SECTIONS = ("suite", "dataset", "split", "features", "run", "tasks", "models", "references")

SUITE_PARAMS = ParamSet((
    Param("name", str, None, "Suite name (default: the file's stem); names the output folder"),
    Param("description", str, "", "One line shown in the leaderboard"),
    Param("seeds", list, [0], "Model seeds: one cell per task x model x seed", item_type=int),
    Param("primary_metric", str, None, "Metric that ranks the leaderboard (default: the task's)"),
    Param("bootstrap", int, 1000, "Bootstrap resamples over users for confidence intervals",
          min=0),
    Param("confidence", float, 0.95, "Confidence level of the intervals", min=0.5, max=0.999),
))

RUN_PARAMS = ParamSet((
    Param("executor", str, "local", "Executor plugin that runs the cells"),
    Param("executor_params", dict, {}, "Parameters of the executor plugin"),
    Param("device", str, "auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda")),
    Param("chunk_users", int, 1024, "Users scored per block (bounds memory)", min=1),
    Param("cache_dir", str, None, "Feature cache folder (default: ~/.cache/recbench)"),
    # thread policy (recbench/threads.py)
    Param("threads", int, None, "Threads of a local run (default: the usable CPUs, or "
          "RECBENCH_THREADS; --threads wins)", min=1),
    Param("reproducible", bool, False, "Gated runs: 1 thread per cell and CPU kernels pinned "
          "to AVX2, so the numbers do not depend on the machine or thread count"),
))

FEATURE_PARAMS = ParamSet((
    Param("sample_rate", int, None, "Audio sample rate in Hz (default: the dataset's or 22050)",
          min=1000),
    Param("n_fft", int, None, "FFT size (default 1024)", min=16),
    Param("hop_length", int, None, "Hop in samples (default 512)", min=1),
    Param("n_mels", int, None, "Mel bins (default 128)", min=1),
    Param("window_s", float, None, "Window length in seconds (default 3.0)", min=0.01),
    Param("fmin", float, None, "Lowest mel frequency in Hz", min=0),
    Param("fmax", float, None, "Highest mel frequency in Hz", min=0),
    Param("clip_s", float, None, "Crop or pad every clip to this length in seconds", min=0.01),
    Param("power", float, None, "Spectrogram exponent before the log (2 = power)", min=0.1),
    Param("amin", float, None, "Floor added before the log", min=0),
))

_RESERVED_MODEL_KEYS = ("name", "id", "label")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class ComponentSpec:
    """A resolved reference to a plugin: kind, name, validated options, and where it came from."""

    kind: str
    name: str
    options: dict[str, Any]
    key: str
    id: str = ""
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "options": self.options, "id": self.id,
                "label": self.label}

    @property
    def config_hash(self) -> str:
        blob = json.dumps({"name": self.name, "options": self.options}, sort_keys=True,
                          default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class MetricSpec:
    """A metric requested by a task: column name ("ndcg@10"), plugin name, cutoff."""

    column: str
    name: str
    k: int | None


@dataclass
class TaskSpec:
    """A task of the suite with its metrics."""

    spec: ComponentSpec
    metrics: list[MetricSpec]


@dataclass
class Suite:
    """A validated suite."""

    path: str
    name: str
    description: str
    seeds: list[int]
    primary_metric: str | None
    bootstrap: int
    confidence: float
    dataset: ComponentSpec
    split: ComponentSpec
    split_seed: int
    features: dict[str, Any]
    run: dict[str, Any]
    executor: ComponentSpec
    tasks: list[TaskSpec]
    models: list[ComponentSpec]
    references: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notice: str | None = None  # set when the dataset's fallback replaced it


# --------------------------------------------------------------------------- helpers


class _Locator:
    """Best-effort line numbers for key paths (tomllib reports none for valid TOML)."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line(self, key: str) -> int | None:
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", key)
        if not parts:
            return None
        section, rest = parts[0], parts[1:]
        index = 0
        if rest and rest[0].startswith("["):
            index = int(rest[0][1:-1])
            rest = rest[1:]
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(section)}\s*\]\]?\s*(#.*)?$")
        start, seen = None, -1
        for i, ln in enumerate(self.lines):
            if header.match(ln):
                seen += 1
                if seen == index:
                    start = i
                    break
        if start is None:
            return None
        if not rest:
            return start + 1
        leaf = re.compile(rf"^\s*\"?{re.escape(rest[0])}\"?\s*=")
        for j in range(start + 1, len(self.lines)):
            if re.match(r"^\s*\[", self.lines[j]):
                break
            if leaf.match(self.lines[j]):
                return j + 1
        return start + 1


def expand_vars(value: Any, key: str, file: str) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string inside `value`."""
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            var, default = m.group(1), m.group(2)
            if var in os.environ and os.environ[var] != "":
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(f"environment variable ${{{var}}} is not set (use "
                              f"${{{var}:-default}} for a default)", file=file, key=key)
        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_vars(v, f"{key}.{k}" if key else k, file) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, f"{key}[{i}]", file) for i, v in enumerate(value)]
    return value


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """`"models.dcue.epochs=3"` -> (["models", "dcue", "epochs"], 3). Values are TOML
    literals when they parse as such, else plain strings."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    path: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", key.strip()):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    if not path:
        raise ConfigError(f"--set {text!r}: empty key")
    return path, value


def apply_override(raw: dict[str, Any], path: list[str | int], value: Any, text: str) -> None:
    """Set `value` at `path` in the raw suite; list entries may be addressed by id/name."""
    node: Any = raw
    for i, part in enumerate(path[:-1]):
        if isinstance(node, list):
            if isinstance(part, str):
                matches = [e for e in node if isinstance(e, dict)
                           and part in (e.get("id"), e.get("name"))]
                if len(matches) != 1:
                    raise ConfigError(f"--set {text}: no single entry with id or name {part!r}")
                node = matches[0]
            else:
                if part >= len(node):
                    raise ConfigError(f"--set {text}: index {part} out of range")
                node = node[part]
        else:
            nxt = path[i + 1]
            if part not in node:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
    last = path[-1]
    if isinstance(node, list):
        raise ConfigError(f"--set {text}: cannot set a whole list entry")
    node[last] = value


def _plugin_spec(registry: Registry, kind: str, table: Any, key: str, file: str,
                 loc: _Locator, reserved: tuple[str, ...] = ("name",)) -> ComponentSpec:
    if not isinstance(table, dict):
        raise ConfigError(f"expected a table, got {type(table).__name__}", file=file, key=key,
                          line=loc.line(key))
    name = table.get("name")
    if not isinstance(name, str):
        raise ConfigError(f"missing `name` (the {kind} plugin to use)", file=file,
                          key=f"{key}.name", line=loc.line(key))
    entry = registry.get(kind, name, key=f"{key}.name", file=file,
                         line=loc.line(f"{key}.name"))
    values = {k: v for k, v in table.items() if k not in reserved}
    lines = {k: loc.line(f"{key}.{k}") for k in values}
    options = ParamSet(tuple(entry.cls.params)).resolve(values, key, file, lines)
    try:
        entry.cls(**options)
    except RecbenchError:
        raise
    except Exception as exc:  # a plugin's own check of its options
        raise ConfigError(str(exc), file=file, key=key, line=loc.line(key)) from exc
    return ComponentSpec(kind, name, options, key)


def _parse_metric(text: Any, key: str, registry: Registry, file: str, loc: _Locator
                  ) -> MetricSpec:
    if not isinstance(text, str):
        raise ConfigError(f"expected a metric name like 'auc' or 'ndcg@10', got {text!r}",
                          file=file, key=key, line=loc.line(key))
    name, _, k = text.partition("@")
    entry = registry.get("metric", name, key=key, file=file, line=loc.line(key))
    if entry.cls.needs_k and not k:
        raise ConfigError(f"metric {name!r} needs a cutoff, e.g. '{name}@10'", file=file,
                          key=key, line=loc.line(key))
    if k and not entry.cls.needs_k:
        raise ConfigError(f"metric {name!r} takes no cutoff", file=file, key=key,
                          line=loc.line(key))
    if k and (not k.isdigit() or int(k) < 1):
        raise ConfigError(f"cutoff must be a positive integer, got {k!r}", file=file, key=key,
                          line=loc.line(key))
    return MetricSpec(text, name, int(k) if k else None)


# --------------------------------------------------------------------------- loading


def load_suite(path: str | os.PathLike, registry: Registry,
               overrides: list[str] = ()) -> Suite:
    """Read, expand, override and validate a suite file. Raises ConfigError on any problem."""
    path = Path(path)
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("suite file not found", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read suite: {exc.strerror}", file=file) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(m.group(1)) if m else None)
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        raise ConfigError(f"invalid TOML: {msg}", file=file, line=line) from None
    for ov in overrides:
        p, v = parse_override(ov)
        apply_override(raw, p, v, ov)
    raw = expand_vars(raw, "", file)
    return validate_raw(raw, registry, file, text)


def validate_raw(raw: dict[str, Any], registry: Registry, file: str, text: str = "") -> Suite:
    """Validate an already-parsed suite dictionary."""
    loc = _Locator(text)
    for key in raw:
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
    if not suite_o["seeds"]:
        raise ConfigError("needs at least one seed", file=file, key="suite.seeds",
                          line=loc.line("suite.seeds"))

    if "dataset" not in raw:
        raise ConfigError("missing [dataset] section", file=file, key="dataset")
    ds_t = dict(table("dataset", {}))
    fallback_t = ds_t.pop("fallback", None)
    dataset = _plugin_spec(registry, "dataset", ds_t, "dataset", file, loc)
    fallback = (_plugin_spec(registry, "dataset", fallback_t, "dataset.fallback", file, loc)
                if fallback_t is not None else None)

    split_t = dict(table("split", {"name": "cold-item"}))
    split_t.setdefault("name", "cold-item")
    split_seed = split_t.pop("seed", 0)
    if isinstance(split_seed, bool) or not isinstance(split_seed, int):
        raise ConfigError(f"expected int, got {split_seed!r}", file=file, key="split.seed",
                          line=loc.line("split.seed"))
    split = _plugin_spec(registry, "split", split_t, "split", file, loc)

    feat_t = table("features", {})
    features = FEATURE_PARAMS.resolve(feat_t, "features", file,
                                      {k: loc.line(f"features.{k}") for k in feat_t})
    features = {k: v for k, v in features.items() if v is not None}

    run_t = table("run", {})
    run = RUN_PARAMS.resolve(run_t, "run", file, {k: loc.line(f"run.{k}") for k in run_t})
    executor = _plugin_spec(registry, "executor",
                            {"name": run["executor"], **run["executor_params"]},
                            "run.executor", file, loc)

    tasks_t = table("tasks", [{"name": "recommendation"}])
    if not tasks_t:
        raise ConfigError("needs at least one [[tasks]] entry", file=file, key="tasks")
    tasks = []
    for i, t in enumerate(tasks_t):
        key = f"tasks[{i}]"
        if not isinstance(t, dict):
            raise ConfigError("expected a table", file=file, key=key, line=loc.line(key))
        t = dict(t)
        metric_names = t.pop("metrics", None)
        spec = _plugin_spec(registry, "task", t, key, file, loc)
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
    models, seen = [], {}
    for i, m in enumerate(models_t):
        key = f"models[{i}]"
        spec = _plugin_spec(registry, "recommender", m, key, file, loc,
                            reserved=_RESERVED_MODEL_KEYS)
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

    primary = suite_o["primary_metric"]
    if primary is not None:
        columns = {m.column for t in tasks for m in t.metrics}
        columns |= {registry.get("task", t.spec.name).cls.primary_metric for t in tasks}
        if primary not in columns:
            raise ConfigError(f"{primary!r} is not computed by any task.{suggest(primary, columns)}",
                              file=file, key="suite.primary_metric",
                              line=loc.line("suite.primary_metric"))

    refs = table("references", [])
    for i, r in enumerate(refs):
        key = f"references[{i}]"
        if not isinstance(r, dict) or not isinstance(r.get("label"), str):
            raise ConfigError("expected a table with a `label` and metric values", file=file,
                              key=key, line=loc.line(key))
        for k, v in r.items():
            if k in ("label", "task", "source", "uses_test_interactions"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ConfigError(f"expected a number, got {v!r}", file=file, key=f"{key}.{k}",
                                  line=loc.line(f"{key}.{k}"))

    # Checks that need the data (roots exist …), still before any work starts. A declared
    # [dataset.fallback] replaces a dataset whose data is not there, with a loud notice.
    suite_dir = str(Path(file).parent)
    notice = None
    try:
        registry.get("dataset", dataset.name).cls(**dataset.options).validate(suite_dir)
    except RecbenchError as exc:
        if fallback is None or not isinstance(exc, DataUnavailable):
            raise ConfigError(str(exc), file=file, key="dataset",
                              line=loc.line("dataset")) from None
        notice = (f"dataset {dataset.name!r} is not available ({exc}); running on the "
                  f"fallback {fallback.name!r} {fallback.options.get('preset') or ''} instead. "
                  f"These numbers are NOT the paper's data.")
        dataset = fallback
        try:
            registry.get("dataset", dataset.name).cls(**dataset.options).validate(suite_dir)
        except RecbenchError as exc2:
            raise ConfigError(str(exc2), file=file, key="dataset.fallback",
                              line=loc.line("dataset.fallback")) from None

    return Suite(path=file, name=name, description=suite_o["description"],
                 seeds=suite_o["seeds"], primary_metric=primary,
                 bootstrap=suite_o["bootstrap"], confidence=suite_o["confidence"],
                 dataset=dataset, split=split, split_seed=split_seed, features=features,
                 run=run, executor=executor, tasks=tasks, models=models,
                 references=[dict(r) for r in refs], raw=copy.deepcopy(raw), notice=notice)
