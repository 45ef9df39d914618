"""Result storage: strict JSON, one file mode for every result file, results.jsonl grown by
appending (fsync'd, a torn last line repaired) and equal to the cell files after a run."""

from __future__ import annotations

import json
import os
import stat
import textwrap

import numpy as np

from recbench import results
from recbench.results import store as results_store
from recbench.cli import main
from recbench.leaderboard import write_leaderboards


def strict_loads(text: str):
    def refuse(name):
        raise ValueError(f"bare {name} in JSON")
    return json.loads(text, parse_constant=refuse)


def row(cell_id: str, seed: int = 0, **over) -> dict:
    r = {"schema": 1, "cell_id": cell_id, "suite": "s", "task": "recommendation",
         "protocol": "cold-item",
         "dataset": {"name": "tiny", "fingerprint": "d", "synthetic": True},
         "split": {"name": "cold-item", "seed": 0, "fingerprint": "s"},
         "model": {"id": "m", "name": "random", "label": "m", "params": {},
                   "config_hash": "h", "uses_test_interactions": False},
         "seed": seed, "metrics": {"auc": 0.5}, "metrics_ci": {"auc": [0.4, 0.6]},
         "metrics_ci_level": 0.95,
         "metric_info": {"auc": {"higher_is_better": True}},
         "throughput": {"scoring_pairs_per_s": float("nan"), "train_examples_per_s": np.inf},
         "timing": {"fit_s": 0.0, "eval_s": 0.0, "total_s": 0.0}, "peak_rss_mb": 1.0,
         "device": {"type": "cpu"}, "env": {}, "status": "ok", "error": None, "extra": {},
         "finished_at": f"2026-01-01T00:00:{seed:02d}+00:00"}
    r.update(over)
    return r


def test_results_and_boards_are_strict_json(tmp_path):
    out = tmp_path / "out"
    results.write_cell(out, row("a", 0))
    results.write_cell(out, row("b", 1, metrics={"auc": np.float64(0.6)}))
    for line in (out / "results.jsonl").read_text().splitlines():
        r = strict_loads(line)
        assert r["throughput"] == {"scoring_pairs_per_s": None, "train_examples_per_s": None}
    write_leaderboards(out)
    strict_loads((out / "leaderboard.json").read_text())


def test_every_result_file_gets_the_same_permissions(tmp_path):
    out = tmp_path / "out"
    results.write_cell(out, row("a", 0, _per_user={"users": np.arange(3),
                                                   "auc": np.array([0.1, 0.2, 0.3])}))
    write_leaderboards(out)
    mask = os.umask(0)
    os.umask(mask)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".json", ".jsonl", ".npz", ".md", ".csv", ".html",
                                         ".png"}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in files}
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_results_jsonl_grows_by_appending_without_rereading_cells(tmp_path, monkeypatch):
    out = tmp_path / "out"
    results.write_cell(out, row("a", 0))
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])

    def no_reread(*a, **kw):
        raise AssertionError("write_cell re-read every cell")

    for module in (results, results_store):  # the package and where write_cell looks
        monkeypatch.setattr(module, "read_cells", no_reread)
        monkeypatch.setattr(module, "read_cell_files", no_reread)
    (out / "cells" / "a.json").unlink()  # not re-read: its line stays
    results.write_cell(out, row("b", 1))
    ids = [strict_loads(ln)["cell_id"] for ln in (out / "results.jsonl").read_text()
           .splitlines()]
    assert ids == ["a", "b"] and synced  # appended and fsync'd


def test_a_torn_last_line_is_tolerated_and_repaired(tmp_path):
    out = tmp_path / "out"
    results.write_cell(out, row("a", 0))
    with open(out / "results.jsonl", "a") as f:
        f.write('{"cell_id": "torn", "metr')  # killed mid-append
    assert [r["cell_id"] for r in results.read_jsonl(out / "results.jsonl")] == ["a"]
    results.write_cell(out, row("b", 1))
    lines = (out / "results.jsonl").read_text().splitlines()
    assert [strict_loads(ln)["cell_id"] for ln in lines] == ["a", "b"]


SUITE = """
[suite]
name = "rs"
seeds = [0, 1]
bootstrap = 10

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
name = "example-inverse-popularity"
id = "flaky"
fail = true
"""


def test_results_jsonl_equals_the_cells_after_resume_and_reruns(tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q"]) == 1
    assert main(["run", str(suite), "-o", str(out), "-q", "--resume"]) == 1  # reruns 2
    assert main(["run", str(suite), "-o", str(out), "-q",
                 "--set", "suite.seeds=[1, 2]"]) == 1  # archives the others

    def jsonl_ids():
        return sorted(strict_loads(ln)["cell_id"]
                      for ln in (out / "results.jsonl").read_text().splitlines())

    cells = sorted(p.stem for p in (out / "cells").glob("*.json"))
    assert len(cells) == 4 and jsonl_ids() == cells
    assert main(["leaderboard", str(out), "-q"]) == 0
    assert jsonl_ids() == cells
