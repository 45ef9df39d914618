"""Fair tuning: a search space per model, the same budget for every model, selection on
the validation part only, and the test part evaluated once with the chosen setting.

- :mod:`.space`: ``search`` tables and ``[tuning]`` settings, validated (suites use it).
- :mod:`.protocol`: what a trial may see (test labels hidden; validation as the test).
- :mod:`.study`: the Optuna study of one model x seed on SQLite (resume), its budget,
  sampler and pruner; :func:`report` for models that report intermediate values.
- :mod:`.objective`: a fit unit's objective and :func:`search_unit`, called by the worker
  before the unit's one real fit.

Optuna is imported only when a search runs.
"""

from __future__ import annotations

from .protocol import HiddenTestLabels, TestLabelsHidden, fit_view, validation_view
from .study import SearchOutcome, TrialFailed, report, run_search

__all__ = ["HiddenTestLabels", "SearchOutcome", "TestLabelsHidden", "TrialFailed",
           "fit_view", "report", "run_search", "validation_view"]
