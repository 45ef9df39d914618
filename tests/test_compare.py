"""`recbench compare`: tolerance validation, a relative tolerance, the metric direction
never taken from a default, NaN and missing values alike, fewer seeds flagged, and run
folders left untouched."""

from __future__ import annotations

import copy
import json
import textwrap

import pytest

from recbench.cli import main
from recbench.compare import compare


def board(metric: str, mean, *, info=None, seeds=(0, 1, 2), ci=None) -> dict:
    """A minimal leaderboard.json with one model and one metric."""
    return {"suite": "s", "schema": 1, "tasks": {"recommendation": {
        "task": "recommendation", "primary_metric": metric, "columns": [metric],
        "metric_info": {metric: info} if info is not None else {},
        "dataset": {"fingerprint": "d"}, "split": {"fingerprint": "s"},
        "rows": [{"model_id": "m", "label": "m", "section": "cold-start",
                  "seeds": list(seeds),
                  "metrics": {metric: {"mean": mean, "ci": ci, "n_seeds": len(seeds)}}}],
        "failed": []}}}


def write(tmp_path, name, lb) -> str:
    p = tmp_path / name
    p.write_text(json.dumps(lb))
    return str(p)


def gate(tmp_path, cand, base, *extra) -> int:
    return main(["compare", write(tmp_path, "cand.json", cand), "--baseline",
                 write(tmp_path, "base.json", base), *extra])


@pytest.mark.parametrize("value", ["nan", "-0.1", "inf", "-inf"])
@pytest.mark.parametrize("flag", ["--tolerance", "--rel-tolerance"])
def test_tolerance_rejects_nan_negative_and_infinite(tmp_path, capsys, flag, value):
    lb = board("auc", 0.8)
    with pytest.raises(SystemExit) as exc:
        gate(tmp_path, lb, lb, f"{flag}={value}")
    assert exc.value.code == 2
    assert "finite number >= 0" in capsys.readouterr().err


def test_relative_tolerance_for_metrics_on_other_scales(tmp_path, capsys):
    # popularity@10 is in listeners (lower is better): +4 listeners on 100 is 4%.
    base = board("popularity@10", 100.0, info={"higher_is_better": False})
    cand = board("popularity@10", 104.0, info={"higher_is_better": False})
    assert gate(tmp_path, cand, base) == 1  # absolute 0.01 listeners: regressed
    assert gate(tmp_path, cand, base, "--rel-tolerance", "0.05") == 0
    assert gate(tmp_path, cand, base, "--rel-tolerance", "0.03") == 1


@pytest.mark.parametrize("cand_info, base_info", [
    ({}, {}),  # empty entries on both sides: the registry says lower is better
    ({}, {"higher_is_better": False}),  # only the baseline declares it
    ({"higher_is_better": False}, {}),  # only the candidate declares it
])
def test_direction_comes_from_a_side_or_the_registry_never_a_default(cand_info, base_info):
    base = board("popularity@10", 100.0, info=base_info)
    cand = board("popularity@10", 150.0, info=cand_info)  # popularity rose: worse
    changes, _ = compare(cand, base)
    assert len(changes) == 1 and changes[0].regressed


def test_unknown_or_disputed_direction_regresses_and_says_why():
    changes, _ = compare(board("mystery", 0.9, info={}), board("mystery", 0.8, info={}))
    assert changes[0].regressed and "direction unknown" in changes[0].note
    changes, _ = compare(board("auc", 0.9, info={"higher_is_better": True}),
                         board("auc", 0.8, info={"higher_is_better": False}))
    assert changes[0].regressed and "direction differs" in changes[0].note


@pytest.mark.parametrize("value", [float("nan"), None, "absent"])
def test_nan_and_missing_candidate_values_are_alike_and_named(value):
    base = board("auc", 0.8, info={"higher_is_better": True})
    cand = copy.deepcopy(base)
    metrics = cand["tasks"]["recommendation"]["rows"][0]["metrics"]
    if value == "absent":
        del metrics["auc"]
    else:
        metrics["auc"]["mean"] = value
    (ch,) = compare(cand, base)[0]
    assert ch.regressed and ch.candidate is None
    assert "no value in candidate (missing, null or NaN)" in ch.note
    if value != "absent":  # a NaN baseline is named, not silently compared
        (ch,) = compare(base, cand)[0]
        assert not ch.regressed and "no value in baseline" in ch.note


def test_a_model_on_fewer_seeds_than_its_baseline_is_flagged():
    base = board("auc", 0.8, info={"higher_is_better": True}, seeds=(0, 1, 2))
    cand = board("auc", 0.8, info={"higher_is_better": True}, seeds=(0,))
    (ch,) = compare(cand, base)[0]
    assert ch.regressed and "candidate has 1 seed(s), baseline 3" in ch.note
    (ch,) = compare(base, cand)[0]  # more seeds than the baseline: fine
    assert not ch.regressed


SUITE = """
[suite]
name = "cmp"
seeds = [0]
bootstrap = 20

[dataset]
name = "tiny"

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "popularity"
"""


def test_compare_does_not_write_into_the_folders_it_compares(tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q"]) == 0
    for p in out.glob("leaderboard*"):
        p.unlink()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*")
              if p.is_file()}
    assert main(["compare", str(out), "--baseline", str(out)]) == 0
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.rglob("*")
             if p.is_file()}
    assert after == before


TAGGING_SUITE = """
[suite]
name = "tagcmp"
seeds = [0]
bootstrap = 20

[dataset]
name = "synth-msd"
preset = "tiny"

[split]
name = "cold-item"

[[tasks]]
name = "tagging"
max_epochs = 3

[[models]]
name = "content-profile"
"""


def test_a_run_with_tagging_passes_the_gate_against_itself(tmp_path, capsys):
    """Every metric a built-in task reports declares its direction, so the CI gate never
    fails a run against itself ("direction unknown" made tag_auc_macro REGRESSED)."""
    suite = tmp_path / "s.toml"
    suite.write_text(textwrap.dedent(TAGGING_SUITE))
    out = tmp_path / "out"
    assert main(["run", str(suite), "-o", str(out), "-q"]) == 0
    row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert row["metric_info"]["tag_auc_macro"]["higher_is_better"] is True
    capsys.readouterr()
    assert main(["compare", str(out), "--baseline", str(out / "leaderboard.json"),
                 "--tolerance", "0", "--metric", "tag_auc_macro"]) == 0, capsys.readouterr().out
