"""Executors: `process` and `dask` give the same results as `local` (order-free), honour the
per-cell thread budget, name the cells of a lost fit unit, end their workers on Ctrl-C,
and run a real suite to exactly the same metrics and CIs as `local`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from recbench.errors import RecbenchError
from recbench.registry import default_registry
from recbench_builtin.executors import (DaskExecutor, LocalExecutor, ProcessExecutor,
                                        usable_cores)

def square_and_budget(x):
    """x*x plus what the executing worker sees of its thread budget and wait policy."""
    import threadpoolctl
    import torch

    blas = sorted({d["num_threads"] for d in threadpoolctl.threadpool_info()
                   if d["user_api"] == "blas"})
    return (x * x, os.getpid(), torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS"), blas,
            os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_WAIT_POLICY"))


def sleepy(x):
    """Returns x at once when x == 0, else after x seconds."""
    time.sleep(x)
    return x


def die_on_one(x):
    """Kills its worker process when x == 1 (as the OOM killer would)."""
    if x == 1:
        os._exit(9)
    return x


def worker_pids(parent: int | None = None) -> set[int]:
    """Live descendants of `parent` (default: this test process), except multiprocessing's
    resource tracker, which lives as long as its parent by design."""
    pids = set()
    for p in psutil.Process(parent).children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(
                    p.cmdline()):
                pids.add(p.pid)
        except psutil.NoSuchProcess:
            pass
    return pids


def wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    """Those of `pids` still alive after up to `timeout` seconds."""
    _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)],
                                 timeout=timeout)
    return {p.pid for p in alive if p.status() != psutil.STATUS_ZOMBIE}


# --------------------------------------------------------------------------- unit


def test_registered_with_the_cli_param_names():
    reg = default_registry()
    params = {name: {p.name for p in reg.get("executor", name).cls.params}
              for name in ("local", "process", "dask")}
    assert params == {"local": {"threads"}, "process": {"workers", "threads"},
                      "dask": {"scheduler", "workers", "threads"}}
    assert reg.create("executor", "process").workers == usable_cores()
    assert reg.create("executor", "process", threads=2).workers == max(1, usable_cores() // 2)
    assert reg.create("executor", "process", workers=3).workers == 3
    assert reg.create("executor", "dask").options == {"scheduler": None, "workers": 2,
                                                      "threads": 1}


@pytest.mark.parametrize("make", [lambda: ProcessExecutor(workers=2),
                                  lambda: DaskExecutor(workers=2)], ids=["process", "dask"])
def test_parallel_results_equal_local_with_one_thread_per_cell(make):
    items = list(range(7))
    expected = dict(LocalExecutor().map(lambda x: x * x, items))
    environ = dict(os.environ)
    ex = make()
    try:
        out = list(ex.map(square_and_budget, items))
    finally:
        ex.close()
    assert sorted(i for i, _ in out) == items  # each position exactly once
    assert {i: r[0] for i, r in out} == expected
    # the budget reached every worker: torch, BLAS and the environment all say 1 thread
    assert {(r[2], r[3], tuple(r[4])) for _, r in out} == {(1, "1", (1,))}
    assert os.getpid() not in {r[1] for _, r in out}
    # Dask's default would set it: glibc then unmaps every large numpy buffer (slow cells)
    assert {r[5] for _, r in out} == {None}
    # OpenMP threads wait passively (recbench.threads): spinning stalls a loaded machine
    assert {r[6] for _, r in out} == {"PASSIVE"}
    assert dict(os.environ) == environ  # starting workers left this process's env alone
    assert not wait_gone(worker_pids(), 10)


def test_process_threads_param_sets_the_budget():
    ex = ProcessExecutor(workers=1, threads=2)
    try:
        out = list(ex.map(square_and_budget, [3]))
    finally:
        ex.close()
    assert out[0][1][0] == 9 and out[0][1][2:4] == (2, "2") and out[0][1][4] == [2]


class _Unit:
    """A picklable stand-in for a runner fit unit (names its cells)."""

    def __init__(self, ids):
        self.cell_ids = ids


def die_on_unit(unit):
    """Kills its worker process (as the OOM killer would)."""
    os._exit(9)


def test_process_lost_fit_unit_names_its_cells():
    ex = ProcessExecutor(workers=1)
    try:
        with pytest.raises(RecbenchError, match=r"unfinished cell\(s\) c1, c2 \("):
            list(ex.map(die_on_unit, [_Unit(["c1", "c2"])]))
    finally:
        ex.close()


def test_process_worker_death_is_one_clear_error():
    ex = ProcessExecutor(workers=1)
    try:
        with pytest.raises(RecbenchError, match=r"lost a worker; unfinished cell\(s\) 1, 2 .*--resume"):
            list(ex.map(die_on_one, [0, 1, 2]))
    finally:
        ex.close()


def test_dask_uses_an_existing_scheduler_and_leaves_it_running():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1",
                      dashboard_address=None) as cluster:
        ex = DaskExecutor(scheduler=cluster.scheduler_address)
        try:
            assert sorted(ex.map(sleepy, [0, 0, 0])) == [(0, 0), (1, 0), (2, 0)]
        finally:
            ex.close()
        with Client(cluster) as client:  # still up after the executor closed
            assert client.submit(sleepy, 0).result() == 0


def test_dask_missing_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(RecbenchError, match=r"pip install 'dask\[distributed\]'") as err:
        list(DaskExecutor().map(sleepy, [0]))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("make", [lambda: ProcessExecutor(workers=2),
                                  lambda: DaskExecutor(workers=2)], ids=["process", "dask"])
@pytest.mark.parametrize("how", ["interrupt", "close"])
def test_interrupt_cancels_and_does_not_wait_for_running_cells(make, how):
    before = worker_pids()
    ex = make()
    gen = ex.map(sleepy, [0, 60, 60, 60, 60])
    assert next(gen) == (0, 0)
    workers = worker_pids() - before
    assert workers
    t0 = time.perf_counter()
    if how == "interrupt":  # Ctrl-C while the runner waits inside the generator
        with pytest.raises(KeyboardInterrupt):
            gen.throw(KeyboardInterrupt)
    ex.close()  # the runner always closes (when interrupted in its own loop body, too)
    assert time.perf_counter() - t0 < 15
    assert not wait_gone(workers, 10)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["process", "dask"])
def test_ctrl_c_on_the_cli_keeps_finished_cells_and_leaves_no_workers(tmp_path, executor):
    suite = suite_text(seeds=[0], models=("popularity",)) + textwrap.dedent("""
        [[models]]
        name = "example-inverse-popularity"
        id = "slow"
        sleep_s = 120
    """)
    (tmp_path / "s.toml").write_text(suite)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "recbench", "run", str(tmp_path / "s.toml"),
                             "-o", str(out), "-q", "--executor", executor, "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list(out.glob("cells/*.json")):
            time.sleep(0.05)
        workers = worker_pids(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole group
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "Traceback" not in err  # workers ignore the terminal's SIGINT; the parent stops them
    # the finished cell is kept (cells/; results.jsonl may lag by the cell being written)
    kept = [json.loads(p.read_text())["model"]["id"] for p in out.glob("cells/*.json")]
    assert kept == ["popularity"]
    assert not wait_gone(workers, 10)


@pytest.mark.slow
def test_a_sigkilled_run_leaves_no_process_workers_behind(tmp_path):
    """SIGKILL gives the run no chance to stop its pool: the workers notice that their
    parent is gone and end themselves instead of finishing a 120 s fit for nobody."""
    suite = suite_text(seeds=[0], models=()) + textwrap.dedent("""
        [[models]]
        name = "example-inverse-popularity"
        id = "slow"
        sleep_s = 120
    """)
    (tmp_path / "s.toml").write_text(suite)
    proc = subprocess.Popen([sys.executable, "-m", "recbench", "run", str(tmp_path / "s.toml"),
                             "-o", str(tmp_path / "out"), "-q", "--executor", "process",
                             "--workers", "2"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        workers: set[int] = set()
        while time.time() < deadline and not workers:
            time.sleep(0.2)
            workers = worker_pids(proc.pid)
        assert workers, "no process worker started"
        time.sleep(2)  # the unit is running in a worker (its fit sleeps 120 s)
        os.kill(proc.pid, signal.SIGKILL)  # the run only, not its process group
        proc.wait(timeout=30)
        assert not wait_gone(workers, 15)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- end to end


def suite_text(seeds=(0, 1), models=("random", "popularity", "popularity-oracle")) -> str:
    """The small cold-item suite on `tiny` (recommendation, AUC)."""
    text = textwrap.dedent(f"""
        [suite]
        name = "exec"
        seeds = {list(seeds)}
        bootstrap = 200

        [dataset]
        name = "tiny"

        [split]
        name = "cold-item"

        [[tasks]]
        name = "recommendation"
        metrics = ["auc"]
    """)
    return text + "".join(f'\n[[models]]\nname = "{m}"\n' for m in models)


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_suite_metrics_and_cis_are_identical_across_executors(tmp_path, monkeypatch):
    from recbench.runner import run_suite
    from recbench.suite import load_suite

    monkeypatch.setenv("RECBENCH_CACHE", str(tmp_path / "cache"))
    (tmp_path / "s.toml").write_text(suite_text())
    suite = load_suite(tmp_path / "s.toml", default_registry())
    before = worker_pids()
    rows, wall = {}, {}
    for name, params in [("local", {}), ("process", {"workers": 2}), ("dask", {"workers": 2})]:
        t0 = time.perf_counter()
        summary = run_suite(suite, tmp_path / name, executor_name=name, executor_params=params,
                            show_progress=False, device="cpu")
        wall[name] = time.perf_counter() - t0
        assert (summary.ran, summary.failed, summary.exit_code) == (6, 0, 0)
        rows[name] = {r["cell_id"]: r for r in rows_of(tmp_path / name)}
        assert len(rows[name]) == 6 and all(r["status"] == "ok" for r in rows[name].values())
    print("wall seconds:", {k: round(v, 2) for k, v in wall.items()})
    local = rows["local"]
    for name in ("process", "dask"):
        assert rows[name].keys() == local.keys()
        for cid, row in rows[name].items():
            assert row["metrics"] == local[cid]["metrics"], (name, row["model"]["id"])
            assert row["metrics_ci"] == local[cid]["metrics_ci"], (name, row["model"]["id"])
    by = {(r["model"]["id"], r["seed"]): r["metrics"]["auc"] for r in local.values()}
    assert by[("popularity", 0)] == by[("popularity", 1)] == 0.5  # cold songs: all tied
    assert by[("popularity-oracle", 0)] > 0.5
    assert not wait_gone(worker_pids() - before, 10)


def test_feature_extraction_through_an_executor_equals_the_threaded_one(tmp_path):
    """Feature extraction can use the suite's executor: chunks computed in worker
    processes give the same cache, bit for bit, as the in-process thread pool."""
    import textwrap

    import numpy as np

    from recbench.features import load_features
    from recbench.registry import default_registry
    from recbench.runner import load_dataset, load_split, prefetch_features
    from recbench.suite import load_suite

    p = tmp_path / "s.toml"
    p.write_text(textwrap.dedent("""
        [dataset]
        name = "synth-msd"
        preset = "tiny"
        songs = 64
        [[models]]
        name = "content-profile"
        """))
    suite = load_suite(p, default_registry())
    ex = ProcessExecutor(workers=2)
    try:
        prefetch_features(suite, ex, cache_dir=str(tmp_path / "a"), limit=None)
    finally:
        ex.close()
    ds = load_dataset(suite, str(tmp_path / "a"))
    sp = load_split(suite, ds)
    params = ds.manifest["feature_params"]
    via_executor = load_features(ds, "logmel", sp.train_songs, tmp_path / "a", params)
    threaded = load_features(ds, "logmel", sp.train_songs, tmp_path / "b", params, workers=2)
    assert via_executor.array.shape == threaded.array.shape == (64, *threaded.array.shape[1:])
    np.testing.assert_array_equal(np.asarray(via_executor.array), np.asarray(threaded.array))
    np.testing.assert_array_equal(via_executor.lengths, threaded.lengths)
    np.testing.assert_allclose(via_executor.mean, threaded.mean, rtol=0, atol=0)
