"""The thread policy (recbench/threads.py) and where runs write.

- the usable CPUs follow the affinity mask and a cgroup v1/v2 CPU quota;
- passive OpenMP waiting and the thread caps are in place before torch loads, in the CLI
  and in process workers; a user's own OMP_WAIT_POLICY / OMP_NUM_THREADS are kept;
- the local executor applies the budget to torch and BLAS;
- reproducible mode gives the same gated numbers whatever thread count or CPU kernels the
  run was asked for;
- the default output folder is git-ignored and holds no tracked file; the README's gate
  command is `.ci/run`'s.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without any thread setting, plus `extra`."""
    drop = {"OMP_WAIT_POLICY", "KMP_BLOCKTIME", "OPENBLAS_THREAD_TIMEOUT", "OMP_NUM_THREADS",
            "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "RECBENCH_THREADS",
            "RECBENCH_REPRODUCIBLE", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR",
            "DNNL_MAX_CPU_ISA", "OPENBLAS_CORETYPE", "VECLIB_MAXIMUM_THREADS",
            "NUMEXPR_NUM_THREADS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def _python(code: str, env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=180, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- usable CPUs


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)


def _cgroup(tmp_path: Path, files: dict[str, str], own: str) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(own)
    return root, proc


@pytest.mark.parametrize("files, own, expected", [
    ({}, "0::/\n", 8),                                                  # no controller files
    ({"cpu.max": "max 100000\n"}, "0::/\n", 8),                         # v2, unlimited
    ({"cpu.max": "150000 100000\n"}, "0::/\n", 2),                      # v2, 1.5 CPUs -> 2
    ({"cpu.max": "100000 100000\n"}, "0::/\n", 1),                      # v2, 1 CPU
    ({"cpu.max": "max 100000\n", "ci/job/cpu.max": "300000 100000\n"},  # v2, own nested group
     "0::/ci/job\n", 3),
    ({"cpu.max": "100000 100000\n", "ci/cpu.max": "max 100000\n"},      # v2, a parent's quota
     "0::/ci\n", 1),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"},  # v1
     "4:cpu,cpuacct:/\n0::/\n", 2),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},      # v1, none
     "4:cpu:/\n", 8),
    ({"cpu.max": "garbage\n"}, "0::/\n", 8),                            # unreadable: ignored
])
def test_usable_cpus_follow_affinity_and_cgroup_quota(tmp_path, eight_cpus, files, own,
                                                      expected):
    from recbench.threads import usable_cpus

    root, proc = _cgroup(tmp_path, files, own)
    assert usable_cpus(root, proc) == expected


def test_affinity_caps_the_count_below_the_quota(tmp_path, monkeypatch):
    from recbench.threads import usable_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    root, proc = _cgroup(tmp_path, {"cpu.max": "400000 100000\n"}, "0::/\n")
    assert usable_cpus(root, proc) == 1


def test_executors_count_workers_from_the_cgroup_quota(monkeypatch, eight_cpus):
    """The process executor's default worker count uses the quota, not the host's cores."""
    import recbench.threads as threads
    from recbench_builtin.executors import ProcessExecutor

    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda *a, **k: 2.0)
    assert ProcessExecutor(threads=1).workers == 2


def test_thread_count_precedence():
    from recbench.threads import resolve_threads

    assert resolve_threads(3, {"RECBENCH_THREADS": "2", "OMP_NUM_THREADS": "5"}) == 3
    assert resolve_threads(None, {"RECBENCH_THREADS": "2", "OMP_NUM_THREADS": "5"}) == 2
    assert resolve_threads(None, {"OMP_NUM_THREADS": "5"}) == 5       # the user's own
    assert resolve_threads(None, {"RECBENCH_THREADS": "zero"}) >= 1   # bad value: ignored


