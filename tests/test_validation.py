"""Issue 10: everything that could fail a cell later is refused by `validate` first, with
one line (`recbench: error: FILE:LINE: key.path: ...`) and exit 2, never a traceback; suite
names stay inside results/; values from the environment stay out of result rows."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from recbench import hookimpl
from recbench import registry as reg
from recbench.cli import main
from recbench.components import Recommender
from recbench.errors import ConfigError
from recbench.params import Param
from recbench.registry import default_registry
from recbench.suite import load_suite, validate_raw

GOOD = """\
[suite]
name = "t"
seeds = [0]

[dataset]
name = "tiny"

[split]
name = "cold-item"
seed = 0

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "random"
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def line_of(text, needle):
    return next(i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln)


def validate(capsys, path, *extra):
    """`recbench validate` in-process: (exit code, stderr). Never a traceback."""
    code = main(["validate", str(path), *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def one_error(capsys, path, *extra):
    code, err = validate(capsys, path, *extra)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("recbench: error: ")
    return lines[0]


# --------------------------------------------------------------------------- item 3


@pytest.mark.parametrize("section, key, value", [
    ("split", "test_share", "nan"),     # nan passes min/max comparisons
    ("features", "window_s", "inf"),    # only a lower bound declared
    ("features", "power", "inf"),
])
def test_non_finite_floats_are_refused_with_line(tmp_path, capsys, section, key, value):
    if section == "split":
        text = GOOD.replace("seed = 0", f"seed = 0\n{key} = {value}")
    else:
        text = GOOD.replace("[[tasks]]", f"[{section}]\n{key} = {value}\n\n[[tasks]]")
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, f'{key} = {value}')}: {section}.{key}: " in msg
    assert "finite" in msg


def test_non_finite_reference_value_is_refused(tmp_path, capsys):
    text = GOOD + '\n[[references]]\ntask = "recommendation"\nlabel = "paper"\nauc = nan\n'
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, 'auc = nan')}: references[0].auc: " in msg


@pytest.mark.parametrize("old, new, key", [
    ("seeds = [0]", "seeds = [0, -1]", "suite.seeds"),
    ("seed = 0", "seed = -3", "split.seed"),
])
def test_negative_seeds_are_refused(tmp_path, capsys, old, new, key):
    text = GOOD.replace(old, new)
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, new)}: {key}: " in msg and ">= 0" in msg


def test_shares_summing_over_one_name_file_line_and_key(tmp_path, capsys):
    """The split plugin's own check used to come out as `split.cold-item.test_share`,
    without file or line."""
    text = GOOD.replace("seed = 0", "seed = 0\nvalid_share = 0.5\ntest_share = 0.6")
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, 'test_share')}: split.test_share: " in msg
    assert "must be < 1" in msg


@pytest.mark.parametrize("option, message", [
    ('loss = "hinj"', "models[0].loss: unknown loss 'hinj'. Did you mean: hinge"),
    ('sampler = "unifrom"', "models[0].sampler: unknown sampler 'unifrom'. Did you mean: "
                            "uniform"),
    ('backbone = "conv1"', "models[0].backbone: unknown backbone 'conv1'"),
    ('loss_params = {margn = 0.1}', "models[0].loss_params.margn: unknown parameter. "
                                    "Did you mean: margin"),
    ('loss_params = {margin = -1.0}', "models[0].loss_params.margin: must be >= 0"),
    ('sampler_params = {bogus = 1}', "models[0].sampler_params.bogus: unknown parameter"),
    ('backbone_params = {channels = [32, "x"]}', "models[0].backbone_params.channels: item 1"),
])
def test_nested_plugin_names_and_params_are_validated(tmp_path, capsys, option, message):
    """DCUE creates its loss / sampler / backbone only at fit time: a typo used to fail
    every DCUE cell after the data was loaded."""
    text = GOOD.replace('name = "random"', f'name = "dcue"\n{option}')
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, option)}: {message}" in msg


@pytest.fixture
def widths_registry():
    """A registry with one recommender declaring bounded list elements."""
    class Widths(Recommender):
        name = "widths-test"
        params = (Param("hidden", list, [8], item_type=int, min=1),
                  Param("rates", list, [0.5], item_type=float, min=0.0))

        def fit(self, ctx):
            pass

        def score(self, users, songs):
            return np.zeros((len(users), len(songs)))

    plugin = type("P", (), {"recbench_register_recommenders": staticmethod(
        hookimpl(lambda register: register(Widths)))})()
    r = reg.build_registry([plugin])
    assert not r.failures
    return r


