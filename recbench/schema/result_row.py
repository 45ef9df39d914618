"""The typed result row: one pydantic model per block of a row of ``results.jsonl``.

The runner builds every row through :class:`ResultRow` (so a row that drifts from this
model fails at once, naming the field) and `recbench.schema.result_row_schema()` exports
it as JSON Schema (``recbench/schema/result_row.schema.json``, checked by a test). Rows
are stored as plain JSON: readers (leaderboard, compare) keep reading dicts.

Imported lazily (``recbench.results.ResultRow``): pydantic costs ~0.1 s to import, which
commands that never build a row (``recbench list``) do not pay.

Blocks whose keys the core decides are closed (an unknown key is an error); blocks whose
keys come from plugins (parameters, metrics, throughput, task diagnostics, environment)
are open dicts. Fields a failed cell may not have reached are optional.
"""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetBlock(_Closed):
    """The dataset a cell ran on."""

    name: str = Field(description="dataset plugin name")
    params: dict[str, Any] = Field(description="the loader's resolved parameters "
                                   "(environment-expanded values as their ${VAR} template)")
    fingerprint: Optional[str] = Field(
        description="content hash of ids, counts, tags, audio identities (None: not loaded)")
    synthetic: bool = Field(description="generated data: labelled as such everywhere")
    n_users: Optional[int] = None
    n_songs: Optional[int] = None
    n_interactions: Optional[int] = None
    side: Optional[list[str]] = Field(
        None, description="the optional side parts the dataset has (user_features, "
        "user_categories, song_categories, modalities, events); absent when it has none")
    manifest: Optional[dict[str, Any]] = Field(
        None, description="the loader's manifest (long lists cut, secrets redacted)")
    notice: Optional[str] = Field(None, description="why a fallback replaced the dataset")
    features: Optional[dict[str, Any]] = Field(
        None, description="{kind: SongFeatures.manifest} of the audio features the model read")


class SplitBlock(_Closed):
    """The split of the dataset."""

    name: str = Field(description="split plugin name")
    seed: int = Field(description="split seed (fixed across model seeds)")
    fingerprint: Optional[str] = Field(
        description="changes when and only when the split changes (None: not reached)")
    params: dict[str, Any] = Field(description="the splitter's resolved parameters")
    protocol: Optional[str] = Field(None, description="cold-item | warm | cold-user")
    n_train_songs: Optional[int] = None
    n_valid_songs: Optional[int] = None
    n_test_songs: Optional[int] = None
    n_test_users: Optional[int] = None


class ModelBlock(_Closed):
    """The recommender of the cell."""

    id: str = Field(description="unique within the suite")
    name: str = Field(description="recommender plugin name")
    label: str = Field(description="display name")
    params: dict[str, Any] = Field(description="fully resolved parameters")
    config_hash: str = Field(description="hash of name + params (+ search space and "
                             "budget for a tuned model)")
    uses_test_interactions: bool = Field(description="oracle rows: ranked apart")
    consumes: list[str] = Field(description="information the model reads")
    provider: str = Field(description="distribution and version of the plugin")
    fit: Optional[dict[str, Any]] = Field(
        None, description="Recommender.fit_report(): epochs, best epoch, stop reason, losses")
    tuning: Optional[dict[str, Any]] = Field(
        None, description="a tuned model's search (recbench.tuning): space, sampler, budget "
        "{trials, seconds}, metric, task, direction, trials_run, best_value, chosen params "
        "(also in `params`); absent for hand-set parameters")


class MetricInfoBlock(BaseModel):
    """What the task says about one metric column (plugins may add keys)."""

    model_config = ConfigDict(extra="allow")

    label: Optional[str] = None
    higher_is_better: Optional[bool] = None
    description: Optional[str] = None
    n_users: Optional[int] = None
    excluded_users: Optional[int] = None
    n_tags: Optional[int] = None
    ci_over: Optional[str] = Field(None, description="what the bootstrap of the interval "
                                   "resamples (users, songs, artists); absent: users")
    paired_over: Optional[str] = Field(None, description="the unit claims pair rows on, "
                                       "where it differs from ci_over (genres)")


class ResultRow(_Closed):
    """One cell's result row (task x model x seed), as stored in ``results.jsonl`` and
    ``cells/<cell_id>.json``."""

    schema_: int = Field(alias="schema", description="results.SCHEMA_VERSION: bumps only "
                         "when a field changes meaning")
    cell_id: str = Field(description="hash of suite name, task, model config, seed, dataset "
                         "and split specs")
    suite: str = Field(description="suite name")
    task: str = Field(description="task plugin name")
    protocol: Optional[str] = Field(description="the split's protocol (None: not reached)")
    dataset: DatasetBlock
    split: SplitBlock
    model: ModelBlock
    seed: int = Field(description="model seed")
    metrics: dict[str, Optional[float]] = Field(description="column name -> value")
    metrics_ci: dict[str, list[Optional[float]]] = Field(
        description="column name -> [low, high] (bootstrap); [null, null] without one")
    metrics_ci_level: float = Field(description="confidence level of metrics_ci")
    metric_info: dict[str, MetricInfoBlock] = Field(description="column -> facts")
    throughput: dict[str, Optional[float]] = Field(
        description="e.g. train_examples_per_s, scoring_pairs_per_s")
    timing: dict[str, Any] = Field(
        description="seconds: fit_s, eval_s, total_s; fit_shared (bool): the fit was made "
                    "for an earlier task of the same model and seed")
    peak_rss_mb: Optional[float] = Field(description="peak resident memory (MiB) at the end")
    memory: Optional[dict[str, float]] = Field(
        None, description="peak RSS (MiB) after_data, after_fit (first task of a fit), "
                          "after_eval")
    device: dict[str, Any] = Field(description="{type: cpu|cuda, cpu, gpu}")
    env: dict[str, Any] = Field(description="versions, platform, git commit, threads")
    status: str = Field(description="ok | failed")
    error: Optional[str] = Field(description="one-line error of a failed cell")
    extra: dict[str, Any] = Field(
        description="the task's diagnostics and private data (never read by the core); "
                    "traceback of a failed cell")
    features: dict[str, Any] = Field(description="the suite's [features] parameters")
    finished_at: Optional[str] = Field(None, description="ISO time")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        """The row as stored: the fields that were set (a failed cell's unreached blocks
        stay absent), by their JSON names."""
        return self.model_dump(by_alias=True, exclude_unset=True)
