"""Tuning searches: budget, samplers, pruning, resume after an interruption or a kill, and
the honest protocol through a real run (trials never read test labels; the chosen
setting is refitted once and evaluated once on test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recbench import hookimpl
from recbench.components import FitContext, Recommender
from recbench.errors import RecbenchError
from recbench.params import Param
from recbench.tuning import report, run_search

X = {"x": {"low": 0.0, "high": 1.0, "log": False, "step": None}}


def tuning(space=X, trials=None, seconds=None, sampler="random", pruner="none",
           direction="maximize") -> dict:
    return {"space": space, "sampler": sampler, "budget": {"trials": trials, "seconds": seconds},
            "metric": "auc", "task": "recommendation", "direction": direction,
            "pruner": pruner, "seed": 0, "refit": "train"}


def test_grid_search_visits_each_point_once_and_picks_the_best(tmp_path):
    calls = []

    def objective(p):
        calls.append(p["x"])
        return -(p["x"] - 0.3) ** 2

    space = {"x": {"choices": [0.1, 0.2, 0.3, 0.4]}}
    out = run_search(tuning(space, trials=4, sampler="grid"), objective,
                     storage=tmp_path / "s.sqlite3", study_name="g", seed=0)
    assert sorted(calls) == [0.1, 0.2, 0.3, 0.4]
    assert out.params == {"x": 0.3} and out.block["best_value"] == 0.0
    assert out.block["trials_run"] == out.block["trials_complete"] == 4
    # minimising the same objective picks an end of the grid
    out = run_search(tuning(space, trials=4, sampler="grid", direction="minimize"),
                     objective, storage=None, study_name="g", seed=0)
    assert out.params == {"x": 0.1} and out.block["best_value"] == pytest.approx(-0.04)


def test_an_interrupted_search_resumes_without_rerunning_a_finished_trial(tmp_path):
    storage = tmp_path / "s.sqlite3"
    first: list[float] = []

    def interrupted(p):
        if len(first) == 2:
            raise KeyboardInterrupt
        first.append(p["x"])
        return p["x"]

    with pytest.raises(KeyboardInterrupt):
        run_search(tuning(trials=5), interrupted, storage=storage, study_name="r", seed=0)
    second: list[float] = []

    def resumed(p):
        second.append(p["x"])
        return p["x"]

    out = run_search(tuning(trials=5), resumed, storage=storage, study_name="r", seed=0)
    assert len(first) == 2 and len(second) == 3  # the remaining budget, nothing more
    assert not set(first) & set(second)
    b = out.block
    assert (b["trials_run"], b["trials_resumed"], b["trials_complete"]) == (5, 2, 5)
    assert out.params["x"] == max(first + second) == b["best_value"]
    # a finished search runs nothing more
    again: list[float] = []
    run_search(tuning(trials=5), lambda p: again.append(1) or 0.0, storage=storage,
               study_name="r", seed=0)
    assert again == []


KILLED = """
import sys, time
from pathlib import Path
from recbench.tuning import run_search
log = Path(sys.argv[2])
def objective(p):
    with log.open("a") as f:
        f.write(f"{p['x']}\\n")
    if len(log.read_text().split()) == 3:
        time.sleep(120)  # killed here, in the middle of the third trial
    return p["x"]
space = {"x": {"low": 0.0, "high": 1.0, "log": False, "step": None}}
run_search({"space": space, "sampler": "tpe", "budget": {"trials": 6, "seconds": None},
            "metric": "auc", "task": "recommendation", "direction": "maximize",
            "pruner": "none", "seed": 0, "refit": "train"}, objective,
           storage=Path(sys.argv[1]), study_name="k", seed=0)
