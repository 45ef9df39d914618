"""One model's search: an Optuna study on SQLite, its sampler, pruner and budget, resumed
from its stored trials.

The study of a fit unit (model x seed) lives in ``OUT/tuning/<model id>-seed<seed>-<search
id>.sqlite3`` (one file per unit, so units running in parallel never share a database).
A killed search continues from that file: trials that finished (complete, pruned or
failed) count against the budget and are never run again; a trial that was running when
the process died is marked failed and ``interrupted`` and does not count.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import RecbenchError
from .protocol import TestLabelsHidden
from .space import grid_points, suggest_point

log = logging.getLogger("recbench")

_TRIAL: contextvars.ContextVar[Any] = contextvars.ContextVar("recbench_trial", default=None)


class TrialFailed(RecbenchError):
    """A trial whose fit or evaluation raised (e.g. a diverging learning rate): the trial
    is recorded as failed and the search goes on."""


def report(value: float, step: int) -> None:
    """Report an intermediate validation value (e.g. after each epoch) from inside a
    model's fit. Inside a search with ``pruner = "median"``, raises ``optuna.TrialPruned``
    when the trial is hopeless; outside a search it does nothing."""
    trial = _TRIAL.get()
    if trial is None:
        return
    trial.report(float(value), int(step))
    if trial.should_prune():
        import optuna

        raise optuna.TrialPruned(f"pruned at step {step} (value {value:.4g})")


@dataclass
class SearchOutcome:
    """The chosen parameters and the row's ``model.tuning`` block."""

    params: dict[str, Any]
    block: dict[str, Any]


def _sampler(tuning: dict[str, Any], seed: int) -> Any:
    import optuna

    if tuning["sampler"] == "grid":
        return optuna.samplers.GridSampler(grid_points(tuning["space"]) or {}, seed=seed)
    if tuning["sampler"] == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(tuning: dict[str, Any]) -> Any:
    import optuna

    if tuning["pruner"] == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in study.get_trials(deepcopy=False)
            if t.state in done and not t.user_attrs.get("interrupted")]


def _seconds(trials: list[Any]) -> float:
    return sum(t.duration.total_seconds() for t in trials if t.duration is not None)


def run_search(tuning: dict[str, Any], objective: Callable[[dict[str, Any]], float], *,
               storage: Path | None, study_name: str, seed: int) -> SearchOutcome:
    """Run (or resume) the search of one model x seed: `objective(params)` fits on the
    training part and returns the validation metric. Stops at the budget's trials or
    seconds, whichever comes first (a running trial is finished, not cut)."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials: one line of ours
    url = None
    if storage is not None:
        storage.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{storage}"
    study = optuna.create_study(storage=url, study_name=study_name, load_if_exists=True,
                                direction=tuning["direction"], pruner=_pruner(tuning))
    # A trial still RUNNING was cut by a kill: the run lock on OUT guarantees no live
    # process holds this unit's study. Marked failed (Optuna has no public call for it),
    # so that the grid sampler proposes its point again; it does not count.
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "interrupted", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
    before = _finished(study)
    # a resumed sampler gets another seed, so it does not replay the first run's proposals
    study.sampler = _sampler(tuning, (seed + 7919 * len(before)) % 2**32)
    budget = tuning["budget"]
    n_trials = None if budget["trials"] is None else budget["trials"] - len(before)
    timeout = None if budget["seconds"] is None else budget["seconds"] - _seconds(before)
    if before:
        log.info("search of %s resumed: %d finished trials kept", study_name, len(before))

    def wrapped(trial: Any) -> float:
        params = suggest_point(trial, tuning["space"])
        token = _TRIAL.set(trial)
        try:
            value = objective(params)
        except (TestLabelsHidden, optuna.TrialPruned):
            raise
        except KeyboardInterrupt:  # not finished: does not count against the budget
            trial.set_user_attr("interrupted", True)
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - one trial fails
            text = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
            trial.set_user_attr("error", text)
            log.warning("%s: trial %d failed: %s", study_name, trial.number, text)
            raise TrialFailed(text) from exc
        finally:
            _TRIAL.reset(token)
        if not math.isfinite(value):
            trial.set_user_attr("error", f"validation value {value!r}")
            raise TrialFailed(f"validation value {value!r}")
        return value

    t0 = time.perf_counter()
    if (n_trials is None or n_trials > 0) and (timeout is None or timeout > 0):
        study.optimize(wrapped, n_trials=n_trials, timeout=timeout, catch=(TrialFailed,))
    finished = _finished(study)
    complete = [t for t in finished if t.state == TrialState.COMPLETE]
    if not complete:
        errors = [t.user_attrs.get("error") for t in finished if t.user_attrs.get("error")]
        raise RecbenchError(f"no trial of the search finished ({len(finished)} run)"
                            + (f"; last error: {errors[-1]}" if errors else ""))
    best = study.best_trial
    block = {
        "space": tuning["space"], "sampler": tuning["sampler"], "budget": dict(budget),
        "metric": tuning["metric"], "task": tuning["task"], "direction": tuning["direction"],
        "pruner": tuning["pruner"], "seed": tuning["seed"], "refit": tuning["refit"],
        "trials_run": len(finished), "trials_complete": len(complete),
        "trials_pruned": sum(t.state == TrialState.PRUNED for t in finished),
        "trials_failed": sum(t.state == TrialState.FAIL for t in finished),
        "trials_resumed": len(before), "seconds_used": round(_seconds(finished), 3),
        "search_s": round(time.perf_counter() - t0, 3),
        "best_value": None if best.value is None else float(best.value), "best_trial": best.number,
        "chosen": dict(best.params),
        "storage": storage.name if storage is not None else None,
    }
    return SearchOutcome(dict(best.params), block)
