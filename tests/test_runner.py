"""The runner's failure handling, in process: undefined metrics and sys.exit() fail one
cell, the run lock survives a full disk, output folders that cannot be written and corrupt
bookkeeping files give one named line (never a traceback), `[run] cache_dir` is honoured,
the confidence level labels the boards, and a run outside git says so."""

from __future__ import annotations

import errno
import json
import os
import socket
import textwrap
from pathlib import Path

import numpy as np
import pytest

from recbench import results, runner
from recbench.io import atomic
from recbench.run import runner as run_runner, worker as run_worker
from recbench.cli import main

SUITE = """
[suite]
name = "rt"
seeds = [0, 1]
bootstrap = 20

[dataset]
name = "tiny"

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "random"

[[models]]
name = "popularity"
"""


def write_suite(tmp_path: Path, text: str = SUITE) -> Path:
    p = tmp_path / "suite.toml"
    p.write_text(textwrap.dedent(text))
    return p


def run(tmp_path: Path, *extra: str, suite: Path | None = None, out: Path | None = None
        ) -> int:
    suite = suite or write_suite(tmp_path)
    return main(["run", str(suite), "-o", str(out or tmp_path / "out"), "-q", *extra])


def error_lines(capsys) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return [ln for ln in err.strip().splitlines() if ln.strip()]


