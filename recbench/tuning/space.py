"""Search spaces and the ``[tuning]`` section: parsed, validated, turned into Optuna's
distributions.

A model's ``search`` table maps declared parameters to a dimension::

    [models.search]
    lr = {low = 1e-4, high = 1e-1, log = true}     # float range, log scale
    factors = {choices = [8, 16, 32]}               # categorical
    epochs = {low = 2, high = 8, step = 2}          # int range (step optional)

Each key must be a declared parameter of the model; every bound and choice is checked by
that parameter's own declaration (type, min/max, choices), so a space can only propose
values the suite could have set by hand.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import ConfigError
from ..registry.params import Param, ParamSet, suggest

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "none")
MAX_SEED = 2**32 - 1

TUNING_PARAMS = ParamSet((
    Param("sampler", str, "tpe", "tpe (Optuna's TPE), random, or grid (choices and int "
          "ranges only)", choices=SAMPLERS),
    Param("trials", int, None, "Trials per model and seed (the same for every model)", min=1),
    Param("seconds", float, None, "Wall-clock seconds per model and seed (the same for "
          "every model); with `trials`, whichever ends first", gt=0),
    Param("metric", str, None, "Validation metric that selects (default: the task's "
          "primary metric); its direction comes from the metric"),
    Param("task", str, None, "Task id whose metric selects (default: the first task that "
          "computes `metric`)"),
    Param("pruner", str, "none", "median: stop a trial whose reported intermediate values "
          "fall below the median of earlier trials (models report them through "
          "recbench.tuning.report); none", choices=PRUNERS),
    Param("seed", int, 0, "Sampler seed", min=0, max=MAX_SEED),
    Param("refit", str, "train", "How the chosen setting is refitted: train (on the training "
          "part, early stopping on valid, exactly as an untuned model)", choices=("train",)),
    Param("per_model", dict, {}, "{model id: {trials, seconds}}: the only way a model gets a "
          "budget different from the others' (recorded in its row and config hash)"),
))

_RANGE_KEYS = ("low", "high", "log", "step")
_SCALAR_TYPES = (bool, int, float, str)

ErrorFn = Callable[[str, str], ConfigError]


def parse_space(search: Any, params: tuple[Param, ...], key: str,
                error: ErrorFn) -> dict[str, dict[str, Any]]:
    """The validated space of one model: {param: {"choices": [...]}} or {param: {"low",
    "high", "log", "step"}} with values converted to the parameter's type. `error(msg,
    key)` builds the ConfigError (it knows the file and lines)."""
    if not isinstance(search, dict) or not search:
        raise error("expected a table of declared parameters, e.g. search = {lr = {low = "
                    "1e-4, high = 1e-1, log = true}}", key)
    by_name = {p.name: p for p in params}
    space: dict[str, dict[str, Any]] = {}
    for name, dim in search.items():
        k = f"{key}.{name}"
        p = by_name.get(name)
        if p is None:
            raise error("is not a declared parameter of this model." + suggest(name, by_name)
                        + f" Known: {', '.join(sorted(by_name))}", k)
        if p.type not in _SCALAR_TYPES:
            raise error(f"a {p.type_name()} parameter cannot be searched (only bool, int, "
                        f"float and str parameters)", k)
        if not isinstance(dim, dict):
            raise error("expected {choices = [...]} or {low = .., high = .., log = false, "
                        "step = ..}", k)
        if "choices" in dim:
            space[name] = _choices(dim, p, k, error)
        else:
            space[name] = _range(dim, p, k, error)
    return space


def _choices(dim: dict[str, Any], p: Param, k: str, error: ErrorFn) -> dict[str, Any]:
    extra = [x for x in dim if x != "choices"]
    if extra:
        raise error(f"`choices` takes no {', '.join(extra)}", k)
    values = dim["choices"]
    if not isinstance(values, list) or not values:
        raise error("`choices` must be a non-empty list", f"{k}.choices")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(p.check(v, f"{k}.choices[{i}]"))
        except ConfigError as exc:
            raise error(exc.message, f"{k}.choices[{i}]") from None
    if len(set(map(repr, out))) != len(out):
        raise error("`choices` has duplicates", f"{k}.choices")
    return {"choices": out}


def _range(dim: dict[str, Any], p: Param, k: str, error: ErrorFn) -> dict[str, Any]:
    unknown = [x for x in dim if x not in _RANGE_KEYS]
    if unknown:
        raise error(f"unknown key {unknown[0]!r}; expected choices, or low, high, log, step", k)
    if p.type not in (int, float):
        raise error(f"a {p.type_name()} parameter takes `choices`, not a range", k)
    if "low" not in dim or "high" not in dim:
        raise error("a range needs `low` and `high`", k)
    out: dict[str, Any] = {}
    for bound in ("low", "high"):
        try:
            out[bound] = p.check(dim[bound], f"{k}.{bound}")
        except ConfigError as exc:
            raise error(exc.message, f"{k}.{bound}") from None
    if not out["low"] < out["high"]:
        raise error(f"`low` must be < `high`, got {out['low']!r} and {out['high']!r}", k)
    log = dim.get("log", False)
    if not isinstance(log, bool):
        raise error(f"expected true or false, got {log!r}", f"{k}.log")
    if log and out["low"] <= 0:
        raise error(f"a log scale needs `low` > 0, got {out['low']!r}", f"{k}.low")
    out["log"] = log
    step = dim.get("step")
    if step is not None:
        if log:
            raise error("`step` and `log = true` cannot be combined", f"{k}.step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0 or (
                p.type is int and not float(step).is_integer()):
            raise error(f"expected a positive {'integer' if p.type is int else 'number'}, "
                        f"got {step!r}", f"{k}.step")
        step = int(step) if p.type is int else float(step)
    out["step"] = step
    return out


def grid_points(space: dict[str, dict[str, Any]]) -> dict[str, list[Any]] | None:
    """Every value of each dimension (for the grid sampler), or None when a dimension is a
    float range without `step` (no finite grid)."""
    grid: dict[str, list[Any]] = {}
    for name, dim in space.items():
        if "choices" in dim:
            grid[name] = list(dim["choices"])
            continue
        low, high, step = dim["low"], dim["high"], dim["step"]
        if isinstance(low, float) and step is None:
            return None
        step = step or 1
        n = int((high - low) // step) + 1
        grid[name] = [low + i * step for i in range(n)]
        if isinstance(low, float):
            grid[name] = [round(v, 12) for v in grid[name]]
    return grid


def grid_size(space: dict[str, dict[str, Any]]) -> int | None:
    """The number of points of the grid, or None when there is no finite grid."""
    grid = grid_points(space)
    if grid is None:
        return None
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


def suggest_point(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One point of `space` proposed by an Optuna trial (public ``suggest_*`` API)."""
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if "choices" in dim:
            out[name] = trial.suggest_categorical(name, dim["choices"])
        elif isinstance(dim["low"], int):
            out[name] = trial.suggest_int(name, dim["low"], dim["high"], log=dim["log"],
                                          step=dim["step"] or 1)
        else:
            out[name] = trial.suggest_float(name, dim["low"], dim["high"], log=dim["log"],
                                            step=dim["step"])
    return out
