"""End-to-end tests through the `recbench` CLI in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SUITE = """
[suite]
name = "e2e"
seeds = [0, 1]
bootstrap = 200

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

[[models]]
name = "popularity-oracle"

[[models]]
name = "example-inverse-popularity"
id = "third-party"
"""

ROW_KEYS = {"suite", "task", "protocol", "dataset", "split", "model", "seed", "metrics",
            "metrics_ci", "throughput", "timing", "peak_rss_mb", "device", "env", "status",
            "error", "cell_id"}


def recbench(*args, cwd=None, check=None, env=None):
    """Run the CLI; returns the CompletedProcess."""
    proc = subprocess.run([sys.executable, "-m", "recbench", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    if check is not None:
        assert proc.returncode == check, proc.stderr + proc.stdout
    return proc


def suite_file(tmp_path, text=SUITE, name="suite.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def rows_of(out: Path):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_run_writes_rows_and_leaderboards(tmp_path):
    out = tmp_path / "out"
    recbench("run", suite_file(tmp_path), "-o", out, "-q", check=0)
    rows = rows_of(out)
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert {"name", "fingerprint", "synthetic"} <= set(r["dataset"])
        assert {"name", "seed", "fingerprint"} <= set(r["split"])
        assert {"name", "params", "config_hash", "uses_test_interactions"} <= set(r["model"])
        assert {"fit_s", "eval_s", "total_s"} <= set(r["timing"])
        assert {"python", "recbench", "torch", "numpy", "platform"} <= set(r["env"])
        low, high = r["metrics_ci"]["auc"]
        assert low <= r["metrics"]["auc"] <= high
        assert r["protocol"] == "cold-item" and r["dataset"]["synthetic"] is True
    by = {(r["model"]["id"], r["seed"]): r for r in rows}
    # Cold songs have no training listeners: honest popularity ties everywhere -> exactly 0.5.
    assert by[("popularity", 0)]["metrics"]["auc"] == 0.5
    assert by[("popularity-oracle", 0)]["model"]["uses_test_interactions"] is True
    assert by[("popularity", 0)]["model"]["uses_test_interactions"] is False
    assert by[("third-party", 0)]["model"]["provider"] == "recbench-example-plugin 0.3.1"
    md = (out / "leaderboard.md").read_text()
    assert "SYNTHETIC" in md and "oracle / upper bound" in md and "95% CI" in md
    lb = json.loads((out / "leaderboard.json").read_text())
    board = lb["tasks"]["recommendation"]
    sections = {r["label"]: r["section"] for r in board["rows"]}
    assert sections["popularity-oracle"] == "oracle / upper bound"
    assert "rank" not in next(r for r in board["rows"] if r["label"] == "popularity-oracle")
    ranks = [r["rank"] for r in board["rows"] if r["section"] == "cold-start"]
    assert ranks == [1, 2, 3]
    assert (out / "leaderboard.csv").read_text().startswith("task,section,rank")
    # `leaderboard` re-renders the same numbers from results.jsonl.
    (out / "leaderboard.json").unlink()
    recbench("leaderboard", out, check=0)
    assert json.loads((out / "leaderboard.json").read_text()) == lb


@pytest.mark.parametrize("mutation, needle", [
    (lambda s: s + "\n[models\n", "invalid TOML"),
    (lambda s: s.replace("[suite]", "[suite]\ncolour = 1"), "suite.colour"),
    (lambda s: s.replace('name = "random"', 'name = "randum"'), "Did you mean: random"),
    (lambda s: s.replace("seeds = [0, 1]", "seeds = 3"), "suite.seeds"),
    (lambda s: s.replace('name = "tiny"', 'name = "folder"\nroot = "/nonexistent/data"'),
     "/nonexistent/data"),
])
def test_broken_suites_fail_validate_and_run_with_one_line(tmp_path, mutation, needle):
    p = suite_file(tmp_path, mutation(SUITE))
    for cmd in (["validate", p], ["run", p, "-o", tmp_path / "out"]):
        proc = recbench(*cmd, check=2)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "suite.toml" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()  # nothing started


def test_failed_cell_is_recorded_and_others_run(tmp_path):
    text = SUITE.replace('id = "third-party"', 'id = "third-party"\nfail = true')
    out = tmp_path / "out"
    proc = recbench("run", suite_file(tmp_path, text), "-o", out, "-q", check=1)
    rows = rows_of(out)
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(rows) == 8 and len(failed) == 2
    assert all("asked to fail" in r["error"] for r in failed)
    assert "FAILED" in proc.stderr


def test_kill_midway_then_resume_redoes_no_finished_cell(tmp_path):
    text = SUITE.replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3]").replace(
        'id = "third-party"', 'id = "third-party"\nsleep_s = 0.6')
    p = suite_file(tmp_path, text)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "recbench", "run", str(p), "-o", str(out),
                             "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        n = len(list((out / "cells").glob("*.json"))) if (out / "cells").exists() else 0
        if n >= 13:  # the 12 fast cells are done; the slow third-party ones are running
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {f.name: f.read_text() for f in (out / "cells").glob("*.json")}
    assert 0 < len(before) < 16
    for line in (out / "results.jsonl").read_text().splitlines():
        json.loads(line)  # every stored line is whole
    recbench("run", p, "-o", out, "--resume", "-q", check=0)
    after = {f.name: f.read_text() for f in (out / "cells").glob("*.json")}
    assert len(after) == 16
    for name, text in before.items():  # finished cells were not redone
        assert after[name] == text
    assert len(rows_of(out)) == 16


def test_interrupt_keeps_finished_cells(tmp_path):
    text = SUITE.replace('id = "third-party"', 'id = "third-party"\nsleep_s = 5')
    p = suite_file(tmp_path, text)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "recbench", "run", str(p), "-o", str(out),
                             "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        if (out / "cells").exists() and len(list((out / "cells").glob("*.json"))) >= 6:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert len(rows_of(out)) == 6 and (out / "leaderboard.md").exists()
    assert not (out / ".lock.owner").exists()  # the lock itself is released with the run


def test_lock_prevents_two_runs_in_one_folder(tmp_path):
    import filelock
    import socket

    out = tmp_path / "out"
    out.mkdir()
    holder = filelock.FileLock(str(out / ".lock"), timeout=0)  # a live run holds it
    holder.acquire()
    (out / ".lock.owner").write_text(f"{os.getpid()} {socket.gethostname()}\n")
    try:
        proc = recbench("run", suite_file(tmp_path), "-o", out, check=2)
        assert "in use by another recbench run" in proc.stderr
        assert f"pid {os.getpid()}" in proc.stderr
    finally:
        holder.release()
    # The holder is gone (released, as when its process dies): the lock is taken over.
    recbench("run", suite_file(tmp_path), "-o", out, "-q", check=0)


def test_compare_gate(tmp_path):
    out = tmp_path / "out"
    recbench("run", suite_file(tmp_path), "-o", out, "-q", check=0)
    recbench("compare", out, "--baseline", out, check=0)
    lb = json.loads((out / "leaderboard.json").read_text())
    # A baseline whose AUC is higher than the candidate's by more than the tolerance.
    for row in lb["tasks"]["recommendation"]["rows"]:
        if row.get("model_id") == "popularity-oracle":
            m = row["metrics"]["auc"]
            m["mean"] += 0.2
            m["ci"] = [m["ci"][0] + 0.2, m["ci"][1] + 0.2]
    base = tmp_path / "raised.json"
    base.write_text(json.dumps(lb))
    proc = recbench("compare", out / "leaderboard.json", "--baseline", base, "--tolerance",
                    "0.05", check=1)
    assert "REGRESSED" in proc.stdout and "popularity-oracle" in proc.stdout
    # Within tolerance: passes.
    recbench("compare", out, "--baseline", base, "--tolerance", "0.5", check=0)
    # Different data: refused unless allowed.
    lb["tasks"]["recommendation"]["dataset"]["fingerprint"] = "0" * 16
    base.write_text(json.dumps(lb))
    proc = recbench("compare", out, "--baseline", base, check=2)
    assert "fingerprint" in proc.stderr
    recbench("compare", out, "--baseline", base, "--allow-different-data", check=1)
    recbench("compare", out, "--baseline", tmp_path / "nope.json", check=2)


def test_compare_fails_for_a_deliberately_worse_model(tmp_path):
    """The same model id backed by a worse model (random instead of the oracle) regresses."""
    good = SUITE.replace('name = "popularity-oracle"', 'name = "popularity-oracle"\nid = "m"')
    worse = SUITE.replace('name = "popularity-oracle"', 'name = "random"\nid = "m"')
    recbench("run", suite_file(tmp_path, good, "good.toml"), "-o", tmp_path / "good", "-q",
             check=0)
    recbench("run", suite_file(tmp_path, worse, "worse.toml"), "-o", tmp_path / "worse", "-q",
             check=0)
    proc = recbench("compare", tmp_path / "worse", "--baseline", tmp_path / "good", check=1)
    assert "REGRESSED" in proc.stdout
    lines = [ln for ln in proc.stdout.splitlines() if "REGRESSED" in ln]
    assert len(lines) == 1 and "| m " in lines[0]
    recbench("compare", tmp_path / "good", "--baseline", tmp_path / "worse", check=0)


def test_compare_pairs_users_and_ignores_per_user_values_of_an_edited_board(tmp_path):
    from recbench.compare import compare, load_leaderboard

    out = tmp_path / "out"
    recbench("run", suite_file(tmp_path), "-o", out, "-q", check=0)
    lb = load_leaderboard(out)
    changes, _ = compare(lb, lb, candidate_dir=out, baseline_dir=out)
    auc = [c for c in changes if c.metric == "auc" and c.model == "popularity-oracle"][0]
    assert auc.paired is not None and auc.paired["diff"] == 0.0 and not auc.regressed
    # The leaderboard's number raised by hand: the stored per-user values no longer
    # reproduce it, so the comparison falls back to the unpaired rule and regresses.
    edited = json.loads(json.dumps(lb))
    for row in edited["tasks"]["recommendation"]["rows"]:
        if row.get("model_id") == "popularity-oracle":
            row["metrics"]["auc"]["mean"] += 0.2
    changes, _ = compare(lb, edited, candidate_dir=out, baseline_dir=out, tolerance=0.05)
    auc = [c for c in changes if c.metric == "auc" and c.model == "popularity-oracle"][0]
    assert auc.paired is None and auc.regressed