def rows(out: Path) -> list[dict]:
    return [json.loads(ln) for ln in (out / "results.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------------- cells


def test_metric_undefined_for_all_users_is_a_failed_cell(tmp_path, monkeypatch, capsys):
    from recbench_builtin.metrics import AUC

    monkeypatch.setattr(AUC, "per_user",
                        lambda self, block: np.full(block.scores.shape[0], np.nan))
    assert run(tmp_path) == 1
    out_rows = rows(tmp_path / "out")
    assert len(out_rows) == 4 and all(r["status"] == "failed" for r in out_rows)
    assert all("auc" in r["error"] and "undefined for all" in r["error"] for r in out_rows)


def test_sys_exit_in_fit_fails_that_cell_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    from recbench_builtin.recommenders.baselines import RandomRecommender

    def fit(self, ctx):
        raise SystemExit(3)

    monkeypatch.setattr(RandomRecommender, "fit", fit)
    assert run(tmp_path) == 1
    by = {(r["model"]["id"], r["seed"]): r for r in rows(tmp_path / "out")}
    assert len(by) == 4
    assert by[("random", 0)]["status"] == "failed" and "sys.exit(3)" in by[("random", 0)]["error"]
    assert by[("popularity", 1)]["status"] == "ok"


def test_confidence_level_is_recorded_and_labels_the_boards(tmp_path, capsys):
    suite = write_suite(tmp_path, SUITE.replace("bootstrap = 20", "bootstrap = 20\n"
                                                "confidence = 0.9"))
    assert run(tmp_path, suite=suite) == 0
    out = tmp_path / "out"
    assert {r["metrics_ci_level"] for r in rows(out)} == {0.9}
    md, page = (out / "leaderboard.md").read_text(), (out / "leaderboard.html").read_text()
    assert "90% CI" in md and "90% CI" in page
    assert "95%" not in md and "95%" not in page
    assert json.loads((out / "leaderboard.json").read_text()
                      )["tasks"]["recommendation"]["ci_level"] == 0.9


# --------------------------------------------------------------------------- lock


def _fail_lock_writes(monkeypatch):
    """open() raises ENOSPC for files whose name mentions 'lock' (a full disk just when the
    run lock's owner file is written; the atomic writer opens its temporary file by name)."""
    import builtins

    real = builtins.open

    def fake_open(file, *a, **kw):
        if isinstance(file, (str, os.PathLike)) and "lock" in os.path.basename(os.fspath(file)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", fake_open)


def test_full_disk_while_locking_leaves_no_lock_that_blocks_the_next_run(
        tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        _fail_lock_writes(m)
        assert run(tmp_path) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "No space left on device" in lines[0]
    assert run(tmp_path) == 0  # nothing left behind blocks this run


def test_lock_held_by_a_live_run_names_its_pid_and_host(tmp_path, capsys):
    import filelock

    out = tmp_path / "out"
    out.mkdir()
    holder = filelock.FileLock(str(out / ".lock"), timeout=0)
    holder.acquire()
    (out / ".lock.owner").write_text(f"{os.getpid()} {socket.gethostname()}\n")
    try:
        assert run(tmp_path) == 2
        lines = error_lines(capsys)
        assert len(lines) == 1 and "in use by another recbench run" in lines[0]
        assert f"pid {os.getpid()} on {socket.gethostname()}" in lines[0]
    finally:
        holder.release()
    assert run(tmp_path) == 0
    assert not (out / ".lock.owner").exists()


# --------------------------------------------------------------------------- output folder


def test_output_path_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "out").write_text("not a folder")
    assert run(tmp_path) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "is a file" in lines[0] and "out" in lines[0]


def test_read_only_output_is_one_line(tmp_path, monkeypatch, capsys):
    def mkstemp(*a, **kw):
        raise OSError(errno.EROFS, "Read-only file system", kw.get("dir"))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    assert run(tmp_path) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "Read-only file system" in lines[0]


def test_full_disk_mid_run_is_one_line_and_resume_finishes(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real = os.fsync

    def fsync(fd):
        calls["n"] += 1
        if calls["n"] > 6:  # lock owner, plan and a few cells fit; then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", fsync)
        assert run(tmp_path) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and "No space left on device" in lines[0] and "--resume" in lines[0]
    assert run(tmp_path, "--resume") == 0
    assert len(rows(tmp_path / "out")) == 4


# --------------------------------------------------------------------------- corrupt files


def test_corrupt_cell_file_is_named_and_resume_recomputes_it(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(tmp_path) == 0
    victim = sorted((out / "cells").glob("*.json"))[0]
    victim.write_text('{"cell_id": ')
    capsys.readouterr()
    assert main(["leaderboard", str(out), "-q"]) == 0
    lines = error_lines(capsys)
    assert any(victim.name in ln and "corrupt" in ln for ln in lines), lines
    assert run(tmp_path, "--resume") == 0
    assert any(victim.name in ln and "corrupt" in ln for ln in error_lines(capsys))
    assert json.loads(victim.read_text())["status"] == "ok"  # recomputed
    assert sorted(r["cell_id"] for r in rows(out)) == sorted(
        p.stem for p in (out / "cells").glob("*.json"))


def test_corrupt_per_user_file_is_recomputed_on_resume(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(tmp_path) == 0
    victim = sorted((out / "cells").glob("*.npz"))[0]
    victim.write_bytes(b"PK\x03\x04 torn")
    assert run(tmp_path, "--resume") == 0
    assert any(victim.name in ln for ln in error_lines(capsys))
    assert results.read_per_user(out, victim.stem) is not None


@pytest.mark.parametrize("name", ["plan.json", "leaderboard_meta.json"])
def test_corrupt_bookkeeping_file_is_named_in_one_line(tmp_path, capsys, name):
    out = tmp_path / "out"
    assert run(tmp_path) == 0
    (out / name).write_text("{torn")
    capsys.readouterr()
    assert main(["leaderboard", str(out)]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and name in lines[0] and "corrupt" in lines[0]
    assert main(["compare", str(out), "--baseline", str(out)]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and name in lines[0]


# --------------------------------------------------------------------------- cache, git


def test_run_cache_dir_is_honoured_with_cli_precedence(tmp_path, monkeypatch, capsys):
    seen = []
    real = runner.plan_units

    def plan_units(suite, **kw):
        seen.append(kw["cache_dir"])
        return real(suite, **kw)

    monkeypatch.setattr(run_runner, "plan_units", plan_units)  # where run_suite looks it up
    suite = write_suite(tmp_path, SUITE.replace("[[tasks]]", '[run]\ncache_dir = "cc"\n\n'
                                                "[[tasks]]"))
    assert run(tmp_path, suite=suite) == 0
    assert seen[-1] == str(tmp_path / "cc")  # relative to the suite file, not the cwd
    assert run(tmp_path, "--cache-dir", str(tmp_path / "cli"), suite=suite) == 0
    assert seen[-1] == str(tmp_path / "cli")
    assert run(tmp_path) == 0  # neither: $RECBENCH_CACHE (set by conftest)
    assert seen[-1] == os.environ["RECBENCH_CACHE"]


def test_run_outside_a_git_checkout_says_so(tmp_path, monkeypatch, capsys):
    from recbench import env

    commit, note = env.git_info(tmp_path)
    assert commit is None and "not run from a git checkout" in note
    fake = {**env.environment(), "git_commit": None, "git_note": note}
    monkeypatch.setattr(run_worker, "environment", lambda: fake)  # read by each fit unit
    assert run(tmp_path) == 0
    md = (tmp_path / "out" / "leaderboard.md").read_text()
    assert "commit None" not in md and "not run from a git checkout" in md


FIT_SUITE = """
[suite]
name = "fitrep"
seeds = [0]
bootstrap = 0

[dataset]
name = "synth-msd"
preset = "tiny"

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "dcue"
max_epochs = 2
steps_per_epoch = 2
batch_size = 8
negatives = 2
backbone_params = { width = 0.125 }

[[models]]
name = "wmf-regression"
factors = 4
epochs = 2
backbone = "mel-stats"
"""


def test_rows_carry_the_models_fit_report(tmp_path):
    """DCUE's early-stopping facts and WMF+Regression's losses reach the row's
    `model.fit` (review defect 6: they were set on the model and lost)."""
    suite = tmp_path / "fit.toml"
    suite.write_text(textwrap.dedent(FIT_SUITE))
    assert run(tmp_path, suite=suite) == 0
    by_model = {r["model"]["id"]: r for r in rows(tmp_path / "out")}
    fit = by_model["dcue"]["model"]["fit"]
    assert fit["epochs"] == len(fit["history"]) == 2
    assert fit["stopped_by"] == "max_epochs" and fit["steps"] == 4
    assert 1 <= fit["best_epoch"] <= 2
    assert all(np.isfinite(h["loss"]) and 0 <= h["valid_auc"] <= 1 for h in fit["history"])
    wfit = by_model["wmf-regression"]["model"]["fit"]
    assert len(wfit["losses"]) == 2 and set(wfit["timing"]) >= {"wmf_fit_s", "train_s"}