def test_user_wait_policy_is_kept_and_pools_share_one_count():
    from recbench.threads import configure_process

    env = {"OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "3"}
    assert configure_process(environ=env) == 3
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"
    assert env["KMP_BLOCKTIME"] == "0"
    assert {env[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                             "RECBENCH_THREADS")} == {"3"}
    env = {}
    configure_process(2, reproducible=True, environ=env)
    assert env["RECBENCH_THREADS"] == "1" and env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2" and env["MKL_CBWR"] == "AVX2"


# --------------------------------------------------------------------------- before torch


def test_cli_sets_the_policy_before_torch_loads():
    """`recbench` (here `main(["list"])`, which loads every plugin) sets passive waiting and
    the thread caps before torch / numpy / implicit load: torch then runs the budget."""
    out = _python("""
        import json, os, sys
        from recbench.cli import main
        main(["list", "--kind", "recommender"])
        import torch
        try:
            from recbench.threads import STATE
        except ImportError:  # a recbench without the policy
            STATE = {}
        print(json.dumps({"wait": os.environ.get("OMP_WAIT_POLICY"),
                          "omp": os.environ.get("OMP_NUM_THREADS"),
                          "torch": torch.get_num_threads(),
                          "loaded_before": STATE.get("wait_policy_set_with_loaded")}))
    """, _clean_env(RECBENCH_THREADS="1"))
    assert out == {"wait": "PASSIVE", "omp": "1", "torch": 1, "loaded_before": []}


def test_cli_keeps_a_users_wait_policy_and_thread_count():
    out = _python("""
        import json, os
        from recbench.cli import main
        main(["list", "--kind", "executor"])
        import torch
        print(json.dumps({"wait": os.environ.get("OMP_WAIT_POLICY"),
                          "torch": torch.get_num_threads()}))
    """, _clean_env(OMP_WAIT_POLICY="ACTIVE", OMP_NUM_THREADS="1"))
    assert out == {"wait": "ACTIVE", "torch": 1}


def probe_worker(_x):
    """What a worker process sees: its wait policy, thread caps, torch threads, and which
    native modules were loaded when recbench set the policy there."""
    import threadpoolctl
    import torch

    try:
        from recbench.threads import STATE
    except ImportError:  # a recbench without the policy
        STATE = {}
    return {"wait": os.environ.get("OMP_WAIT_POLICY"), "omp": os.environ.get("OMP_NUM_THREADS"),
            "torch": torch.get_num_threads(),
            "blas": sorted({d["num_threads"] for d in threadpoolctl.threadpool_info()
                            if d["user_api"] == "blas"}),
            "loaded_before": STATE.get("wait_policy_set_with_loaded")}


def test_process_workers_wait_passively_from_before_torch(monkeypatch):
    """Even when the parent's environment lacks the policy, a spawned worker has it before
    torch loads there."""
    from recbench_builtin.executors import ProcessExecutor

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    ex = ProcessExecutor(workers=1, threads=1)
    try:
        [(_, seen)] = list(ex.map(probe_worker, [0]))
    finally:
        ex.close()
    assert seen["wait"] == "PASSIVE"
    assert "torch" not in seen["loaded_before"]
    assert (seen["omp"], seen["torch"], seen["blas"]) == ("1", 1, [1])


def test_dask_workers_get_passive_waiting_in_their_spawn_environment():
    from recbench_builtin.executors import thread_env

    env = thread_env(1)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == "1"


def test_local_executor_applies_the_budget_to_torch_and_blas():
    import threadpoolctl
    import torch

    from recbench.registry import default_registry

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        ex = default_registry().create("executor", "local", threads=1)
        [(_, seen)] = list(ex.map(probe_worker, [0]))
        assert (seen["torch"], seen["blas"], seen["omp"]) == (1, [1], "1")
        assert {d["num_threads"] for d in threadpoolctl.threadpool_info()
                if d["user_api"] == "blas"} == {1}
    finally:
        torch.set_num_threads(before)
        threadpoolctl.threadpool_limits(limits=before)


def test_wmf_gets_the_budget_not_every_core(monkeypatch):
    """implicit's ALS runs with the process's budget when its `threads` is 0 (default)."""
    import numpy as np
    import scipy.sparse as sp
    from implicit.cpu import als

    from recbench_builtin.recommenders.wmf import WMF_PARAMS, fit_wmf

    seen = {}
    real = als.AlternatingLeastSquares

    def spy(**kw):
        seen["num_threads"] = kw["num_threads"]
        return real(**kw)

    monkeypatch.setattr(als, "AlternatingLeastSquares", spy)
    monkeypatch.setenv("RECBENCH_THREADS", "1")
    counts = sp.random(20, 30, density=0.2, format="csr", random_state=0, dtype=np.float32)
    options = {p.name: p.default for p in WMF_PARAMS} | {"factors": 4, "iterations": 2}
    fit_wmf(counts, options, seed=0)
    assert seen["num_threads"] == 1


# --------------------------------------------------------------------------- reproducible

REPRO_SUITE = """
[suite]
name = "repro"
seeds = [0]
bootstrap = 0

[dataset]
name = "synth-msd"
preset = "tiny"

[split]
name = "cold-item"
seed = 0

[run]
reproducible = true

[[tasks]]
name = "recommendation"
metrics = ["auc", "recall@10"]

[[models]]
name = "dcue"
optimizer = "adam"
sampler = "popularity"
shared_negatives = true
batch_size = 32
max_epochs = 2
steps_per_epoch = 10
backbone_params = { width = 0.25 }

[[models]]
name = "wmf-regression"
factors = 8
epochs = 1
optimizer = "adam"
backbone_params = { width = 0.25 }
"""


@pytest.mark.slow
def test_reproducible_runs_agree_across_thread_counts_and_cpu_kernels(tmp_path):
    """Two runs of a suite with `[run] reproducible = true`, asked for 1 and 2 threads and
    for different CPU kernels (oneDNN / MKL / ATen allowed AVX-512), each extracting its own
    features, give identical metrics for the learned models. (Without the mode, measured on
    this suite: 1 vs 2 threads and AVX2 vs AVX-512 oneDNN/MKL kernels each change DCUE's
    and WMF+Regression's AUC in the 3rd-4th decimal.)"""
    suite = tmp_path / "repro.toml"
    suite.write_text(textwrap.dedent(REPRO_SUITE))
    runs = {
        "1 thread": (["--threads", "1"], {}),
        "2 threads, AVX-512 allowed": (["--threads", "2"], {
            "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512",
            "MKL_CBWR": "AUTO"}),
    }
    metrics = {}
    for label, (args, extra) in runs.items():
        out = tmp_path / label.replace(" ", "_").replace(",", "")
        proc = subprocess.run(
            [sys.executable, "-m", "recbench", "run", str(suite), "-o", str(out), "-q", *args],
            capture_output=True, text=True, timeout=300, cwd=tmp_path,
            env=_clean_env(RECBENCH_CACHE=str(out) + "-cache", **extra))  # own features
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
        metrics[label] = {r["model"]["id"]: r["metrics"] for r in rows}
    first, second = metrics.values()
    assert first == second


# --------------------------------------------------------------------------- outputs


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO)


