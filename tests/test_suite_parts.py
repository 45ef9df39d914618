"""Suites in parts (recbench.suite.parts): `[suite] parts` runs other suite files into
OUT/parts/<name>/ with their own cell ids, `--set PART:KEY=VALUE` reaches one part only,
the suite's leaderboard ends with the parts' boards, and every misuse is one named line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from recbench.cli import main
from recbench.errors import ConfigError
from recbench.registry import default_registry
from recbench.suite import load_suite

BASE = """
[suite]
name = "{name}"
seeds = [0]
bootstrap = 20
{parts}

[dataset]
name = "tiny"

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "{model}"
"""


def write(path: Path, name: str, model: str = "popularity", parts: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(BASE.format(name=name, model=model, parts=parts)))
    return path


@pytest.fixture()
def whole(tmp_path) -> Path:
    write(tmp_path / "p1.toml", "one", "random")
    write(tmp_path / "sub" / "p2.toml", "two", "random")
    return write(tmp_path / "main.toml", "whole",
                 parts='parts = ["p1.toml", "sub/p2.toml"]')


def cell_ids(folder: Path) -> set[str]:
    return {p.stem for p in (folder / "cells").glob("*.json")}


def test_parts_load_relative_to_the_suite_and_overrides_reach_only_their_part(whole):
    suite = load_suite(whole, default_registry(),
                       ["suite.seeds=[3]", "one:suite.seeds=[0, 1]", "*:suite.bootstrap=7"])
    assert [p.name for p in suite.parts] == ["one", "two"]
    assert suite.parts[1].path == str(whole.parent / "sub" / "p2.toml")
    assert suite.seeds == [3] and suite.bootstrap == 20  # unprefixed: the suite only
    assert suite.parts[0].seeds == [0, 1] and suite.parts[1].seeds == [0]
    assert [p.bootstrap for p in suite.parts] == [7, 7]  # '*': every part


@pytest.mark.parametrize("override, message", [
    ("three:suite.seeds=[1]", "no part named 'three' (parts: one, two)"),
    ("whole:suite.seeds=[1]", "'whole' is the suite itself"),
    ("one:two:suite.seeds=[1]", "one PART: prefix only"),
])
def test_a_misaddressed_override_is_one_line(whole, override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_suite(whole, default_registry(), [override])


def test_a_missing_part_names_the_entry_and_line(tmp_path):
    s = write(tmp_path / "main.toml", "whole", parts='parts = ["gone.toml"]')
    with pytest.raises(ConfigError) as exc:
        load_suite(s, default_registry())
    assert exc.value.key == "suite.parts[0]" and exc.value.line == 6  # BASE: a blank first line
    assert "'gone.toml' not found" in str(exc.value)


def test_a_part_with_parts_and_a_repeated_name_are_refused(tmp_path):
    write(tmp_path / "leaf.toml", "leaf")
    write(tmp_path / "mid.toml", "mid", parts='parts = ["leaf.toml"]')
    s = write(tmp_path / "main.toml", "whole", parts='parts = ["mid.toml"]')
    with pytest.raises(ConfigError, match="a part cannot have parts") as exc:
        load_suite(s, default_registry())
    assert exc.value.file == str(tmp_path / "mid.toml")
    write(tmp_path / "same.toml", "whole")
    s = write(tmp_path / "main.toml", "whole", parts='parts = ["same.toml"]')
    with pytest.raises(ConfigError, match="named 'whole', as this suite is"):
        load_suite(s, default_registry())
    s = write(tmp_path / "main.toml", "whole", parts='parts = ["leaf.toml", "leaf.toml"]')
    with pytest.raises(ConfigError, match="as another part is"):
        load_suite(s, default_registry())


def test_run_writes_each_part_as_its_own_run_would_and_one_board(whole, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(whole), "-o", str(out), "-q"]) == 0
    # a part's cells are those of the part run on its own: same ids, same values
    alone = tmp_path / "alone"
    assert main(["run", str(tmp_path / "p1.toml"), "-o", str(alone), "-q"]) == 0
    assert cell_ids(out / "parts" / "one") == cell_ids(alone) != set()
    (cid,) = cell_ids(alone)
    a, b = (json.loads((f / "cells" / f"{cid}.json").read_text())
            for f in (alone, out / "parts" / "one"))
    assert a["metrics"] == b["metrics"]
    assert cell_ids(out) and not cell_ids(out) & cell_ids(out / "parts" / "one")
    md = (out / "leaderboard.md").read_text()
    assert "their boards follow this suite's: `one`, `two`" in md
    assert md.index("# Part one (`parts/one/`)") < md.index("# Part two (`parts/two/`)")
    part = (out / "parts" / "two" / "leaderboard.md").read_text()
    assert part.split("\n", 1)[1].strip() in md  # the part's board, title dropped
    lb = json.loads((out / "leaderboard.json").read_text())
    assert lb["parts"] == [{"name": "one", "folder": "parts/one"},
                           {"name": "two", "folder": "parts/two"}]
    html = (out / "leaderboard.html").read_text()
    assert '<a href="parts/one/leaderboard.html">one</a>' in html
    capsys.readouterr()
    # --resume skips every cell of the suite and of its parts
    assert main(["run", str(whole), "-o", str(out), "-q", "--resume"]) == 0
    assert "0 cells run, 3 skipped" in capsys.readouterr().err


def test_leaderboard_rerenders_the_parts_from_saved_settings_or_the_suite(whole, tmp_path,
                                                                         capsys):
    out = tmp_path / "out"
    assert main(["run", str(whole), "-o", str(out), "-q"]) == 0
    board = out / "parts" / "one" / "leaderboard.md"
    board.write_text("# Leaderboard: one\n\nstale\n")
    assert main(["leaderboard", str(out)]) == 0
    md = (out / "leaderboard.md").read_text()
    assert "stale" not in md and "random" in md.split("# Part one")[1]
    board.write_text("# Leaderboard: one\n\nstale\n")
    assert main(["leaderboard", str(out), "--suite", str(whole)]) == 0
    assert "stale" not in (out / "leaderboard.md").read_text()
    # a part not run yet is one line on the board, not an error
    (whole.parent / "p3.toml").write_text((whole.parent / "p1.toml").read_text()
                                          .replace('"one"', '"three"'))
    whole.write_text(whole.read_text().replace('"sub/p2.toml"]', '"sub/p2.toml", "p3.toml"]'))
    capsys.readouterr()
    assert main(["leaderboard", str(out), "--suite", str(whole)]) == 0
    assert "Not run yet: no `parts/three/leaderboard.md`" in capsys.readouterr().out


def test_validate_lists_each_part(whole, capsys):
    assert main(["validate", str(whole)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[1].startswith("  part one (") and "1 cells" in lines[2]


def test_an_interrupt_stops_before_the_next_part(whole, tmp_path, monkeypatch):
    from recbench.run import runner

    ran = []

    def fake_run_suite(suite, out, **kw):
        ran.append(suite.name)
        return runner.RunSummary(ran=1, interrupted=suite.name == "one")

    monkeypatch.setattr(runner, "run_suite", fake_run_suite)
    assert main(["run", str(whole), "-o", str(tmp_path / "out"), "-q"]) == 130
    assert ran == ["whole", "one"]  # part "two" never started


def test_compare_judges_every_part_and_a_missing_one_regresses(whole, tmp_path, capsys):
    import shutil

    base, cand = tmp_path / "base", tmp_path / "cand"
    assert main(["run", str(whole), "-o", str(base), "-q"]) == 0
    shutil.copytree(base, cand)
    capsys.readouterr()
    assert main(["compare", str(cand), "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "## part one" in out and "## part two" in out and "REGRESSED" not in out
    # leaderboard.json sides find their parts through the file's "parts" entries
    assert main(["compare", str(cand / "leaderboard.json"), "--baseline",
                 str(base / "leaderboard.json")]) == 0
    assert "## part two" in capsys.readouterr().out
    # a part's model gone: that part's table says so and the gate fails
    worse = tmp_path / "worse"
    assert main(["run", str(whole), "-o", str(worse), "-q",
                 "--set", "two:models[0].name=popularity"]) == 0
    capsys.readouterr()
    assert main(["compare", str(worse), "--baseline", str(base)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED" not in out.split("## part two")[0]
    assert "REGRESSED" in out.split("## part two")[1]
    # a part the candidate lacks regresses
    shutil.rmtree(cand / "parts" / "one")
    assert main(["compare", str(cand), "--baseline", str(base)]) == 1
    assert "part missing from the candidate" in capsys.readouterr().out
