"""The typed result row: the committed JSON Schema is the one the model generates, the
committed baseline rows validate against the model unchanged, and drift is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from recbench import results
from recbench.schema import SCHEMA_FILE, result_row_schema, result_row_schema_text
from recbench.schema.result_row import ResultRow

ROOT = Path(__file__).resolve().parents[1]
BASELINE_CELLS = sorted((ROOT / "results" / "baselines" / "quickstart" / "cells").glob("*.json"))


def test_committed_schema_file_is_the_generated_one():
    assert SCHEMA_FILE.read_text(encoding="utf-8") == result_row_schema_text(), (
        "recbench/schema/result_row.schema.json is stale: run `python -m recbench.schema`")
    schema = result_row_schema()
    assert schema["x-schema-version"] == results.SCHEMA_VERSION == 1
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) >= {"schema", "cell_id", "task", "model", "metrics",
                                       "status", "error", "extra"}


def test_results_exposes_the_model_lazily():
    assert results.ResultRow is ResultRow
    with pytest.raises(AttributeError):
        results.NoSuchThing  # noqa: B018


@pytest.mark.parametrize("path", BASELINE_CELLS, ids=lambda p: p.stem)
def test_committed_baseline_rows_validate_and_round_trip(path):
    row = json.loads(path.read_text(encoding="utf-8"))
    stored = results.validate_row(row)
    assert json.loads(results.dumps(stored)) == row  # the model changes nothing in a row


def test_there_are_baseline_rows_to_check():
    assert len(BASELINE_CELLS) == 13


def _a_row() -> dict:
    return json.loads(BASELINE_CELLS[0].read_text(encoding="utf-8"))


def test_unknown_or_missing_fields_are_refused():
    row = _a_row()
    with pytest.raises(ValidationError, match="surprise"):
        ResultRow.model_validate({**row, "surprise": 1})
    with pytest.raises(ValidationError, match="n_userz"):
        ResultRow.model_validate({**row, "dataset": {**row["dataset"], "n_userz": 3}})
    del row["cell_id"]
    with pytest.raises(ValidationError, match="cell_id"):
        ResultRow.model_validate(row)


def test_unreached_blocks_stay_absent_and_per_user_is_kept():
    row = _a_row()
    for key in ("memory", "finished_at"):
        row.pop(key)
    row["model"].pop("fit", None)
    row["_per_user"] = {"users": [1, 2]}
    out = results.validate_row(row)
    assert "memory" not in out and "finished_at" not in out and "fit" not in out["model"]
    assert out["_per_user"] == {"users": [1, 2]}


def test_task_output_moves_legacy_extra_keys_into_its_fields():
    """Tasks written for the earlier contract (metric info and per-user values inside
    `extra`, as the README's example still does) keep working for one release."""
    import numpy as np

    from recbench.components import TaskOutput

    out = TaskOutput(metrics={"auc": 0.5}, metrics_ci={}, throughput={}, timing={},
                     extra={"metric_info": {"auc": {"higher_is_better": True}},
                            "per_user": {"users": np.arange(2)},
                            "ignored_metrics": ["ndcg@10"], "private": 1})
    assert out.metric_info == {"auc": {"higher_is_better": True}}
    assert list(out.per_user["users"]) == [0, 1] and out.ignored_metrics == ["ndcg@10"]
    assert out.extra == {"private": 1} and out.diagnostics == {}
    typed = TaskOutput(metrics={}, metrics_ci={}, throughput={}, timing={},
                       metric_info={"auc": {"label": "AUC"}},
                       extra={"metric_info": {"auc": {"label": "old"}}})
    assert typed.metric_info == {"auc": {"label": "AUC"}}  # the real field wins
