"""The objective of a fit unit's search: fit with the proposed parameters on the training
part (test labels hidden), score the validation part with the selecting task's metric."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import RecbenchError
from ..run.seeding import seed_everything
from .protocol import fit_view, trial_dataset, validation_view
from .study import SearchOutcome, run_search

if TYPE_CHECKING:
    from ..io.dataset import Dataset, Split
    from ..run.plan import FitUnit


def search_id(unit: FitUnit) -> str:
    """What a stored study belongs to: the model's config (search space and budget
    included), the seed, and the data it is tuned on (dataset, split, features, limit)."""
    suite = unit.suite
    blob = json.dumps({
        "model": suite.models[unit.model_idx].to_dict(), "seed": unit.seed,
        "dataset": suite.dataset.to_dict(), "split": [suite.split.to_dict(), suite.split_seed],
        "features": suite.features, "limit": unit.limit,
    }, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def make_objective(unit: FitUnit, dataset: Dataset, split: Split,
                   features: Callable[..., Any], progress: Callable[..., Any]
                   ) -> Callable[[dict[str, Any]], float]:
    """`objective(params)`: the model of `unit` with `params` over its suite options, fitted
    on the split with test labels hidden, scored by the tuning task on the validation
    view (no bootstrap); returns the tuning metric's value."""
    from ..components import CellContext, FitContext
    from ..registry import default_registry

    suite = unit.suite
    spec = suite.models[unit.model_idx]
    tuning = spec.tuning or {}
    registry = default_registry()
    task_spec = next(t for t in suite.tasks if t.spec.id == tuning["task"])
    metric = next(m for m in task_spec.metrics if m.column == tuning["metric"])
    seen_split, eval_split = fit_view(split), validation_view(split)
    data = trial_dataset(dataset, split)
    task = registry.create("task", task_spec.spec.name, **task_spec.spec.options)
    if not task.applies_to(registry.create("recommender", spec.name, **spec.options)):
        raise RecbenchError(f"tuning task {task_spec.spec.id!r} does not apply to model "
                            f"{spec.id!r}: set [tuning] task to one that does")

    def objective(params: dict[str, Any]) -> float:
        model = registry.create("recommender", spec.name, **{**spec.options, **params})
        ctx = FitContext(dataset=data, split=seen_split, seed=unit.seed, device=unit.device,
                         create=registry.create, features=features, progress=progress)
        seed_everything(unit.seed)
        model.fit(ctx)
        cell = CellContext(dataset=data, split=eval_split, model=model,
                           metrics=[(metric.column, registry.create("metric", metric.name),
                                     metric.k)],
                           fit=ctx, seed=unit.seed, bootstrap=0, confidence=suite.confidence,
                           chunk_users=suite.run["chunk_users"], progress=progress)
        value = task.run(cell).metrics.get(metric.column)
        return float(value) if value is not None else math.nan
    return objective


def search_unit(unit: FitUnit, dataset: Dataset, split: Split, features: Callable[..., Any],
                progress: Callable[..., Any]) -> SearchOutcome:
    """Run (or resume) the search of `unit`'s model; its study is stored under
    ``<unit.out_dir>/tuning/`` (in memory, without resume, when the unit has no output
    folder)."""
    spec = unit.suite.models[unit.model_idx]
    if spec.tuning is None:
        raise RecbenchError(f"model {spec.id!r} has no search space")
    sid = search_id(unit)
    storage = (Path(unit.out_dir) / "tuning" / f"{spec.id}-seed{unit.seed}-{sid}.sqlite3"
               if unit.out_dir else None)
    seed = (spec.tuning["seed"] * 1_000_003 + unit.seed) % 2**32
    objective = make_objective(unit, dataset, split, features, progress)
    return run_search(spec.tuning, objective, storage=storage, study_name=sid, seed=seed)
