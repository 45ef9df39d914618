"""Acceptance for issue 9 item 8: a plugin author needs only the README.

The README's "Writing a plugin" section holds one plugin module, `my_plugin.py` (every
```python block whose first line is ``# my_plugin.py``, concatenated in order), its
`pyproject.toml` and a suite, `my_suite.toml`. This test takes them verbatim,
`pip install`s the package (offline, into a temporary folder put on PYTHONPATH), checks
each component against its `recbench.testing` contract class and runs the suite in a
fresh process. It fails when any example breaks.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("recommender", "backbone", "loss", "sampler", "dataset", "split", "metric",
         "executor", "task")


def readme_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block of the README's "Writing a plugin" section
    (up to its "Testing your plugin" subsection)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Writing a plugin\n"):text.index("\n### Testing your plugin\n")]
    return re.findall(r"^```(\w+)\n(.*?)^```$", section, flags=re.S | re.M)


def documented(marker: str, lang: str) -> list[str]:
    return [body for lg, body in readme_blocks() if lg == lang
            and body.splitlines()[0].strip() == f"# {marker}"]


def build_package(where: Path) -> dict:
    """Write my_plugin.py and pyproject.toml into a source folder and `pip install` it
    (offline: no dependencies, no build isolation) into `where`; return its [project]."""
    src = where.parent / f"{where.name}-src"
    src.mkdir()
    module = "\n\n".join(documented("my_plugin.py", "python"))
    (src / "my_plugin.py").write_text(module, encoding="utf-8")
    (pyproject_text,) = documented("pyproject.toml", "toml")
    (src / "pyproject.toml").write_text(pyproject_text, encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--no-build-isolation", "--no-index", "--target", str(where),
                          str(src)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return tomllib.loads(pyproject_text)["project"]


def _env(where: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(where)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", None)
    return env


def test_readme_documents_one_example_per_kind():
    module = "\n".join(documented("my_plugin.py", "python"))
    from recbench.hookspecs import HOOKS

    assert set(HOOKS) == set(KINDS)
    for kind in KINDS:
        hook = f"def {HOOKS[kind]}(register)"
        assert hook in module, f"README: no example registers a {kind}"
    assert len(documented("pyproject.toml", "toml")) == 1
    assert len(documented("my_suite.toml", "toml")) == 1


def test_readme_plugin_installs_lists_and_runs_in_a_suite(tmp_path):
    pkg = tmp_path / "site"
    project = build_package(pkg)
    env = _env(pkg)

    listed = subprocess.run([sys.executable, "-m", "recbench", "list", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "FAILED" not in listed.stderr, listed.stderr
    ours = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)
            if r["provider"] == f"{project['name']} {project['version']}"}
    assert sorted(k for k, _ in ours) == sorted(KINDS), ours.keys()
    assert ours[("metric", "hit-rate")]["needs_k"] is True
    assert ours[("recommender", "mel-profile")]["consumes"] == ["interactions", "audio"]

    (suite_text,) = documented("my_suite.toml", "toml")
    suite = tmp_path / "my_suite.toml"
    suite.write_text(suite_text, encoding="utf-8")
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "recbench", "run", str(suite), "-o", str(out),
                          "--cache-dir", str(tmp_path / "cache"), "-q"],
                         env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {r["model"]["name"]: r for r in map(json.loads, (out / "results.jsonl")
                                                .read_text().splitlines())}
    assert set(rows) == {"mel-profile", "dcue"}
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row.get("error"))
        assert row["task"] == "holdout" and row["dataset"]["name"] == "toy-audio"
        assert row["split"]["name"] == "cold-songs" and row["protocol"] == "cold-item"
        assert row["dataset"]["synthetic"] is True
        for column in ("auc", "hit-rate@3"):
            value = row["metrics"][column]
            assert value is not None and 0.0 <= value <= 1.0 and not math.isnan(value)
            low, high = row["metrics_ci"][column]
            assert low <= value + 1e-9 and value - 1e-9 <= high, (name, column)
        assert row["metric_info"]["hit-rate@3"]["higher_is_better"] is True
        assert row["metric_info"]["auc"]["n_users"] > 10
    dcue = rows["dcue"]["model"]["params"]
    assert (dcue["backbone"], dcue["loss"], dcue["sampler"]) == (
        "mean-pool", "logistic", "power-popularity")
    # the toy data's audio carries the users' taste: the content model finds it
    assert rows["mel-profile"]["metrics"]["auc"] > 0.6
    assert rows["mel-profile"]["model"]["consumes"] == ["interactions", "audio"]
    assert rows["mel-profile"]["metrics"]["hit-rate@3"] < 1.0  # not saturated: it measures


def test_readme_metric_is_the_expectation_over_tie_orders(tmp_path, monkeypatch):
    """The README's @K metric, on ties, equals brute force over every order of the tied
    songs; excluded songs are not candidates; users without a positive get NaN."""
    import itertools

    import numpy as np

    from recbench.components import MetricInput

    build_package(tmp_path / "site")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "my_plugin", raising=False)
    import my_plugin

    scores = np.array([[3.0, 1.0, 1.0, 1.0, 1.0, 0.0],
                       [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
                       [5.0, 4.0, 3.0, 2.0, 1.0, 0.0],
                       [1.0, 1.0, 1.0, 1.0, 1.0, 1.0]])
    labels = np.array([[0, 0, 1, 1, 0, 1], [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 1],
                       [0, 0, 0, 0, 0, 0]], dtype=bool)
    mask = np.ones_like(labels)
    mask[2, 0] = False  # user 2 already has song 0: not a candidate
    block = MetricInput(scores=scores, labels=labels, mask=mask, k=3)
    got = my_plugin.HitRate().per_user(block)

    def brute(s, y, k):
        hits = []
        for perm in itertools.permutations(range(len(s))):
            order = sorted(perm, key=lambda i: -s[i])  # stable: ties in `perm` order
            hits.append(float(y[order[:k]].any()))
        return np.mean(hits)

    for u in range(3):
        keep = mask[u]
        assert got[u] == pytest.approx(brute(scores[u][keep], labels[u][keep], 3)), u
    assert math.isnan(got[3])


CONTRACTS = """
import my_plugin as m
from recbench import testing as t

class TestRecommender(t.RecommenderContract):
    component = m.MelProfile
    min_auc = 0.6
class TestBackbone(t.BackboneContract):
    component = m.MeanPool
class TestLoss(t.LossContract):
    component = m.Logistic
class TestSampler(t.SamplerContract):
    component = m.PowerPopularity
class TestDataset(t.DatasetLoaderContract):
    component = m.ToyAudio
class TestSplit(t.SplitterContract):
    component = m.ColdSongs
class TestMetric(t.MetricContract):
    component = m.HitRate
class TestExecutor(t.ExecutorContract):
    component = m.Serial
class TestTask(t.TaskContract):
    component = m.Holdout
"""


def test_readme_examples_pass_the_contract_tests(tmp_path):
    """Each README example passes its kind's contract class of `recbench.testing`, as the
    README's "Testing your plugin" tells an author to check."""
    build_package(tmp_path / "site")
    (tmp_path / "test_contracts.py").write_text(CONTRACTS, encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path / "test_contracts.py")], cwd=tmp_path,
                         env=_env(tmp_path / "site"),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:]
    passed = re.search(r"(\d+) passed", res.stdout)
    assert passed and int(passed.group(1)) >= 40, res.stdout[-2000:]