"""


def test_a_killed_search_resumes_from_its_stored_trials(tmp_path):
    storage, log = tmp_path / "k.sqlite3", tmp_path / "calls.txt"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(storage), str(log)])
    try:
        deadline = time.time() + 400  # generous: a loaded 2-core machine starts slowly
        while time.time() < deadline and not (log.exists() and
                                              len(log.read_text().split()) == 3):
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert len(log.read_text().split()) == 3
    calls: list[float] = []
    out = run_search(tuning(trials=6, sampler="tpe"), lambda p: calls.append(p["x"]) or
                     p["x"], storage=storage, study_name="k", seed=0)
    # 2 trials finished before the kill; the one it cut does not count: 4 remain
    assert len(calls) == 4
    assert out.block["trials_resumed"] == 2 and out.block["trials_run"] == 6
    import optuna

    study = optuna.load_study(study_name="k", storage=f"sqlite:///{storage}")
    cut = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(cut) == 1 and cut[0].state == optuna.trial.TrialState.FAIL


def test_a_seconds_budget_is_spent_once(tmp_path):
    storage = tmp_path / "s.sqlite3"
    calls: list[int] = []

    def slow(p):
        calls.append(1)
        time.sleep(0.3)
        return p["x"]

    out = run_search(tuning(seconds=0.5), slow, storage=storage, study_name="t", seed=0)
    assert 1 <= len(calls) <= 2 and out.block["seconds_used"] >= 0.3 * len(calls)
    run_search(tuning(seconds=0.5), slow, storage=storage, study_name="t", seed=0)
    assert len(calls) == out.block["trials_run"]  # the budget was spent: nothing ran


def test_failed_trials_count_and_the_search_goes_on(tmp_path):
    calls: list[float] = []

    def flaky(p):
        calls.append(p["x"])
        if len(calls) % 2:
            raise FloatingPointError("diverged")
        return p["x"]

    out = run_search(tuning(trials=4), flaky, storage=None, study_name="f", seed=0)
    assert len(calls) == 4 and out.block["trials_failed"] == 2
    assert out.params["x"] == max(calls[1], calls[3])
    with pytest.raises(RecbenchError, match="no trial of the search finished .2 run.; last error: ZeroDivisionError"):
        run_search(tuning(trials=2), lambda p: 1 / 0, storage=None,
                   study_name="z", seed=0)
    with pytest.raises(RecbenchError, match="no trial"):
        run_search(tuning(trials=2), lambda p: float("nan"), storage=None, study_name="n",
                   seed=0)


def test_the_median_pruner_stops_trials_below_the_median():
    calls: list[int] = []

    def objective(p):
        calls.append(1)
        good = len(calls) <= 2  # the first two trials are good, the rest hopeless
        for step in range(5):
            report(1.0 if good else 0.0, step)
        return 1.0 if good else 0.0

    out = run_search(tuning(trials=5, pruner="median"), objective, storage=None,
                     study_name="p", seed=0)
    assert (out.block["trials_complete"], out.block["trials_pruned"]) == (2, 3)
    report(0.0, 0)  # outside a search: nothing happens
    out = run_search(tuning(trials=3), objective, storage=None, study_name="q", seed=0)
    assert out.block["trials_pruned"] == 0  # pruner = none


def test_early_stopping_reports_each_epoch_so_the_pruner_stops_hopeless_fits():
    """The shared EarlyStopping of the built-in models is the pruning hook: a fit whose
    validation AUC stays below the median of earlier trials at the same epoch is pruned
    there, and never reaches its later epochs."""
    from recbench_builtin._training import EarlyStopping

    epochs_run: list[int] = []

    def objective(p):
        good = len(epochs_run) < 3 * 6  # the first three fits are good, the rest poor
        stopper = EarlyStopping(patience=10)
        for epoch in range(1, 7):
            epochs_run.append(epoch)
            stopper.update(epoch, (0.8 if good else 0.5) + 0.01 * epoch, dict)
        return stopper.best

    out = run_search(tuning(trials=5, pruner="median"), objective, storage=None,
                     study_name="es", seed=0)
    assert (out.block["trials_complete"], out.block["trials_pruned"]) == (3, 2)
    # recbench's "median" pruner (2 startup trials, 1 warm-up step) stops each poor fit
    # after its first epoch
    assert len(epochs_run) == 3 * 6 + 2 * 1


class Probe(Recommender):
    """Scores songs by training listeners ** `w` (higher `w`: more popular first); with
    `peek`, reads the test labels in fit (a leak the search must refuse)."""

    name = "tuning-probe"
    description = "test probe of the tuning protocol"
    params = (Param("w", float, -1.0, "exponent", min=-1.0, max=1.0),
              Param("peek", bool, False, "read split.test in fit"))
    log: list[tuple[str, object]] = []

    def fit(self, ctx: FitContext) -> None:
        Probe.log.append(("fit", self.options["w"]))
        if self.options["peek"]:
            Probe.log.append(("peeked", ctx.split.test.nnz))
        self._pop = np.asarray((ctx.train > 0).sum(axis=0)).ravel().astype(float) + 1.0

    def score(self, users, songs):
        Probe.log.append(("score", tuple(int(s) for s in songs)))
        s = self._pop[songs] ** self.options["w"]
        return np.broadcast_to(s, (len(users), len(songs))).copy()


@hookimpl
def recbench_register_recommenders(register):
    register(Probe)


SUITE = """
[suite]
name = "tuned"
bootstrap = 0
[dataset]
name = "synth-msd"
preset = "tiny"
[split]
name = "warm"
[run]
executor = "local"
[[tasks]]
name = "recommendation"
metrics = ["auc"]
buckets = 0
[tuning]
sampler = "grid"
trials = 3
[[models]]
name = "tuning-probe"
peek = {peek}
[models.search]
w = {{choices = [-1.0, 0.0, 1.0]}}
"""


def run(tmp_path, monkeypatch, peek: bool, resume: bool = False):
    from recbench.registry import build_registry, discovery
    from recbench.run import run_suite
    from recbench.suite import load_suite

    registry = build_registry([sys.modules[__name__]])
    monkeypatch.setattr(discovery, "_DEFAULT", registry)
    path = tmp_path / "tuned.toml"
    path.write_text(SUITE.format(peek=str(peek).lower()))
    suite = load_suite(path, registry)
    out = tmp_path / "out"
    Probe.log.clear()
    run_suite(suite, out, resume=resume, show_progress=False)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return suite, out, rows


def test_a_search_that_reads_test_labels_fails(tmp_path, monkeypatch):
    _, _, rows = run(tmp_path, monkeypatch, peek=True)
    assert rows[0]["status"] == "failed"
    assert "TestLabelsHidden" in rows[0]["error"] and "tuning trial" in rows[0]["error"]
    assert not [e for e in Probe.log if e[0] == "peeked"]


def test_the_chosen_setting_is_refitted_and_tested_once(tmp_path, monkeypatch):
    from recbench.split.cache import load_dataset, load_split

    suite, out, rows = run(tmp_path, monkeypatch, peek=False)
    (row,) = rows
    assert row["status"] == "ok"
    split = load_split(suite, load_dataset(suite, os.environ["RECBENCH_CACHE"], None))
    fits = [e[1] for e in Probe.log if e[0] == "fit"]
    assert sorted(fits[:3]) == [-1.0, 0.0, 1.0] and len(fits) == 4  # 3 trials + 1 refit
    # each trial is scored on the validation songs; only the refit sees the test songs
    scored = [set(e[1]) for e in Probe.log if e[0] == "score"]
    valid, test = set(split.valid_songs.tolist()), set(split.test_songs.tolist())
    i_refit = max(i for i, e in enumerate(Probe.log) if e[0] == "fit")
    n_trial_scores = sum(1 for e in Probe.log[:i_refit] if e[0] == "score")
    assert all(s <= valid for s in scored[:n_trial_scores])
    assert all(s == test for s in scored[n_trial_scores:])
    t = row["model"]["tuning"]
    # popularity ranks held-out songs well on synth-msd: the search picks w = 1
    assert t["chosen"] == {"w": 1.0} and row["model"]["params"]["w"] == 1.0
    assert (t["trials_run"], t["budget"], t["sampler"]) == (3, {"trials": 3, "seconds": None},
                                                            "grid")
    assert t["best_value"] > 0.6 and row["model"]["config_hash"] == \
        suite.models[0].config_hash
    board = (out / "leaderboard.md").read_text()
    assert "tuned (grid, budget 3 trials)" in board
    # the stored study is reused: a rerun of the lost cell fits only the chosen setting
    for p in (out / "cells").iterdir():
        p.unlink()
    _, _, rows = run(tmp_path, monkeypatch, peek=False, resume=True)
    assert [e[1] for e in Probe.log if e[0] == "fit"] == [1.0]
    assert rows[0]["model"]["tuning"]["trials_resumed"] == 3
    assert rows[0]["metrics"] == row["metrics"]
    assert list(Path(out / "tuning").iterdir())[0].suffix == ".sqlite3"


KILL_SUITE = """
[suite]
name = "killed"
bootstrap = 0
[dataset]
name = "tiny"
[split]
name = "warm"
[run]
executor = "local"
[[tasks]]
name = "recommendation"
metrics = ["auc"]
buckets = 0
[tuning]
sampler = "random"
trials = 5
[[models]]
name = "example-inverse-popularity"
sleep_s = 2.0                 # the poller below must see 2 trials finish before the 5th
[models.search]
power = {low = 0.0, high = 2.0}
"""


@pytest.mark.slow
def test_killing_recbench_run_mid_search_then_resume_reruns_no_finished_trial(tmp_path):
    import optuna
    from optuna.trial import TrialState

    suite = tmp_path / "killed.toml"
    suite.write_text(KILL_SUITE)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recbench", "run", str(suite), "-o", str(out), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def trials():
        files = list((out / "tuning").glob("*.sqlite3")) if (out / "tuning").exists() else []
        if not files:
            return []
        try:
            (name,) = optuna.get_all_study_names(storage=f"sqlite:///{files[0]}")
            return optuna.load_study(study_name=name, storage=f"sqlite:///{files[0]}").trials
        except Exception:  # noqa: BLE001 - the database is still being created
            return []

    try:
        deadline = time.time() + 400  # generous: a loaded 2-core machine starts slowly
        while time.time() < deadline and sum(
                t.state == TrialState.COMPLETE for t in trials()) < 2:
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {t.number: (t.params, t.datetime_complete) for t in trials()
              if t.state == TrialState.COMPLETE}
    assert 2 <= len(before) < 5 and not list((out / "cells").glob("*.json"))
    done = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = trials()
    finished = [t for t in after if t.state in (TrialState.COMPLETE, TrialState.FAIL)
                and not t.user_attrs.get("interrupted")]
    assert len(finished) == 5  # the budget, once
    for n, (params, completed) in before.items():  # finished trials were not run again
        assert (after[n].params, after[n].datetime_complete) == (params, completed)
    new = [t for t in after if t.number not in before and not t.user_attrs.get("interrupted")]
    assert len(new) == 5 - len(before)
    (row,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert row["status"] == "ok" and row["model"]["tuning"]["trials_resumed"] == len(before)
