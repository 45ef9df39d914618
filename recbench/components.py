"""The typed contract of every plugin kind, documented in one place.

Every component is a class with a unique `name`, a one-line `description` and declared
`params` (see :mod:`recbench.params`). The registry instantiates it with the resolved
parameter values, available as ``self.options``. Plugins register classes through one
hook per kind (see :mod:`recbench.hookspecs`).

Kinds and what they do:

========== ===========================================================================
recommender  fit on a split, score (user, song) pairs, optionally embed songs
backbone     build a torch module mapping audio windows (B, T, C) to vectors (B, D)
loss         a training loss: ranking (pos vs negs) or regression (pred vs target)
sampler      draw negative songs for a batch of users
dataset      load a :class:`recbench.data.Dataset`
split        split a dataset into train / valid / test (:class:`recbench.data.Split`)
metric       per-user values from a block of scores and labels, reduced to one number
executor     run fit units (possibly in parallel or on a cluster), yield results as they end
task         turn (dataset, split, model, metrics) into one result row's numbers
========== ===========================================================================
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Iterator, Protocol,
                    Sequence, TypedDict, runtime_checkable)

import numpy as np

from .errors import ConfigError
from .params import Param, ParamSet

if TYPE_CHECKING:  # pragma: no cover
    import scipy.sparse as sp

    from .data import Dataset, Split


class Component:
    """Base of all plugin components.

    Class attributes: `name` (unique within its kind), `description` (one line),
    `params` (declared parameters). Instances hold resolved values in `self.options`.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def __init__(self, **options: Any):
        self.options: dict[str, Any] = ParamSet(tuple(self.params)).resolve(
            options, where=f"{self.kind}.{self.name}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"


# --------------------------------------------------------------------------- recommender


CONSUMABLE = ("interactions", "audio", "test_interactions")
"""What a recommender may declare in `consumes`."""


class Recommender(Component, abc.ABC):
    """A recommender: fit on a split, then score (user, song) pairs.

    Capabilities, declared as class attributes:

    - `consumes`: the information the model reads, any of :data:`CONSUMABLE`:
      "interactions" (training interactions), "audio" (song audio through
      ``ctx.features``: the model needs a dataset with audio), "test_interactions" (the
      held-out interactions: an oracle). Recorded in every result row.
    - `uses_test_interactions`: True for oracles, and then "test_interactions" must be in
      `consumes` (the contract tests check that both agree). Only such models get
      ``ctx.all_interactions``; the leaderboard ranks their rows apart.
    - `has_item_vectors`: whether `item_vectors` returns song vectors (used by the
      auto-tagging task); None (the default) means "when the class overrides
      `item_vectors`". Read it through :meth:`provides_item_vectors`.
    """

    kind = "recommender"
    consumes: ClassVar[tuple[str, ...]] = ("interactions",)
    uses_test_interactions: ClassVar[bool] = False
    has_item_vectors: ClassVar[bool | None] = None

    @classmethod
    def provides_item_vectors(cls) -> bool:
        """Whether fitted instances return song vectors from `item_vectors`."""
        if cls.has_item_vectors is not None:
            return bool(cls.has_item_vectors)
        return cls.item_vectors is not Recommender.item_vectors

    @classmethod
    def needs_audio(cls) -> bool:
        """Whether the model reads song audio (``"audio" in consumes``)."""
        return "audio" in cls.consumes

    @abc.abstractmethod
    def fit(self, ctx: FitContext) -> None:
        """Train on `ctx.train` (and `ctx.all_interactions` only for oracles)."""

    @abc.abstractmethod
    def score(self, users: np.ndarray, songs: np.ndarray) -> np.ndarray:
        """Relevance of each song for each user: float array of shape (len(users), len(songs))."""

    def item_vectors(self, songs: np.ndarray) -> np.ndarray | None:
        """Song vectors (len(songs), D) for downstream tasks, or None if the model has none."""
        return None

    def throughput(self) -> dict[str, float]:
        """Extra throughput figures measured during `fit` (e.g. train_examples_per_s)."""
        return dict(getattr(self, "_throughput", {}))

    def fit_report(self) -> dict[str, Any]:
        """Facts about the last `fit` for the row's ``model.fit`` block (JSON-able: epochs
        run, best epoch, why training stopped, loss history...). Default: the instance's
        ``fit_info`` dict, if it set one; empty otherwise."""
        return dict(getattr(self, "fit_info", None) or {})


@runtime_checkable
class SongFeaturesLike(Protocol):
    """What a model may use of a song-feature set (``ctx.features(kind)``), as
    :class:`recbench.features.SongFeatures` provides it and
    :class:`recbench.testing.FakeSongFeatures` imitates it.

    kind:     "logmel" or "waveform".
    array:    (n_songs, n_steps, n_channels) raw (unstandardised) features.
    lengths:  (n_songs,) int valid steps per song; 0 = no audio.
    mean, std: (n_channels,) float32 standardisation statistics (training songs only).
    window:   steps per model input window.
    """

    kind: str
    array: np.ndarray
    lengths: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    window: int

    @property
    def n_songs(self) -> int: ...

    @property
    def n_channels(self) -> int: ...

    def crops(self, songs: Sequence[int] | np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
        """One random standardised window per song: float32 (len(songs), window, C)."""
        ...

    def song_windows(self, songs: Sequence[int] | np.ndarray, max_windows: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive standardised windows (N, window, C) float32 and their owner (N,)
        positions in `songs`; every song has at least one (zero-padded) window."""
        ...


def _no_factory(kind: str, name: str, **options: Any) -> Component:
    raise ConfigError(f"this FitContext has no component factory: cannot create "
                      f"{kind} {name!r} (pass `create`, e.g. registry.create)")


def _no_features(kind: str, *args: Any) -> SongFeaturesLike:
    raise ConfigError(f"this FitContext has no audio features: cannot provide {kind!r} "
                      "(is the dataset without audio?)")


@dataclass
class FitContext:
    """What a recommender may use to fit.

    dataset:  the loaded dataset (its `counts` include held-out data: read interactions
              through `train` or, for declared oracles only, `all_interactions`).
    split:    the split (song and user index sets; `valid` for early stopping).
    seed:     the cell's seed; `rng` a numpy Generator seeded from it.
    device:   "cpu" or "cuda".
    create:   build another component: `create("loss", "hinge", margin=0.2)`. Always
              callable: the runner passes the registry's; the default raises ConfigError.
    features: `features("logmel")` / `features("waveform")` returns a
              :class:`SongFeaturesLike` (a :class:`recbench.features.SongFeatures`
              standardised on the training songs). Always callable: the runner passes the
              real one; the default raises ConfigError saying there is no audio.
    progress: `progress(iterable, total=None, desc="")` wraps a loop in a progress bar.
    """

    dataset: Dataset
    split: Split
    seed: int
    device: str = "cpu"
    create: Callable[..., Component] = _no_factory
    features: Callable[..., SongFeaturesLike] = _no_features
    progress: Callable[..., Any] = field(default=lambda it, **kw: it)
    oracle: bool = False

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    @property
    def train(self) -> sp.csr_matrix:
        """Training interactions (users x songs counts)."""
        return self.split.train

    @property
    def all_interactions(self) -> sp.csr_matrix:
        """Every interaction, held-out ones included: only for declared oracles."""
        if not self.oracle:
            raise PermissionError(
                "all_interactions is only available to models declaring "
                "uses_test_interactions = True")
        return self.dataset.counts


# --------------------------------------------------------------------------- audio side


class Backbone(Component, abc.ABC):
    """An audio backbone: a factory of torch modules over audio windows.

    `input_kind` is "logmel" or "waveform". The built module maps a float tensor of shape
    (batch, time_steps, channels) (channels = mel bins, or 1 for waveforms) to
    (batch, D), D = :meth:`out_features` (the requested `out_dim` unless the backbone
    says otherwise), and has an ``out_features`` attribute equal to D. `learnable` False
    means the module must not be trained (models freeze it and add a head).
    """

    kind = "backbone"
    input_kind: ClassVar[str] = "logmel"
    learnable: ClassVar[bool] = True

    @abc.abstractmethod
    def build(self, time_steps: int, channels: int, out_dim: int) -> Any:
        """Return a `torch.nn.Module` for windows of `time_steps` x `channels`."""

    def out_features(self, time_steps: int, channels: int, out_dim: int) -> int:
        """The output size D of the module `build(time_steps, channels, out_dim)` returns
        (default: `out_dim`; e.g. ``mel-stats`` returns 2 * channels)."""
        return out_dim


class Loss(Component, abc.ABC):
    """A training loss. `ranking` losses take (pos (B,), neg (B, K)) scores;
    regression losses take (pred, target) of the same shape. Returns a scalar tensor."""

    kind = "loss"
    ranking: ClassVar[bool] = True

    @abc.abstractmethod
    def __call__(self, a: Any, b: Any) -> Any:
        """The mean loss over the batch."""


class Sampler(Component, abc.ABC):
    """Draws negative songs for users.

    `prepare(train, songs)` is called once with the training matrix and the song indices
    negatives may come from. `sample(users, n, rng, scorer)` returns an int array
    (len(users), n) of song indices; `scorer(users, candidates)` (scores of shape
    (len(users), n_candidates)) is given for model-aware samplers and may be None.
    """

    kind = "sampler"

    def prepare(self, train: sp.csr_matrix, songs: np.ndarray) -> None:
        self.songs = np.asarray(songs)

    @abc.abstractmethod
    def sample(self, users: np.ndarray, n: int, rng: np.random.Generator,
               scorer: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
               ) -> np.ndarray:
        """Negative song indices of shape (len(users), n)."""


# --------------------------------------------------------------------------- data


@dataclass
class LoadContext:
    """What a dataset loader gets: a cache folder, a row limit for smoke runs, strictness,
    the suite file (for relative paths) and a progress wrapper."""

    cache_dir: str
    limit: int | None = None
    strict: bool = False
    suite_dir: str = "."
    progress: Callable[..., Any] = field(default=lambda it, **kw: it)


class DatasetLoader(Component, abc.ABC):
    """A dataset plugin. `validate()` checks what can be checked before any work
    (data roots exist…) and raises RecbenchError; `load(ctx)` returns the Dataset."""

    kind = "dataset"
    synthetic: ClassVar[bool] = False

    def validate(self, suite_dir: str | None = None) -> None:
        """Raise :class:`recbench.errors.RecbenchError` if the data cannot be loaded.

        `suite_dir` is the suite file's folder: relative paths are resolved against it."""

    @abc.abstractmethod
    def load(self, ctx: LoadContext) -> Dataset:
        """Load (or generate) the dataset."""


class Splitter(Component, abc.ABC):
    """A split plugin: deterministic under `seed`."""

    kind = "split"
    protocol: ClassVar[str] = ""

    @abc.abstractmethod
    def split(self, dataset: Dataset, seed: int) -> Split:
        """Split the dataset's interactions and songs."""


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


# --------------------------------------------------------------------------- execution


class Executor(Component, abc.ABC):
    """Runs the runner's work items. `map(fn, items)` yields (index, result) pairs as items
    finish, in any order; `fn` never raises (the runner catches errors inside it). An item
    is one fit unit (a model and seed: fitted once, then evaluated by every task that
    applies), so the items are independent: run them anywhere, in any order.
    `close()` frees resources."""

    kind = "executor"
    in_process: ClassVar[bool] = False
    """True when cells run in the calling process, one after another: the runner then
    shows per-cell progress bars and lets the first cell extract the features itself
    (a parallel executor gets them extracted once, through `map`, before the cells)."""

    @abc.abstractmethod
    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        """Apply `fn` to every item; yield (position, result) as each finishes."""

    def close(self) -> None:
        """Release workers."""


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


KINDS: dict[str, type[Component]] = {
    "recommender": Recommender,
    "backbone": Backbone,
    "loss": Loss,
    "sampler": Sampler,
    "dataset": DatasetLoader,
    "split": Splitter,
    "metric": Metric,
    "executor": Executor,
    "task": Task,
}
