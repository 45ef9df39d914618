"""Contention: the quickstart's DCUE fit, and the whole quickstart, on a machine whose
cores other jobs keep busy.

Run with `pytest tests/benchmarks/test_bench_contention.py --benchmark-only -s`.

- ``test_dcue_fit_idle_vs_two_busy_processes``: the quickstart suite reduced to its DCUE
  model and the recommendation task (same data, split, features, DCUE parameters and
  `[run]` table, so the same thread policy), run through the `recbench` command in a fresh
  process, first on idle cores, then next to two busy processes (``python -c 'while True:
  pass'``, started here and killed afterwards), alternating (``RECBENCH_BENCH_PAIRS``
  pairs, default 2). The figure is the row's ``timing.fit_s``; ``extra_info`` holds all
  of them and the ratio of the fastest busy to the fastest idle fit (target <= 2.5 on 2
  cores).
  Variants: ``quickstart`` (the suite as committed: reproducible mode, 1 thread),
  ``2-threads-passive`` (2 threads, passive waiting: the default outside reproducible
  mode) and ``2-threads-spinning`` (``OMP_WAIT_POLICY=ACTIVE``: what the policy prevents;
  opt-in with ``RECBENCH_BENCH_SPINNING=1``, as it takes minutes).
  The training budget is cut to ``RECBENCH_BENCH_DCUE_STEPS`` steps (default 200, in epochs of
  100 steps as the quickstart's; its full budget is 12 epochs x 100 = 1200 steps).
- ``test_quickstart_next_to_two_busy_processes``: the README's main command
  (``recbench run suites/quickstart.toml``, into a temporary folder, fresh feature cache
  as for a new user) next to two busy processes; target under 180 s on 2 cores.

Speed is a measurement, not an assertion: the figures go into ``extra_info`` and are
printed. The busy processes matter only where they compete with the run: on a machine
with many idle cores the ratio is ~1 whatever the policy.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "suites" / "quickstart.toml"
STEPS = int(os.environ.get("RECBENCH_BENCH_DCUE_STEPS", "200"))
BUSY = 2
PAIRS = int(os.environ.get("RECBENCH_BENCH_PAIRS", "2"))  # alternating idle / busy fits
TARGET_FIT_RATIO = 2.5
TARGET_QUICKSTART_S = 180.0

VARIANTS = {  # name -> (extra CLI arguments, extra environment)
    "quickstart": ([], {}),
    "2-threads-passive": (["--set", "run.reproducible=false", "--threads", "2"], {}),
    "2-threads-spinning": (["--set", "run.reproducible=false", "--threads", "2"],
                           {"OMP_WAIT_POLICY": "ACTIVE"}),
}
OPT_IN = {"2-threads-spinning"}


def _report(capsys, text: str) -> None:
    with capsys.disabled():
        print("\n" + text)


@contextlib.contextmanager
def busy_processes(n: int = BUSY):
    """`n` processes spinning on a core each, as other users' jobs would."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    time.sleep(0.5)
    try:
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait(timeout=10)


def dcue_suite(tmp_path: Path) -> Path:
    """quickstart.toml with only its DCUE model and the recommendation task (AUC)."""
    text = QUICKSTART.read_text(encoding="utf-8")
    head, *blocks = re.split(r"(?m)^(?=\[\[(?:tasks|models)\]\])", text)
    dcue = [b for b in blocks if b.startswith("[[models]]")
            and re.search(r'(?m)^name\s*=\s*"dcue"\s*$', b)]
    assert len(dcue) == 1, "quickstart.toml has no single dcue model"
    task = '[[tasks]]\nname = "recommendation"\nmetrics = ["auc"]\n\n'
    path = tmp_path / "quickstart_dcue.toml"
    path.write_text(head.rstrip() + "\n\n" + task + dcue[0], encoding="utf-8")
    return path


def _env(extra: dict[str, str], cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "RECBENCH_THREADS",
                        "RECBENCH_REPRODUCIBLE")}
    env.update(extra, RECBENCH_CACHE=str(cache))
    return env


