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