def test_default_output_folder_is_ignored_and_holds_no_tracked_file(monkeypatch):
    """`recbench run suites/quickstart.toml` (the README's main command) writes where
    nothing is tracked, so a first run moves or rewrites no committed file."""
    if _git("rev-parse", "--is-inside-work-tree").returncode != 0:
        pytest.skip("not a git checkout")
    import recbench.run.runner
    from recbench.cli import main

    seen = {}

    def fake_run_suite(suite, out, **kw):
        seen["out"] = Path(out)
        return recbench.run.runner.RunSummary()

    monkeypatch.setattr(recbench.run.runner, "run_suite", fake_run_suite)
    monkeypatch.chdir(REPO)
    assert main(["run", "suites/quickstart.toml", "-q"]) == 0
    out = seen["out"]
    assert not out.is_absolute()
    assert _git("ls-files", "--", str(out)).stdout == ""
    assert _git("check-ignore", "-q", str(out / "results.jsonl")).returncode == 0
    # and the gate's baseline is tracked somewhere else
    assert _git("ls-files", "--", "results/baselines/quickstart/leaderboard.json").stdout


def _gate_command(text: str) -> str:
    """The `recbench compare ... --baseline ...` command (continuation lines joined)."""
    m = re.search(r"^recbench compare .*?(?<!\\)$", text, re.M | re.S)
    assert m, "no recbench compare command"
    return m.group(0)


def test_readme_gate_command_is_ci_runs():
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    command = _gate_command(ci)
    assert "--metric" in command
    assert command in readme
    assert "results/baselines/quickstart/leaderboard.json" in command


def test_rows_record_the_thread_policy(monkeypatch):
    """Learned models' numbers depend on the intra-op thread count and the CPU kernels, so
    every row's `env` says how the worker ran (absent before: a row could not tell a
    reproducible run from a 2-thread one)."""
    import torch

    from recbench.env import environment

    monkeypatch.setenv("RECBENCH_REPRODUCIBLE", "1")
    torch.set_num_threads(1)
    env = environment()
    assert env["threads"] == 1 and env["reproducible"] is True
    monkeypatch.setenv("RECBENCH_REPRODUCIBLE", "0")
    assert environment()["reproducible"] is False
