"""The validated suite: its sections' parameters, component, metric and task specs, and Suite."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from .. import defaults
from ..registry.params import Param, ParamSet
from ..registry import RESERVED_KEYS
from .vars import _VAR


SECTIONS = ("suite", "dataset", "split", "features", "run", "tasks", "models", "references",
            "tuning", "claims")

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
    Param("parts", list, [], "Other suite files (paths relative to this one) run after this "
          "suite's own cells, each into OUT/parts/<its name>/ (recbench.suite.parts)",
          item_type=str),
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

# `search`: a model's search space (recbench.suite.tuning), read by the suite itself
_RESERVED_MODEL_KEYS = RESERVED_KEYS["recommender"] + ("search",)


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
    # a tuned model: its search space, sampler, budget and validation metric
    # (recbench.suite.tuning); None for a hand-set model
    tuning: dict[str, Any] | None = None

    @property
    def record_options(self) -> dict[str, Any]:
        """The options to write into results: values expanded from environment variables
        are replaced by their ``${VAR}`` template (secrets stay out of result rows)."""
        return self.options if self.recorded is None else self.recorded

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "name": self.name, "options": self.options, "id": self.id,
               "label": self.label}
        if self.tuning is not None:
            out["tuning"] = self.tuning
        return out

    @property
    def config_hash(self) -> str:
        """Hash of the name and options and, for a tuned model, of its search space,
        budget, sampler and validation metric (a tuned row matches only rows tuned alike)."""
        config: dict[str, Any] = {"name": self.name, "options": self.options}
        if self.tuning is not None:
            config["tuning"] = self.tuning
        blob = json.dumps(config, sort_keys=True, default=str)
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
    # [[claims]], resolved (recbench.suite.claims): judged on the leaderboard
    claims: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    notice: str | None = None  # set when the dataset's fallback replaced it
    # [suite] parts: the part suites, loaded by load_suite (recbench.suite.parts); a suite
    # re-validated from `raw` (a worker) has none
    parts: list["Suite"] = field(default_factory=list)

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
