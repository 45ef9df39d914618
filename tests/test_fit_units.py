"""The fit is the unit of work: a suite plans fit units (model x seed), each fitted once
and evaluated by every task that applies (one row per task); resume runs only a unit's
missing tasks; a fit failure fails every cell of its unit, a task failure only its own;
workers get the resolved suite (never the raw TOML to re-validate)."""

from __future__ import annotations

import json
import pickle
import textwrap
from pathlib import Path

import pytest

from recbench import runner
from recbench.cli import main
from recbench.registry import default_registry
from recbench.suite import load_suite

SUITE = """
[suite]
name = "units"
seeds = [0, 1]
bootstrap = 0

[dataset]
name = "synth-msd"
preset = "tiny"

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[tasks]]
name = "tagging"
max_epochs = 2

[[models]]
name = "random"

[[models]]
name = "wmf"
factors = 4
"""


def write_suite(tmp_path: Path) -> Path:
    p = tmp_path / "suite.toml"
    p.write_text(textwrap.dedent(SUITE))
    return p


def rows(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]


def run(tmp_path: Path, *extra: str) -> int:
    return main(["run", str(write_suite(tmp_path)), "-o", str(tmp_path / "out"), "-q",
                 *extra])


@pytest.fixture
def fits(monkeypatch):
    """Counts fits per (model name, seed) of the built-in random and wmf models."""
    from recbench_builtin.recommenders.baselines import RandomRecommender
    from recbench_builtin.recommenders.wmf import WMF

    calls: list[tuple[str, int]] = []
    for cls in (RandomRecommender, WMF):
        real = cls.fit

        def fit(self, ctx, _real=real):
            calls.append((self.name, ctx.seed))
            return _real(self, ctx)

        monkeypatch.setattr(cls, "fit", fit)
    return calls


def test_plan_has_one_unit_per_model_and_seed_with_a_cell_per_applicable_task(tmp_path):
    suite = load_suite(write_suite(tmp_path), default_registry())
    units = runner.plan_units(suite)
    assert [(u.model, u.seed) for u in units] == [("random", 0), ("random", 1), ("wmf", 0),
                                                  ("wmf", 1)]
    # random has no song vectors: tagging does not apply to it
    assert [[c.task for c in u.cells] for u in units] == [
        ["recommendation"], ["recommendation"], ["recommendation", "tagging"],
        ["recommendation", "tagging"]]
    ids = [c.cell_id for u in units for c in u.cells]
    assert len(set(ids)) == 6 and [c.cell_id for c in runner.plan_cells(suite)] == ids
    # a unit travels to workers as it is: the resolved suite, not its TOML
    back = pickle.loads(pickle.dumps(units[2]))
    assert back.suite.models[back.model_idx].options == suite.models[1].options
    assert back.cell_ids == units[2].cell_ids


def test_each_model_and_seed_is_fitted_once_for_all_its_tasks(tmp_path, fits, monkeypatch):
    import recbench.suite as suite_mod
    import recbench.suite.validate as validate_mod

    def no_revalidation(*a, **kw):
        raise AssertionError("a worker re-validated the suite")

    suite = load_suite(write_suite(tmp_path), default_registry())
    with monkeypatch.context() as patch:
        for mod in (suite_mod, validate_mod):  # the old path and where it is defined
            patch.setattr(mod, "validate_raw", no_revalidation)
        summary = runner.run_suite(suite, tmp_path / "out", show_progress=False, device="cpu")
    assert (summary.ran, summary.failed) == (6, 0)
    assert sorted(fits) == [("random", 0), ("random", 1), ("wmf", 0), ("wmf", 1)]
    by = {(r["model"]["id"], r["seed"], r["task"]): r for r in rows(tmp_path / "out")}
    assert len(by) == 6 and all(r["status"] == "ok" for r in by.values())
    for seed in (0, 1):
        rec, tag = by[("wmf", seed, "recommendation")], by[("wmf", seed, "tagging")]
        assert rec["timing"]["fit_shared"] is False and tag["timing"]["fit_shared"] is True
        assert rec["timing"]["fit_s"] == tag["timing"]["fit_s"] > 0
        assert "after_fit_mb" in rec["memory"] and "after_fit_mb" not in tag["memory"]
        assert rec["model"]["fit"] == tag["model"]["fit"]


