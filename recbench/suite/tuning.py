"""A suite's ``[tuning]`` section and its models' ``search`` tables, validated together.

Every model with a ``search`` table gets the same budget (``trials`` and/or ``seconds``),
sampler, pruner, seed and validation metric; ``[tuning.per_model.<id>]`` is the only way
to give one model another budget, and that budget is recorded in its row and config hash.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ..errors import ConfigError
from ..registry.params import Param, suggest
from ..registry import Registry
from ..tuning.space import TUNING_PARAMS, grid_size, parse_space
from .locate import _Locator
from .model import ComponentSpec, TaskSpec
from .specs import _parse_metric

_BUDGET = (Param("trials", int, None, min=1), Param("seconds", float, None, gt=0))


def resolve_tuning(raw: dict[str, Any], registry: Registry, tasks: list[TaskSpec],
                   searches: dict[int, Any], models: list[ComponentSpec], file: str,
                   loc: _Locator) -> None:
    """Validate ``[tuning]`` and the ``search`` tables (`searches`: {model index: raw
    table}) and set each searched model's ``spec.tuning`` (space, sampler, budget, metric,
    task, direction, pruner, seed, refit)."""
    def error(msg: str, key: str) -> ConfigError:
        return ConfigError(msg, file=file, key=key, line=loc.line(key))

    table = raw.get("tuning")
    if table is None:
        if searches:
            i = next(iter(searches))
            raise error("a search space needs a [tuning] section with `trials` and/or "
                        "`seconds` (the budget every model gets)", f"models[{i}].search")
        return
    if not isinstance(table, dict):
        raise error("expected a table", "tuning")
    settings = TUNING_PARAMS.resolve(table, "tuning", file,
                                     {k: loc.line(f"tuning.{k}") for k in table})
    if not searches:
        raise error("no model has a `search` table: add [models.search] to the models to "
                    "tune, or drop [tuning]", "tuning")
    if importlib.util.find_spec("optuna") is None:
        raise error("tuning needs Optuna, which is not installed: pip install optuna",
                    "tuning")
    if settings["trials"] is None and settings["seconds"] is None:
        raise error("needs `trials` and/or `seconds` (the budget of every model)", "tuning")

    task, column, direction = _selection(settings, registry, tasks, file, loc, error)
    ids = [m.id for m in models]
    per_model = settings["per_model"]
    for mid, budget in per_model.items():
        key = f"tuning.per_model.{mid}"
        if mid not in ids or ids.index(mid) not in searches:
            tuned = [ids[i] for i in searches]
            raise error(f"names no tuned model.{suggest(str(mid), tuned)} Tuned: "
                        f"{', '.join(tuned)}", key)
        if not isinstance(budget, dict) or not budget:
            raise error("expected a table with `trials` and/or `seconds`", key)
        for k in budget:
            if k not in ("trials", "seconds"):
                raise error("only `trials` and `seconds` can differ per model", f"{key}.{k}")
    for i, search in searches.items():
        spec = models[i]
        cls = registry.get("recommender", spec.name).cls
        key = f"models[{i}].search"
        if cls.uses_test_interactions:
            raise error("an oracle (uses_test_interactions) cannot be tuned: its trials "
                        "would see test interactions", key)
        space = parse_space(search, tuple(cls.params), key, error)
        budget = {"trials": settings["trials"], "seconds": settings["seconds"]}
        own = per_model.get(spec.id) or {}
        for p in _BUDGET:
            if p.name in own:
                budget[p.name] = p.check(own[p.name], f"tuning.per_model.{spec.id}.{p.name}",
                                         file, loc.line(f"tuning.per_model.{spec.id}"))
        if settings["sampler"] == "grid" and grid_size(space) is None:
            raise error("the grid sampler needs `choices`, int ranges or ranges with a "
                        "`step` (a float range without one has no grid)", key)
        spec.tuning = {"space": space, "sampler": settings["sampler"], "budget": budget,
                       "metric": column, "task": task, "direction": direction,
                       "pruner": settings["pruner"], "seed": settings["seed"],
                       "refit": settings["refit"]}


def _selection(settings: dict[str, Any], registry: Registry, tasks: list[TaskSpec],
               file: str, loc: _Locator, error: Any) -> tuple[str, str, str]:
    """(task id, metric column, "maximize" | "minimize") of the validation metric."""
    by_id = {t.spec.id: t for t in tasks}
    if settings["task"] is not None and settings["task"] not in by_id:
        raise error(f"names no task of this suite.{suggest(settings['task'], by_id)} Tasks: "
                    f"{', '.join(by_id)}", "tuning.task")
    candidates = [by_id[settings["task"]]] if settings["task"] else tasks
    column = settings["metric"]
    if column is None:
        column = registry.get("task", candidates[0].spec.name).cls.primary_metric
    spec = _parse_metric(column, "tuning.metric", registry, file, loc)
    for t in candidates:
        if column in [m.column for m in t.metrics]:
            task = t
            break
    else:
        computed = sorted({m.column for t in candidates for m in t.metrics})
        raise error(f"{column!r} is not computed by "
                    f"{'task ' + repr(settings['task']) if settings['task'] else 'any task'}"
                    f".{suggest(column, computed)} Computed: {', '.join(computed)}",
                    "tuning.metric")
    higher = bool(registry.get("metric", spec.name).cls.higher_is_better)
    return task.spec.id, column, "maximize" if higher else "minimize"
