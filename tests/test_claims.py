"""Suite claims: validation names the key and line; boards judge each claim by a paired
bootstrap over the users both rows saw, which the tests recompute from the stored
per-user values; `recbench leaderboard --suite` adds claims to a finished run."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest

from recbench.cli import main
from recbench.errors import ConfigError
from recbench.leaderboard.claims import _verdict
from recbench.registry import default_registry
from recbench.results import read_cells, read_per_user
from recbench.suite import load_suite
from recbench.uncertainty import paired_bootstrap

SUITE = """
[suite]
name = "cl"
seeds = [0, 1]
bootstrap = 200

[dataset]
name = "tiny"

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc", "popularity@10"]

[[models]]
name = "random"

[[models]]
name = "popularity-oracle"
id = "pop"
"""

CLAIMS = """
[[claims]]
label = "popularity beats random"
model = "pop"
baseline = "random"
metric = "auc"

[[claims]]
label = "random recommends less popular songs (tiny has no popularity figure: a tie)"
model = "random"
baseline = "pop"
metric = "popularity@10"

[[claims]]
label = "random beats popularity (false)"
model = "random"
baseline = "pop"
metric = "auc"
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_suite(write(tmp_path, text), default_registry())
    return info.value


def test_claims_resolve_task_direction_and_bootstrap(tmp_path):
    s = load_suite(write(tmp_path, SUITE + CLAIMS), default_registry())
    assert [(c["model"], c["baseline"], c["expect"]) for c in s.claims] == [
        ("pop", "random", "higher"), ("random", "pop", "lower"), ("random", "pop", "higher")]
    assert all(c["task"] == "recommendation" and c["bootstrap"] == 200
               and c["confidence"] == 0.95 for c in s.claims)


@pytest.mark.parametrize("claim, key, needle", [
    ('model = "popularty"\nbaseline = "random"\nmetric = "auc"', "claims[0].model",
     "names no model"),
    ('model = "pop"\nbaseline = "pop"\nmetric = "auc"', "claims[0].baseline", "the same row"),
    ('model = "pop"\nbaseline = "random"\nmetric = "ndcg@10"', "claims[0].metric",
     "computes no 'ndcg@10'"),
    ('model = "pop"\nbaseline = "random"\nmetric = "auc"\nexpect = "up"', "claims[0].expect",
     "expected one of"),
    ('model = "pop"\nbaseline = "random"\nmetric = "auc"\nsign = 1', "claims[0].sign",
     "unknown key"),
    ('model = "pop"\nmetric = "auc"', "claims[0].baseline", "non-empty string"),
    ('model = "pop"\nbaseline = "random"\nmetric = "auc"\ntask = "tagging"',
     "claims[0].task", "names no task"),
])
def test_bad_claims_name_the_key_and_line(tmp_path, claim, key, needle):
    text = SUITE + '\n[[claims]]\nlabel = "x"\n' + claim + "\n"
    err = error_of(tmp_path, text)
    assert err.key == key and needle in str(err)
    assert err.line is not None and err.line > SUITE.count("\n")


def test_verdicts_follow_the_interval_and_the_expected_side():
    assert _verdict(0.01, 0.02, "higher") == "holds"
    assert _verdict(0.01, 0.02, "lower") == "reversed"
    assert _verdict(-0.02, -0.01, "lower") == "holds"
    assert _verdict(-0.02, -0.01, "higher") == "reversed"
    assert _verdict(-0.01, 0.02, "higher") == "not significant"


def _seed_mean(out: Path, model: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Users and each user's value averaged over seeds, from the stored cells."""
    per_seed = {}
    for row in read_cells(out):
        if row["model"]["id"] == model:
            per_seed[row["seed"]] = read_per_user(out, row["cell_id"])
    users = per_seed[0]["users"]
    assert all(np.array_equal(v["users"], users) for v in per_seed.values())
    return users, np.nanmean(np.stack([v[metric] for v in per_seed.values()]), axis=0)


def test_run_judges_claims_from_the_stored_per_user_values(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, SUITE + CLAIMS)), "-o", str(out), "-q"]) == 0
    board = json.loads((out / "leaderboard.json").read_text())["tasks"]["recommendation"]
    claims = board["claims"]
    assert [c["label"] for c in claims] == ["popularity beats random",
                                            "random recommends less popular songs (tiny "
                                            "has no popularity figure: a tie)",
                                            "random beats popularity (false)"]
    for c in claims:
        _, a = _seed_mean(out, c["model"], c["metric"])
        _, b = _seed_mean(out, c["baseline"], c["metric"])
        keep = ~(np.isnan(a) | np.isnan(b))
        want = paired_bootstrap(a[keep], b[keep], n_resamples=200, seed=0)
        assert c["diff"] == pytest.approx(float(np.mean(a[keep] - b[keep])), abs=1e-12)
        assert (c["low"], c["high"]) == pytest.approx((want["low"], want["high"]))
        assert c["n_users"] == int(keep.sum()) and c["seeds"] == [0, 1]
    # popularity counted on the test songs' own plays (the oracle) ranks them far better
    # than random: the first claim holds, the third is reversed; popularity@10 is 0 for
    # every user of both rows (an exact tie), so the second is not significant.
    assert [c["verdict"] for c in claims] == ["holds", "not significant", "reversed"]
    assert claims[1]["diff"] == 0.0 and claims[0]["diff"] == -claims[2]["diff"] > 0
    md = (out / "leaderboard.md").read_text()
    assert "**Claims.**" in md and "| popularity beats random" in md and "reversed" in md
    assert "<h3>Claims</h3>" in (out / "leaderboard.html").read_text()


