"""The evaluation contracts: metrics, and tasks with their context, outputs and diagnostics."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypedDict

import numpy as np

from .base import Component
from .recommender import FitContext, Recommender

if TYPE_CHECKING:  # pragma: no cover
    from ..io.dataset import Dataset, Split


# --------------------------------------------------------------------------- evaluation


@dataclass
class MetricInput:
    """A block of users to evaluate.

    scores: (U, I) float scores of the candidate songs; labels: (U, I) bool, held-out
    positives; mask: (U, I) bool, True where the pair is a candidate (False for songs the
    user already has in training), or None for all; k: the cutoff when the metric has one;
    popularity: (I,) listener counts of the candidates (a measuring stick for popularity
    bias; never shown to a model).
    """

    scores: np.ndarray
    labels: np.ndarray
    mask: np.ndarray | None
    k: int | None
    popularity: np.ndarray | None = None


class Metric(Component, abc.ABC):
    """A metric: per-user values over a block of users, reduced to one number.

    `higher_is_better` sets its direction (used by `compare` and the leaderboard);
    `needs_k` says whether the metric takes a cutoff (`ndcg@10`). `per_user` returns an
    array whose first axis is users (NaN where undefined); `reduce` turns the rows of a
    (possibly resampled) set of users into the reported number.
    """

    kind = "metric"
    label: ClassVar[str] = ""  # column header naming exactly what is measured, e.g. "AUC (per-user mean)"
    higher_is_better: ClassVar[bool] = True
    needs_k: ClassVar[bool] = False

    @abc.abstractmethod
    def per_user(self, block: MetricInput) -> np.ndarray:
        """Per-user values, first axis = users of the block."""

    def reduce(self, values: np.ndarray) -> float:
        """The reported number from per-user values (default: mean over defined users)."""
        v = np.asarray(values, dtype=float)
        v = v[~np.isnan(v)]
        return float(v.mean()) if v.size else float("nan")


@dataclass
class CellContext:
    """Everything a task needs for one cell (task x model x seed).

    model:  the recommender, already fitted by the runner (one fit per model and seed,
            shared by every task that applies); `fit_s` the seconds that fit took.
    fit:    the context the model was fitted with (device, features, progress...).
    """

    dataset: Dataset
    split: Split
    model: Recommender
    metrics: list[tuple[str, Metric, int | None]]  # (column name, metric, k)
    fit: FitContext
    seed: int
    fit_s: float = 0.0
    bootstrap: int = 1000
    confidence: float = 0.95  # level of the bootstrap intervals
    chunk_users: int = 1024
    progress: Callable[..., Any] = field(default=lambda it, **kw: it)

    def ensure_fitted(self) -> float:
        """Deprecated (kept for one release): the model arrives fitted; returns `fit_s`."""
        return self.fit_s


class MetricInfo(TypedDict, total=False):
    """What a row records about one metric column (``metric_info[column]``)."""

    label: str  # column header naming exactly what is measured
    higher_is_better: bool  # the direction `compare` and the leaderboard use
    description: str
    n_users: int  # users with a defined value
    excluded_users: int  # users for whom the metric is undefined
    n_tags: int  # per-tag metrics: tags with both classes among the test songs
    ci_over: str  # what the bootstrap of its interval resamples: "users", "songs", "artists"
    paired_over: str  # the unit claims pair on, where it differs from ci_over ("genres")


_LEGACY_EXTRA_KEYS = ("metric_info", "per_user", "ignored_metrics")


@dataclass
class TaskOutput:
    """A task's numbers for one result row.

    metrics:         {column: value}.
    metrics_ci:      {column: [low, high]} ([None, None] without a bootstrap).
    throughput:      e.g. {"scoring_pairs_per_s": ...}.
    timing:          seconds of the task's own work, e.g. {"eval_s": ...} (the runner adds
                     the fit's ``fit_s`` and ``total_s``).
    metric_info:     {column: :class:`MetricInfo`}: label, direction, users counted.
    per_user:        {"users": (n,) ids, column: (n,) values} for paired comparisons
                     (stored beside the row as ``cells/<cell_id>.npz``), or None.
    diagnostics:     JSON-able task diagnostics (the row's ``extra``), rendered on the
                     leaderboard by the task's own :meth:`Task.diagnostics_table` and
                     :meth:`Task.diagnostics_chart`.
    ignored_metrics: the suite's metric columns this task does not compute (the row
                     records them and the runner does not ask for their values).
    extra:           private JSON-able data, stored in the row's ``extra`` beside the
                     diagnostics and read by nobody else.

    For one release, ``extra`` keys "metric_info", "per_user" and "ignored_metrics" are
    moved into the fields of those names (the earlier way of returning them).
    """

    metrics: dict[str, float]
    metrics_ci: dict[str, list[float | None]]
    throughput: dict[str, float]
    timing: dict[str, float]
    metric_info: dict[str, MetricInfo] = field(default_factory=dict)
    per_user: dict[str, np.ndarray] | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    ignored_metrics: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if any(key in self.extra for key in _LEGACY_EXTRA_KEYS):
            self.extra = dict(self.extra)  # the caller's dict is left as it is
        for key in _LEGACY_EXTRA_KEYS:
            if key in self.extra:
                value = self.extra.pop(key)
                if not getattr(self, key):
                    setattr(self, key, value)


@dataclass
class DiagnosticsTable:
    """A task's diagnostics table on the leaderboard (one line per model).

    caption: one Markdown paragraph saying what the columns measure.
    header:  column names; the first is the model column.
    rows:    per model: its label, then numbers (float, or None where undefined).
    """

    caption: str
    header: list[str]
    rows: list[list[Any]]


@dataclass
class DiagnosticsChart:
    """A grouped bar chart of a task's diagnostics (the leaderboard plot's second panel).

    groups: the x-axis groups (e.g. popularity buckets); series: {model label: one value
    per group (None where undefined)}; baseline: a reference line (e.g. chance), or None.
    """

    title: str
    ylabel: str
    groups: list[str]
    series: dict[str, list[float | None]]
    baseline: float | None = None
    ylim: tuple[float, float] | None = None


class Task(Component, abc.ABC):
    """A task (recommendation, auto-tagging…): runs one cell and returns its numbers.

    `default_metrics` are used when the suite lists none; `primary_metric` ranks the
    leaderboard. A task that returns `TaskOutput.diagnostics` (its rows' ``extra``) renders
    them itself (:meth:`diagnostics_table`, :meth:`diagnostics_chart`): the core never
    reads a task's ``extra``. `run` gets a model the runner has already fitted.
    """

    kind = "task"
    default_metrics: ClassVar[tuple[str, ...]] = ()
    primary_metric: ClassVar[str] = ""

    def applies_to(self, model: Recommender) -> bool:
        """Whether this task can evaluate `model` (e.g. tagging needs item vectors)."""
        return True

    @abc.abstractmethod
    def run(self, ctx: CellContext) -> TaskOutput:
        """Evaluate the fitted `ctx.model`; return the numbers."""

    @classmethod
    def diagnostics_table(cls, entries: list[dict[str, Any]]) -> DiagnosticsTable | None:
        """The board's diagnostics table from its model entries (each a leaderboard row:
        ``label``, ``extra`` of the first seed's row, ...), or None (the default)."""
        return None

    @classmethod
    def diagnostics_chart(cls, entries: list[dict[str, Any]]) -> DiagnosticsChart | None:
        """A bar chart of the diagnostics for the leaderboard plot, or None (the default)."""
        return None
