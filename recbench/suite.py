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
    [[models]]  name = "<recommender plugin>", id, label, then its parameters
    [[references]]  task, label, and published metric values (reference rows)
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

from . import defaults
from .errors import ConfigError, DataUnavailable, RecbenchError
from .params import Param, ParamSet, suggest
from .registry import RESERVED_KEYS, Registry

SECTIONS = ("suite", "dataset", "split", "features", "run", "tasks", "models", "references")

MAX_SEED = 2**32 - 1  # 32 bits fit every seed consumer (numpy RandomState, torch, implicit)
# Key of Suite.raw holding {raw key path: "${VAR}" template} for values expanded from the
# environment, so that a worker re-validating Suite.raw records the same (not a TOML key
# a suite file can hold: load_suite refuses it as an unknown section).
ENV_KEY = "$env"

SUITE_PARAMS = ParamSet((
    Param("name", str, None, "Suite name (default: the file's stem); names the output folder"),
    Param("description", str, "", "One line shown in the leaderboard"),
    Param("seeds", list, [0], "Model seeds: one cell per task x model x seed", item_type=int,
          min=0, max=MAX_SEED),
    Param("primary_metric", str, None, "Metric that ranks the leaderboard (default: the task's)"),
    Param("bootstrap", int, 1000, "Bootstrap resamples over users for confidence intervals",
          min=0),
    Param("confidence", float, 0.95, "Confidence level of the intervals", min=0.5, max=0.999),
))

RUN_PARAMS = ParamSet((
    Param("executor", str, defaults.EXECUTOR, "Executor plugin that runs the cells"),
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
    Param("compression", str, None, "db (default) or log10-1p-10x (the authors': "
          "log10(1 + 10 mel))", choices=("db", "log10-1p-10x")),
    Param("normalise", str, None, "per-bin (default) mean/std per mel bin, or global (one "
          "scalar, the authors')", choices=("per-bin", "global")),
    Param("window_frames", int, None, "Frames per window; wins over window_s (authors: 130)",
          min=1),
))

_RESERVED_MODEL_KEYS = RESERVED_KEYS["recommender"]
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
    recorded: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def record_options(self) -> dict[str, Any]:
        """The options to write into results: values expanded from environment variables
        are replaced by their ``${VAR}`` template (secrets stay out of result rows)."""
        return self.options if self.recorded is None else self.recorded

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

    def redact(self, value: Any) -> Any:
        """`value` with the text of every environment variable the suite expanded (values
        of 4 characters or more) replaced by ``${VAR}`` in its strings: for what plugins
        derive from their options, e.g. a dataset manifest holding a root path."""
        env = {}
        for template in (self.raw.get(ENV_KEY) or {}).values():
            for m in _VAR.finditer(template):
                v = os.environ.get(m.group(1), "")
                if len(v) >= 4:
                    env[m.group(1)] = v
        if not env:
            return value
        pairs = sorted(env.items(), key=lambda kv: -len(kv[1]))

        def walk(x: Any) -> Any:
            if isinstance(x, str):
                for var, v in pairs:
                    x = x.replace(v, f"${{{var}}}")
                return x
            if isinstance(x, dict):
                return {k: walk(v) for k, v in x.items()}
            if isinstance(x, (list, tuple)):
                return [walk(v) for v in x]
            return x
        return walk(value)


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


def expand_vars(value: Any, key: str, file: str,
                from_env: dict[str, str] | None = None) -> Any:
    """Expand ${VAR} and ${VAR:-default} in every string inside `value`.

    When `from_env` is given, the original text of each string that took a value from the
    environment is stored there under its key path (e.g. ``dataset.root``)."""
    if isinstance(value, str):
        used_env = False

        def sub(m: re.Match) -> str:
            nonlocal used_env
            var, default = m.group(1), m.group(2)
            if var in os.environ and os.environ[var] != "":
                used_env = True
                return os.environ[var]
            if default is not None:
                return default
            raise ConfigError(f"environment variable ${{{var}}} is not set (use "
                              f"${{{var}:-default}} for a default)", file=file, key=key)
        out = _VAR.sub(sub, value)
        if used_env and from_env is not None:
            from_env[key] = value
        return out
    if isinstance(value, dict):
        return {k: expand_vars(v, f"{key}.{k}" if key else k, file, from_env)
                for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, f"{key}[{i}]", file, from_env) for i, v in enumerate(value)]
    return value


def _recorded(value: Any, key: str, from_env: dict[str, str]) -> Any:
    """`value` (found at raw key path `key`) with environment-expanded strings replaced by
    their templates."""
    if key in from_env:
        return from_env[key]
    if isinstance(value, dict):
        return {k: _recorded(v, f"{key}.{k}", from_env) for k, v in value.items()}
    if isinstance(value, list):
        return [_recorded(v, f"{key}[{i}]", from_env) for i, v in enumerate(value)]
    return value