def test_leaderboard_suite_adds_claims_to_a_finished_run(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, SUITE)), "-o", str(out), "-q"]) == 0
    board = json.loads((out / "leaderboard.json").read_text())["tasks"]["recommendation"]
    assert "claims" not in board
    before = {p.name: p.read_bytes() for p in (out / "cells").iterdir()}
    claims = write(tmp_path, SUITE + CLAIMS, "claims.toml")
    assert main(["leaderboard", str(out), "--suite", str(claims)]) == 0
    board = json.loads((out / "leaderboard.json").read_text())["tasks"]["recommendation"]
    assert [c["verdict"] for c in board["claims"]] == ["holds", "not significant", "reversed"]
    assert {p.name: p.read_bytes() for p in (out / "cells").iterdir()} == before
    # the claims are saved with the folder's settings: a plain re-render keeps them
    assert main(["leaderboard", str(out)]) == 0
    board = json.loads((out / "leaderboard.json").read_text())["tasks"]["recommendation"]
    assert len(board["claims"]) == 3
    # a suite that did not write the folder is refused in one line
    other = write(tmp_path, SUITE.replace('name = "cl"', 'name = "other"') + CLAIMS, "o.toml")
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--suite", str(other)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did not write" in err[0]


def test_a_claim_on_a_row_that_did_not_run_is_not_judged(tmp_path):
    from recbench.leaderboard.board import build_from_folder

    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, SUITE)), "-o", str(out), "-q"]) == 0
    claim = {"label": "x", "task": "recommendation", "model": "pop", "baseline": "gone",
             "metric": "auc", "expect": "higher", "bootstrap": 50, "confidence": 0.9}
    lb, meta = build_from_folder(out, references=[], claims=[claim])
    (c,) = lb["tasks"]["recommendation"]["claims"]
    assert c["verdict"] == "not judged" and "gone" in c["note"] and c["diff"] is None
    assert meta["claims"] == [claim]


def test_a_task_own_column_needs_expect_and_is_judged_only_where_the_board_has_it(tmp_path):
    from recbench.leaderboard.board import build_from_folder

    own = '\n[[claims]]\nlabel = "x"\nmodel = "pop"\nbaseline = "random"\nmetric = "skip@10"\n'
    err = error_of(tmp_path, SUITE + own)
    assert err.key == "claims[0].metric" and "needs `expect`" in str(err)
    s = load_suite(write(tmp_path, SUITE + own + 'expect = "lower"\n', "own.toml"),
                   default_registry())
    assert s.claims[0]["expect"] == "lower"
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, SUITE)), "-o", str(out), "-q"]) == 0
    lb, _ = build_from_folder(out, references=[], claims=s.claims)
    (c,) = lb["tasks"]["recommendation"]["claims"]
    assert c["verdict"] == "not judged" and "no column 'skip@10'" in c["note"]


def test_paired_change_matches_units_by_id_across_seeds():
    """Seeds may evaluate different units (new songs of each seed's split, each seed's
    artist groups): units are matched by id, each averaged over the seeds that evaluated
    it (NaN skipped), in order of first appearance; with the same users on every seed
    this is the per-user mean over seeds."""
    import numpy as np

    from recbench.leaderboard.compare import paired_change
    from recbench.metrics.uncertainty import paired_bootstrap

    cand = {0: {"users": np.array([5, 2, 9]), "auc": np.array([0.9, 0.6, 0.7])},
            1: {"users": np.array([9, 4]), "auc": np.array([0.5, np.nan])}}
    base = {0: {"users": np.array([5, 2, 9]), "auc": np.array([0.8, 0.7, 0.4])},
            1: {"users": np.array([9, 4]), "auc": np.array([0.6, 0.3])}}
    got = paired_change(cand, base, "auc", n_resamples=200)
    # units 5, 2, 9, 4: 9 averaged over both seeds; 4 is NaN for the candidate: dropped
    want = paired_bootstrap(np.array([0.9, 0.6, 0.6]), np.array([0.8, 0.7, 0.5]),
                            n_resamples=200, seed=0)
    assert got["n_users"] == 3 and got["seeds"] == [0, 1]
    for k in ("diff", "low", "high", "p_value"):
        assert got[k] == pytest.approx(want[k])
    same = {s: {"users": np.array([1, 2]), "auc": np.array([0.1 * s, 0.5])} for s in (1, 2, 3)}
    zero = {s: {"users": np.array([1, 2]), "auc": np.array([0.0, 0.0])} for s in (1, 2, 3)}
    assert paired_change(same, zero, "auc", n_resamples=50)["diff"] == pytest.approx(
        np.mean([0.2, 0.5]))


def test_claims_name_their_unit_from_the_column():
    """A claim on a column whose intervals are over songs (or genres) says so: the unit is
    recorded and shown beside the count, and the caption speaks of units, not users."""
    from recbench.leaderboard.claims import claims_context

    def board(unit):
        return {"metric_info": {"auc": {"ci_over": unit}}, "columns": ["auc"],
                "rows": [], "claims": [
                    {"label": "a beats b", "model": "a", "baseline": "b", "metric": "auc",
                     "expect": "higher", "diff": 0.1, "low": 0.05, "high": 0.15,
                     "p_value": 0.001, "n_users": 200, "seeds": [0, 1], "level": 0.95,
                     "verdict": "holds", "note": "", "unit": unit}]}
    songs = claims_context(board("songs"))
    assert songs["rows"][0][8] == "200 songs" and "units (songs)" in songs["caption"]
    users = claims_context(board("users"))
    assert users["rows"][0][8] == "200" and "over the users" in users["caption"]
    from recbench.leaderboard.claims import _unit
    assert _unit(board("genres"), "auc") == "genres" and _unit({}, "auc") == "users"
    paired = board("groups")
    paired["metric_info"]["auc"]["paired_over"] = "genres"
    assert _unit(paired, "auc") == "genres"