@pytest.mark.parametrize("option, message", [
    ("hidden = [16, -4]", "models[0].hidden: item 1 must be >= 1, got -4"),
    ("rates = [0.1, nan]", "models[0].rates: item 1 must be a finite number"),
])
def test_list_elements_are_bounded(tmp_path, widths_registry, option, message):
    """A declared `min` applies to each element of a list (it used to raise TypeError:
    list < int, a traceback), e.g. layer widths that must be positive."""
    text = GOOD.replace('name = "random"', f'name = "widths-test"\n{option}')
    with pytest.raises(ConfigError) as info:
        load_suite(write(tmp_path, text), widths_registry)
    assert f"s.toml:{line_of(text, option)}: {message}" in str(info.value)


def test_exclusive_lower_bound():
    """`gt` refuses the bound itself (e.g. a held-out share that must not be 0)."""
    share = Param("test_share", float, 0.2, gt=0.0, max=0.9)
    assert share.check(0.1, "split.test_share") == 0.1
    with pytest.raises(ConfigError, match=r"split.test_share: must be > 0.0, got 0.0"):
        share.check(0, "split.test_share")


def test_task_needing_tags_on_a_dataset_without_tags(tmp_path, capsys):
    text = GOOD.replace('[[models]]', '[[tasks]]\nname = "tagging"\n\n[[models]]')
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, 'tagging')}: tasks[1].name: task 'tagging' needs tags" in msg
    assert "'tiny' does not provide" in msg


def test_reference_naming_an_unknown_task(tmp_path, capsys):
    text = GOOD + '\n[[references]]\ntask = "recomendation"\nlabel = "paper"\nauc = 0.79\n'
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, 'recomendation')}: references[0].task: " in msg
    assert "Did you mean: recommendation" in msg


@pytest.mark.parametrize("option", [["--limit", "0"], ["--workers", "0"], ["--threads", "0"],
                                    ["--limit", "-2"]])
def test_zero_limit_or_workers_are_usage_errors(tmp_path, capsys, option):
    """`--limit 0` used to run on no data and `--workers 0` was silently ignored."""
    p = write(tmp_path, GOOD)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as info:
        main(["run", str(p), "-o", str(out), "-q", *option])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option[0]}:" in err and "Traceback" not in err
    assert not out.exists()


# --------------------------------------------------------------------------- item 4


@pytest.mark.parametrize("data, expected", [
    (b"\xef\xbb\xbf" + GOOD.encode(), "s.toml:1: the file starts with a UTF-8 byte-order mark"),
    (GOOD.encode() + b'\n# caf\xe9 latin-1\n', f"s.toml:{GOOD.count(chr(10)) + 2}: not valid "
                                                 f"UTF-8 (byte 0xe9"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "s.toml: not a text file"),
    (b"\xff\xfe[\x00s\x00", "s.toml:1: the file is UTF-16 encoded"),
])
def test_undecodable_or_binary_suite_files(tmp_path, capsys, data, expected):
    p = tmp_path / "s.toml"
    p.write_bytes(data)
    msg = one_error(capsys, p)
    assert expected in msg


@pytest.mark.parametrize("override, message", [
    ("suite.name.x=1", "suite.name is a str value, not a table or list"),
    ("suite[0]=1", "suite is a table, not a list"),
    ("models[0]x.lr=1", "malformed key path 'models[0]x.lr'"),
    ("models..lr=1", "malformed key path"),
    ("dataset.users]=3", "malformed key path"),
    ("suite.seeds.x=1", "suite.seeds is a list"),
])
def test_malformed_set_paths(tmp_path, capsys, override, message):
    msg = one_error(capsys, write(tmp_path, GOOD), "--set", override)
    assert message in msg


def test_set_may_replace_one_list_element(tmp_path):
    s = load_suite(write(tmp_path, GOOD.replace("seeds = [0]", "seeds = [0, 1]")),
                   default_registry(), ["suite.seeds[1]=5"])
    assert s.seeds == [0, 5]


# --------------------------------------------------------------------------- item 6