_SEGMENT = r"[^.\[\]\s=]+(?:\[\d+\])*"
_KEY_PATH = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """`"models.dcue.epochs=3"` -> (["models", "dcue", "epochs"], 3). Values are TOML
    literals when they parse as such, else plain strings. The key path is dot-separated
    names, each optionally followed by list indices (`models[0].lr`)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY.PATH=VALUE")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: empty key")
    if not _KEY_PATH.fullmatch(key):
        raise ConfigError(f"--set {text!r}: malformed key path {key!r}; expected names "
                          f"separated by dots, each optionally indexed, e.g. "
                          f"models.dcue.lr=0.01 or models[0].lr=0.01")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    path: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    return path, value


def _path_text(path: list[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out


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
        elif isinstance(node, dict):
            if isinstance(part, int):
                raise ConfigError(f"--set {text}: {_path_text(path[:i]) or 'the suite'} is a "
                                  f"table, not a list: cannot take index [{part}]")
            nxt = path[i + 1]
            if part not in node:
                node[part] = [] if isinstance(nxt, int) else {}
            node = node[part]
        else:
            raise ConfigError(f"--set {text}: {_path_text(path[:i])} is a "
                              f"{type(node).__name__} value, not a table or list")
    last = path[-1]
    if isinstance(node, list):
        if not isinstance(last, int):
            raise ConfigError(f"--set {text}: {_path_text(path[:-1])} is a list: address "
                              f"its entries by index, id or name")
        if last >= len(node):
            raise ConfigError(f"--set {text}: index {last} out of range")
        if isinstance(node[last], dict):
            raise ConfigError(f"--set {text}: cannot set a whole list entry")
        node[last] = value
    elif isinstance(node, dict):
        if isinstance(last, int):
            raise ConfigError(f"--set {text}: {_path_text(path[:-1]) or 'the suite'} is a "
                              f"table, not a list: cannot take index [{last}]")
        node[last] = value
    else:
        raise ConfigError(f"--set {text}: {_path_text(path[:-1])} is a "
                          f"{type(node).__name__} value, not a table or list")


def _instantiate(cls: type, options: dict[str, Any], key: str, file: str,
                 loc: _Locator) -> Any:
    """`cls(**options)`, so that a plugin's own checks of its options run now; their errors
    are located in the suite (a plugin's key such as ``split.cold-item.test_share`` becomes
    ``split.test_share`` with its line)."""
    try:
        return cls(**options)
    except ConfigError as exc:
        if exc.file is not None:
            raise
        where = key
        own = f"{cls.kind}.{cls.name}."
        if exc.key and exc.key.startswith(own):
            where = f"{key}.{exc.key[len(own):]}"
        elif exc.key and exc.key.startswith(f"{key}."):
            where = exc.key
        raise ConfigError(exc.message, file=file, key=where,
                          line=loc.line(where) or loc.line(key)) from None
    except RecbenchError:
        raise
    except Exception as exc:  # a plugin's own check of its options
        raise ConfigError(str(exc), file=file, key=key, line=loc.line(key)) from exc


def _check_nested(registry: Registry, cls: type, options: dict[str, Any], key: str,
                  file: str, loc: _Locator) -> None:
    """Options that name another plugin (`loss`, `sampler`, `backbone`, or any Param with
    `plugin=KIND`) must name a registered one, and their sibling ``<name>_params`` must be
    valid parameters of it."""
    declared = {p.name for p in cls.params}
    for p in cls.params:
        kind = p.plugin_kind
        if kind is None or options.get(p.name) is None:
            continue
        sub_key = f"{key}.{p.name}"
        entry = registry.get(kind, options[p.name], key=sub_key, file=file,
                             line=loc.line(sub_key))
        params_name = f"{p.name}_params"
        values = options.get(params_name) if params_name in declared else None
        params_key = f"{key}.{params_name}"
        line = loc.line(params_key)
        sub_options = ParamSet(tuple(entry.cls.params)).resolve(
            values or {}, params_key, file, {k: line for k in values or {}})
        _instantiate(entry.cls, sub_options, params_key, file, loc)
        _check_nested(registry, entry.cls, sub_options, params_key, file, loc)


def _plugin_spec(registry: Registry, kind: str, table: Any, key: str, file: str,
                 loc: _Locator, reserved: tuple[str, ...] = ("name",),
                 from_env: dict[str, str] | None = None, raw_key: str | None = None
                 ) -> ComponentSpec:
    """Validate a plugin's table. `raw_key` is where its options sit in the raw suite when
    that is not `key` (the executor's are in ``run.executor_params``)."""
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
    _instantiate(entry.cls, options, key, file, loc)
    _check_nested(registry, entry.cls, options, key, file, loc)
    spec = ComponentSpec(kind, name, options, key)
    raw_key = raw_key or key
    if from_env and any(k == raw_key or k.startswith((f"{raw_key}.", f"{raw_key}["))
                        for k in from_env):
        spec.recorded = {k: _recorded(v, f"{raw_key}.{k}", from_env)
                         for k, v in options.items()}
    return spec


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
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("suite file not found", file=file) from None
    except OSError as exc:
        raise ConfigError(f"cannot read suite: {exc.strerror}", file=file) from None
    text = _decode_suite(data, file)
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
    if ENV_KEY in raw:
        raise ConfigError(f"unknown section. Known: {', '.join(SECTIONS)}", file=file,
                          key=ENV_KEY, line=_Locator(text).line(ENV_KEY))
    from_env: dict[str, str] = {}
    raw = expand_vars(raw, "", file, from_env)
    if from_env:
        raw[ENV_KEY] = from_env
    return validate_raw(raw, registry, file, text)


def _decode_suite(data: bytes, file: str) -> str:
    """The suite's text; a BOM, binary content or invalid UTF-8 is one clear error."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise ConfigError("the file starts with a UTF-8 byte-order mark (BOM), which TOML "
                          "readers refuse; save it as UTF-8 without BOM", file=file, line=1)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError("the file is UTF-16 encoded; save it as UTF-8", file=file, line=1)
    if b"\x00" in data:
        raise ConfigError("not a text file (it contains NUL bytes); a suite is a UTF-8 "
                          "TOML file", file=file)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte offset "
                          f"{exc.start}); save the suite as UTF-8", file=file,
                          line=line) from None


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
    models, seen = [], {}
    for i, m in enumerate(models_t):
        key = f"models[{i}]"
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

    fallback_specs = _fallback_model_specs(registry, fallback_models, models_t, models,
                                           file, text, from_env)

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
                                   for mid, values in fallback_models.items())
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
                 references=[dict(r) for r in refs], raw=copy.deepcopy(raw), notice=notice)


class _FallbackLocator(_Locator):
    """Lines of keys under ``[dataset.fallback.models.<id>]`` headers."""

    def line(self, key: str) -> int | None:
        parts = key.split(".")
        for cut in range(len(parts), 3, -1):
            head = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(
                rf'"?{re.escape(p)}"?' for p in parts[:cut]) + r"\s*\]\s*(#.*)?$")
            for i, ln in enumerate(self.lines):
                if head.match(ln):
                    if cut == len(parts):
                        return i + 1
                    leaf = re.compile(rf"^\s*\"?{re.escape(parts[cut])}\"?\s*=")
                    for j in range(i + 1, len(self.lines)):
                        if re.match(r"^\s*\[", self.lines[j]):
                            break
                        if leaf.match(self.lines[j]):
                            return j + 1
                    return i + 1
        return super().line(key)


def _fallback_model_specs(registry: Registry, overrides: Any, models_t: list[Any],
                          models: list[ComponentSpec], file: str, text: str,
                          from_env: dict[str, str]) -> dict[str, ComponentSpec]:
    """``[dataset.fallback.models.<model id>]``: parameters that replace a model's own when
    the fallback dataset replaces the suite's (e.g. a minutes-long budget for the synthetic
    stand-in, while the main values train to convergence on the real data). Validated like
    the model's own table, whether or not the fallback is used; returns {model id: the
    model's spec with the overrides applied}. The fallback's values win over the model's
    own, ``--set models[i].key=...`` included."""
    if overrides is None:
        return {}
    loc = _FallbackLocator(text)
    key = "dataset.fallback.models"
    if not isinstance(overrides, dict):
        raise ConfigError("expected a table of model ids, e.g. [dataset.fallback.models.dcue]",
                          file=file, key=key, line=loc.line(key))
    ids = [m.id for m in models]
    out = {}
    for mid, values in overrides.items():
        mkey = f"{key}.{mid}"
        if mid not in ids:
            raise ConfigError(f"names no model of this suite.{suggest(mid, ids)} Model ids: "
                              f"{', '.join(ids)}", file=file, key=mkey, line=loc.line(mkey))
        if not isinstance(values, dict):
            raise ConfigError("expected a table of the model's parameters", file=file,
                              key=mkey, line=loc.line(mkey))
        for k in values:
            if k in _RESERVED_MODEL_KEYS:
                raise ConfigError(f"`{k}` cannot change for the fallback (only the model's "
                                  f"parameters can)", file=file, key=f"{mkey}.{k}",
                                  line=loc.line(f"{mkey}.{k}"))
        i = ids.index(mid)
        base = {k: v for k, v in models_t[i].items() if k not in ("id", "label")}
        merged = {**base, **values}
        # errors name the override's table (the model's own values were validated above)
        spec = _plugin_spec(registry, "recommender", merged, mkey, file, loc,
                            reserved=_RESERVED_MODEL_KEYS, from_env=from_env,
                            raw_key=models[i].key)
        spec.key, spec.id, spec.label = models[i].key, models[i].id, models[i].label
        out[mid] = spec
    return out


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