def run_dcue(suite: Path, out: Path, args: list[str], env: dict[str, str], steps: int) -> float:
    """`recbench run` of the DCUE suite; returns the row's fit seconds."""
    epochs = max(1, steps // 100)
    cmd = [sys.executable, "-m", "recbench", "run", str(suite), "-o", str(out), "-q",
           "--set", f"models.dcue.max_epochs={epochs}",
           "--set", f"models.dcue.steps_per_epoch={max(1, steps // epochs)}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [row] = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert row["status"] == "ok", row["error"]
    return float(row["timing"]["fit_s"])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_dcue_fit_idle_vs_two_busy_processes(benchmark, tmp_path, tmp_path_factory, capsys,
                                             variant):
    args, extra = VARIANTS[variant]
    suite, cache = dcue_suite(tmp_path), tmp_path_factory.getbasetemp() / "features"
    env = _env(extra, cache)
    run_dcue(suite, tmp_path / "warm", args, env, 1)  # data, split and features cached
    if variant in OPT_IN and os.environ.get("RECBENCH_BENCH_SPINNING") != "1":
        pytest.skip("spinning OpenMP threads take minutes next to busy processes; "
                    "RECBENCH_BENCH_SPINNING=1 runs it")
    idle: list[float] = []
    loaded: list[float] = []

    def idle_fit():  # untimed setup before each round: the idle figure, next to the busy one
        idle.append(run_dcue(suite, tmp_path / f"idle{len(idle)}", args, env, STEPS))

    def loaded_fit():
        with busy_processes():
            loaded.append(run_dcue(suite, tmp_path / f"busy{len(loaded)}", args, env, STEPS))

    benchmark.pedantic(loaded_fit, setup=idle_fit, rounds=PAIRS, iterations=1)
    # the fastest of each: other jobs on a shared machine only ever slow a run down
    ratio = min(loaded) / min(idle)
    benchmark.extra_info.update({
        "variant": variant, "steps": STEPS, "cores": len(os.sched_getaffinity(0)),
        "busy_processes": BUSY, "fit_idle_s": [round(x, 2) for x in idle],
        "fit_busy_s": [round(x, 2) for x in loaded], "ratio_busy_over_idle": round(ratio, 2),
        "target_ratio": TARGET_FIT_RATIO})
    _report(capsys, f"DCUE fit ({variant}, {STEPS} steps): idle {min(idle):.1f} s, next to "
                    f"{BUSY} busy processes {min(loaded):.1f} s (fastest of {PAIRS}), ratio "
                    f"{ratio:.2f} (target <= {TARGET_FIT_RATIO})")


def test_quickstart_next_to_two_busy_processes(benchmark, tmp_path, capsys):
    env = _env({}, tmp_path / "cache")  # a new user's empty feature cache
    out = tmp_path / "quickstart"
    seconds: list[float] = []

    def quickstart():
        with busy_processes():
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "recbench", "run", str(QUICKSTART),
                                   "-o", str(out), "-q"], capture_output=True, text=True,
                                  env=env, cwd=REPO, timeout=3600)
            seconds.append(time.perf_counter() - t0)
        assert proc.returncode == 0, proc.stderr[-3000:]

    benchmark.pedantic(quickstart, rounds=1, iterations=1)
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    fits = {r["model"]["id"]: round(r["timing"].get("fit_s", 0.0), 1) for r in rows
            if not r["timing"].get("fit_shared")}
    benchmark.extra_info.update({"wall_s": round(seconds[0], 1), "target_s": TARGET_QUICKSTART_S,
                                 "busy_processes": BUSY, "fit_s": fits,
                                 "cores": len(os.sched_getaffinity(0))})
    _report(capsys, f"quickstart next to {BUSY} busy processes: {seconds[0]:.0f} s "
                    f"(target < {TARGET_QUICKSTART_S:.0f} s); fits: {fits}")