@pytest.mark.parametrize("name", [".", ".."])
def test_suite_names_resolving_outside_results_are_refused(tmp_path, capsys, name):
    text = GOOD.replace('name = "t"', f'name = "{name}"')
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:2: suite.name: '{name}' names no folder inside results/" in msg


def test_file_stem_dot_is_refused_too(tmp_path, capsys):
    p = write(tmp_path, GOOD.replace('name = "t"\n', ""), name="..toml")
    msg = one_error(capsys, p)
    assert "suite.name: '.' names no folder inside results/" in msg


def test_env_values_are_recorded_as_variable_names(tmp_path, monkeypatch):
    """The spec's record view shows `${VAR}` for values from the environment (defaults
    used are recorded as expanded); it survives the worker's re-validation of Suite.raw;
    the cell id still hashes the expanded value."""
    monkeypatch.setenv("RB_SECRET_SHARE", "0.25")
    monkeypatch.delenv("RB_UNSET_X", raising=False)
    text = GOOD.replace('[[models]]\nname = "random"',
                        '[[models]]\nname = "dcue"\noptimizer = "${RB_OPT_UNSET:-adam}"\n'
                        'loss_params = {negatives = "${RB_SECRET_NEG}"}')
    monkeypatch.setenv("RB_SECRET_NEG", "mean")
    s = load_suite(write(tmp_path, text), default_registry())
    model = s.models[0]
    assert model.options["loss_params"] == {"negatives": "mean"}
    assert model.record_options["loss_params"] == {"negatives": "${RB_SECRET_NEG}"}
    assert model.record_options["optimizer"] == "adam"  # the default was used
    assert s.dataset.record_options == s.dataset.options  # nothing from the environment
    again = validate_raw(s.raw, default_registry(), s.path)  # what a worker does
    assert again.models[0].record_options == model.record_options
    assert "mean" in json.dumps(model.to_dict())  # the cell id hashes the expanded value


def test_env_values_stay_out_of_result_rows(tmp_path, monkeypatch, capsys):
    """End to end: a folder dataset whose root comes from $RB_DATA_ROOT; the row records
    the variable, not the path (params and manifest; the dataset keeps its name, which
    defaults to the folder's)."""
    root = tmp_path / "private-data-folder"
    root.mkdir()
    rng = np.random.default_rng(0)
    lines = ["user\tsong\tcount"] + [f"u{u}\ts{s}\t1" for u in range(30) for s in range(25)
                                     if rng.random() < 0.4]
    (root / "interactions.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("RB_DATA_ROOT", str(root))
    text = GOOD.replace('name = "tiny"', 'name = "folder"\nroot = "${RB_DATA_ROOT}"')
    out = tmp_path / "out"
    code = main(["run", str(write(tmp_path, text)), "-o", str(out), "-q"])
    capsys.readouterr()
    assert code == 0
    rows = (out / "results.jsonl").read_text(encoding="utf-8")
    assert str(root) not in rows and str(tmp_path) not in rows
    row = json.loads(rows.splitlines()[0])
    assert row["status"] == "ok" and row["dataset"]["params"]["root"] == "${RB_DATA_ROOT}"


def test_tagging_on_a_folder_dataset_without_tags(tmp_path, capsys):
    """The folder loader says whether it will hold tags (a tags file configured or
    present), so tagging on an interactions-only folder fails at validate, not in a cell."""
    root = tmp_path / "ds"
    root.mkdir()
    (root / "interactions.tsv").write_text("user\tsong\tplays\nu1\ts1\t2\nu2\ts2\t1\n")
    text = (GOOD.replace('name = "tiny"', f'name = "folder"\nroot = "{root}"')
            .replace('[[models]]', '[[tasks]]\nname = "tagging"\n\n[[models]]'))
    msg = one_error(capsys, write(tmp_path, text))
    assert "tasks[1].name: task 'tagging' needs tags" in msg
    assert "'folder' does not provide" in msg
    (root / "tags.tsv").write_text("song\ttag\ns1\trock\n")
    code, _ = validate(capsys, write(tmp_path, text, "s2.toml"))
    assert code == 0


def test_zero_test_share_is_refused(tmp_path, capsys):
    """A test share of 0 used to validate and then fail the cell with an IndexError."""
    text = GOOD.replace("seed = 0\n", "seed = 0\ntest_share = 0.0\n", 1)
    msg = one_error(capsys, write(tmp_path, text))
    assert f"s.toml:{line_of(text, 'test_share')}: split.test_share:" in msg