def test_resume_runs_only_the_missing_tasks_of_a_unit(tmp_path, fits):
    out = tmp_path / "out"
    assert run(tmp_path) == 0
    first = {(r["model"]["id"], r["seed"], r["task"]): r for r in rows(out)}
    victim = first[("wmf", 1, "tagging")]
    (out / "cells" / f"{victim['cell_id']}.json").unlink()
    fits.clear()
    assert run(tmp_path, "--resume") == 0
    assert fits == [("wmf", 1)]  # one refit, for the one missing cell
    again = {(r["model"]["id"], r["seed"], r["task"]): r for r in rows(out)}
    assert again.keys() == first.keys()
    assert again[("wmf", 1, "tagging")]["metrics"] == victim["metrics"]  # same numbers
    assert again[("wmf", 1, "tagging")]["timing"]["fit_shared"] is False
    assert again[("wmf", 1, "recommendation")] == first[("wmf", 1, "recommendation")]
    fits.clear()
    assert run(tmp_path, "--resume") == 0
    assert fits == []  # every unit finished: skipped


def test_fit_failure_fails_every_cell_of_its_unit_only(tmp_path, monkeypatch, capsys):
    from recbench_builtin.recommenders.wmf import WMF

    def fit(self, ctx):
        if ctx.seed == 1:
            raise ValueError("factorisation\ndiverged")
        self._fitted_ok = True

    monkeypatch.setattr(WMF, "fit", fit)
    monkeypatch.setattr(WMF, "score", lambda self, u, s: __import__("numpy").zeros(
        (len(u), len(s))))
    monkeypatch.setattr(WMF, "item_vectors", lambda self, s: __import__("numpy").eye(
        len(s), 4))
    assert run(tmp_path) == 1
    by = {(r["model"]["id"], r["seed"], r["task"]): r for r in rows(tmp_path / "out")}
    failed = {k for k, r in by.items() if r["status"] == "failed"}
    assert failed == {("wmf", 1, "recommendation"), ("wmf", 1, "tagging")}
    errors = {by[k]["error"] for k in failed}
    assert errors == {"ValueError: factorisation diverged"}  # one line, the same reason
    assert all("Traceback" in by[k]["extra"]["traceback"] for k in failed)


def test_task_failure_fails_only_its_cell(tmp_path, monkeypatch, fits):
    from recbench_builtin.tasks.tagging import TaggingTask

    def boom(self, ctx):
        raise RuntimeError("mlp exploded")

    monkeypatch.setattr(TaggingTask, "run", boom)
    assert run(tmp_path) == 1
    by = {(r["model"]["id"], r["seed"], r["task"]): r for r in rows(tmp_path / "out")}
    assert {k for k, r in by.items() if r["status"] == "failed"} == {
        ("wmf", 0, "tagging"), ("wmf", 1, "tagging")}
    assert by[("wmf", 0, "tagging")]["error"] == "RuntimeError: mlp exploded"
    assert by[("wmf", 0, "recommendation")]["status"] == "ok"
    assert sorted(fits) == [("random", 0), ("random", 1), ("wmf", 0), ("wmf", 1)]


def test_worker_cache_keeps_one_dataset_and_split_per_process(tmp_path):
    suite = load_suite(write_suite(tmp_path), default_registry())
    cache = runner.WorkerCache()
    ds = cache.dataset(suite, str(tmp_path / "c"))
    assert cache.dataset(suite, str(tmp_path / "c")) is ds
    sp = cache.split(suite, ds)
    assert cache.split(suite, ds) is sp
    other = cache.dataset(suite, str(tmp_path / "c"), limit=50)  # another key: replaced
    assert other is not ds and cache.dataset(suite, str(tmp_path / "c"), limit=50) is other
    cache.clear()
    assert cache.dataset(suite, str(tmp_path / "c")) is not ds
