"""The plan of a run: fit units (model x seed) and their cells (one per task), with cell ids."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..registry import default_registry
from ..suite import Suite

log = logging.getLogger("recbench")


def default_cache_dir() -> str:
    """Feature/data cache folder: $RECBENCH_CACHE, else ~/.cache/recbench."""
    return os.environ.get("RECBENCH_CACHE") or str(Path.home() / ".cache" / "recbench")


def resolve_cache_dir(suite: Suite, cli_cache_dir: str | None = None) -> str:
    """The cache folder of a run: --cache-dir, else the suite's ``[run] cache_dir``
    (``~`` expanded; a relative path is relative to the suite file's folder), else
    $RECBENCH_CACHE, else ~/.cache/recbench."""
    if cli_cache_dir:
        return cli_cache_dir
    declared = (suite.run or {}).get("cache_dir")
    if declared:
        path = Path(os.path.expanduser(str(declared)))
        if not path.is_absolute() and suite.path:
            path = Path(suite.path).resolve().parent / path
        return str(path)
    return default_cache_dir()


# --------------------------------------------------------------------------- planning


@dataclass
class CellPlan:
    """One cell (task x model x seed): its id (its result files and what resume skips)."""

    cell_id: str
    task: str
    model: str
    seed: int
    task_idx: int


@dataclass
class FitUnit:
    """The unit of work: one model and seed, fitted once, then evaluated by each task of
    `cells` (the tasks that apply to the model; on resume, those not finished yet).

    Picklable, so that executors can ship it to a worker process or cluster: it carries the
    resolved suite (never re-validated in the worker) and the run's settings."""

    suite: Suite = field(repr=False)
    model_idx: int
    model: str
    seed: int
    cells: list[CellPlan]
    device: str = "cpu"
    cache_dir: str = ""
    limit: int | None = None
    show_progress: bool = False
    out_dir: str = ""  # the run's output folder (a tuned model's study is stored there)

    @property
    def cell_ids(self) -> list[str]:
        """The ids of the cells this unit produces (executors name them when it is lost)."""
        return [c.cell_id for c in self.cells]


def _cell_id(suite: Suite, ti: int, mi: int, seed: int) -> str:
    blob = json.dumps({
        "suite": suite.name,
        "task": suite.tasks[ti].spec.to_dict(),
        "metrics": [m.column for m in suite.tasks[ti].metrics],
        "model": suite.models[mi].to_dict(),
        "seed": seed,
        "dataset": suite.dataset.to_dict(),
        "split": [suite.split.to_dict(), suite.split_seed],
        "features": suite.features,
        "bootstrap": [suite.bootstrap, suite.confidence],
    }, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def plan_units(suite: Suite, *, device: str = "cpu", cache_dir: str | None = None,
               limit: int | None = None, show_progress: bool = False,
               out_dir: str = "") -> list[FitUnit]:
    """The fit units of `suite` (model x seed, in model-major order), each with one cell per
    task that applies to the model (e.g. tagging needs song vectors); a model no task
    applies to gets no unit."""
    registry = default_registry()
    tasks = [registry.create("task", t.spec.name, **t.spec.options) for t in suite.tasks]
    units = []
    for mi, model in enumerate(suite.models):
        instance = registry.create("recommender", model.name, **model.options)
        applies = [ti for ti, task in enumerate(tasks) if task.applies_to(instance)]
        for ti, task in enumerate(suite.tasks):
            if ti not in applies:
                log.info("task %s does not apply to model %s: no cells", task.spec.id, model.id)
        if not applies:
            continue
        for seed in suite.seeds:
            cells = [CellPlan(_cell_id(suite, ti, mi, seed), suite.tasks[ti].spec.id, model.id,
                              seed, ti) for ti in applies]
            units.append(FitUnit(suite, mi, model.id, seed, cells, device=device,
                                 cache_dir=cache_dir or default_cache_dir(), limit=limit,
                                 show_progress=show_progress, out_dir=out_dir))
    return units


def plan_cells(suite: Suite, **kw: Any) -> list[CellPlan]:
    """Every cell of `suite`, in the order of its fit units (see `plan_units`)."""
    return [c for u in plan_units(suite, **kw) for c in u.cells]
