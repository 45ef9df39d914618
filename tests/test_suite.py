"""Suite loading: validation errors name file, key and line; expansion and overrides."""

from __future__ import annotations

import textwrap

import pytest

from recbench.errors import ConfigError
from recbench.registry import default_registry
from recbench.suite import load_suite, parse_override

GOOD = """
[suite]
name = "t"
seeds = [0, 1]

[dataset]
name = "tiny"

[split]
name = "cold-item"
seed = 3

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "random"

[[models]]
name = "popularity"
id = "pop"
label = "Popularity (train counts)"
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path, text, overrides=()):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_suite(p, default_registry(), list(overrides))
    return str(info.value), info.value


def test_good_suite_resolves_everything(tmp_path):
    s = load_suite(write(tmp_path, GOOD), default_registry())
    assert s.name == "t" and s.seeds == [0, 1] and s.split_seed == 3
    assert [m.id for m in s.models] == ["random", "pop"]
    assert s.models[1].label == "Popularity (train counts)"
    assert s.tasks[0].metrics[0].name == "auc" and s.tasks[0].metrics[0].k is None
    assert s.dataset.options["users"] > 0  # defaults resolved from the plugin's declaration
    assert s.executor.name == "local" and s.run["device"] == "auto"


def test_invalid_toml_reports_line(tmp_path):
    msg, err = error_of(tmp_path, GOOD + "\n[models\nname = 1\n")
    assert "invalid TOML" in msg and err.line is not None and str(err.line) in msg
    assert "s.toml" in msg and "\n" not in msg


def test_unknown_section_suggests(tmp_path):
    msg, err = error_of(tmp_path, GOOD + "\n[modles]\nx = 1\n")
    assert "modles" in msg and "models" in msg


def test_unknown_parameter_with_line(tmp_path):
    msg, err = error_of(tmp_path, GOOD.replace('id = "pop"', 'id = "pop"\nfactorz = 3'))
    assert "models[1].factorz" in msg and "unknown parameter" in msg
    assert err.line == GOOD.splitlines().index('id = "pop"') + 2


def test_unknown_plugin_suggests_closest(tmp_path):
    msg, _ = error_of(tmp_path, GOOD.replace('name = "popularity"', 'name = "populariti"'))
    assert "unknown recommender 'populariti'" in msg and "Did you mean: popularity" in msg
    assert "models[1].name" in msg


def test_wrong_type_and_range(tmp_path):
    msg, _ = error_of(tmp_path, GOOD.replace("seeds = [0, 1]", 'seeds = "zero"'))
    assert "suite.seeds" in msg and "expected list" in msg
    msg, _ = error_of(tmp_path, GOOD.replace("[suite]", "[suite]\nbootstrap = -5"))
    assert "suite.bootstrap" in msg and ">= 0" in msg


def test_metric_cutoff_and_unknown_metric(tmp_path):
    msg, _ = error_of(tmp_path, GOOD.replace('metrics = ["auc"]', 'metrics = ["auc@10"]'))
    assert "takes no cutoff" in msg
    msg, _ = error_of(tmp_path, GOOD.replace('metrics = ["auc"]', 'metrics = ["acu"]'))
    assert "unknown metric 'acu'" in msg and "auc" in msg


def test_duplicate_model_ids(tmp_path):
    msg, _ = error_of(tmp_path, GOOD + '\n[[models]]\nname = "random"\n')
    assert "duplicate model id 'random'" in msg


def test_env_expansion(tmp_path, monkeypatch):
    text = GOOD.replace('id = "pop"', 'id = "${MODEL_ID:-fallback}"')
    s = load_suite(write(tmp_path, text), default_registry())
    assert s.models[1].id == "fallback"
    monkeypatch.setenv("MODEL_ID", "from-env")
    s = load_suite(write(tmp_path, text), default_registry())
    assert s.models[1].id == "from-env"
    msg, _ = error_of(tmp_path, GOOD.replace('id = "pop"', 'id = "${NOPE_NOT_SET}"'))
    assert "NOPE_NOT_SET" in msg and "not set" in msg


def test_overrides(tmp_path):
    p = write(tmp_path, GOOD)
    s = load_suite(p, default_registry(), ["suite.seeds=[4]", "dataset.users=30",
                                           "models.pop.label=P", "models[0].id=rnd"])
    assert s.seeds == [4] and s.dataset.options["users"] == 30
    assert s.models[1].label == "P" and s.models[0].id == "rnd"
    assert parse_override("dataset.root=/a b") == (["dataset", "root"], "/a b")
    with pytest.raises(ConfigError, match="no single entry"):
        load_suite(p, default_registry(), ["models.nope.x=1"])
    msg, _ = error_of(tmp_path, GOOD, ["dataset.users=-1"])
    assert "dataset.users" in msg


def test_missing_suite_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_suite(tmp_path / "nope.toml", default_registry())


def test_dataset_fallback_only_when_data_is_not_configured(tmp_path, monkeypatch):
    text = GOOD.replace('[dataset]\nname = "tiny"',
                        '[dataset]\nname = "msd"\n\n[dataset.fallback]\nname = "tiny"\nusers = 20')
    monkeypatch.delenv("RECBENCH_MSD_ROOT", raising=False)
    s = load_suite(write(tmp_path, text), default_registry())
    assert s.dataset.name == "tiny" and s.dataset.options["users"] == 20
    assert "NOT the paper's data" in s.notice and "RECBENCH_MSD_ROOT" in s.notice
    monkeypatch.setenv("RECBENCH_MSD_ROOT", str(tmp_path / "missing"))
    msg, _ = error_of(tmp_path, text)  # a root that is set but wrong is an error, no fallback
    assert "missing is not a folder" in msg


FALLBACK = GOOD.replace('[dataset]\nname = "tiny"', '''[dataset]
name = "msd"

[dataset.fallback]
name = "tiny"
users = 20

[dataset.fallback.models.dcue]
max_epochs = 2
backbone_params = { width = 0.25 }''') + '''
[[models]]
name = "dcue"
max_epochs = 50
patience = 7
'''


def test_fallback_model_overrides_apply_only_with_the_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("RECBENCH_MSD_ROOT", raising=False)
    s = load_suite(write(tmp_path, FALLBACK), default_registry())
    dcue = [m for m in s.models if m.id == "dcue"][0]
    assert s.dataset.name == "tiny"
    assert dcue.options["max_epochs"] == 2 and dcue.options["patience"] == 7
    assert dcue.options["backbone_params"] == {"width": 0.25}
    assert dcue.key == "models[2]" and dcue.label == "dcue"
    assert "dcue: backbone_params, max_epochs" in s.notice
    # the other models are untouched; the main values hash differently from the override
    main = load_suite(write(tmp_path, FALLBACK.replace('name = "msd"', 'name = "tiny"'),
                            "main.toml"), default_registry())
    main_dcue = [m for m in main.models if m.id == "dcue"][0]
    assert main.notice is None
    assert main_dcue.options["max_epochs"] == 50 and main_dcue.options["backbone_params"] == {}
    assert main_dcue.config_hash != dcue.config_hash
    assert [m.config_hash for m in main.models[:2]] == [m.config_hash for m in s.models[:2]]


@pytest.mark.parametrize("table,key,expected", [
    ("[dataset.fallback.models.dcu]\nmax_epochs = 2", "dataset.fallback.models.dcu",
     "names no model of this suite"),
    ("[dataset.fallback.models.dcue]\nmax_epoch = 2", "dataset.fallback.models.dcue.max_epoch",
     "max_epoch"),
    ("[dataset.fallback.models.dcue]\nmax_epochs = 0", "dataset.fallback.models.dcue.max_epochs",
     ">= 1"),
    ("[dataset.fallback.models.dcue]\nname = \"wmf\"", "dataset.fallback.models.dcue.name",
     "cannot change"),
])
def test_fallback_model_overrides_are_validated(tmp_path, monkeypatch, table, key, expected):
    """Validated even when the real data is there (here: `tiny`, always available)."""
    monkeypatch.delenv("RECBENCH_MSD_ROOT", raising=False)
    text = FALLBACK.replace('name = "msd"', 'name = "tiny"').replace(
        "[dataset.fallback.models.dcue]\nmax_epochs = 2\nbackbone_params = { width = 0.25 }",
        table)
    msg, err = error_of(tmp_path, text)
    assert key in msg and expected in msg and "Traceback" not in msg
    # the line of the offending key (the table's header when the model id is wrong)
    at = table.splitlines()[0 if "dcu]" in table else -1]
    assert err.line == text.splitlines().index(at) + 1


def test_msd_coldstart_real_budget_and_synthetic_override(monkeypatch):
    """The headline suite: the paper's optimiser and early stopping on the real data, the
    same audio model for DCUE and WMF+Regression in both kinds of run, and the synthetic
    budget only under the fallback."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "suites" / "msd_coldstart.toml"
    monkeypatch.delenv("RECBENCH_MSD_ROOT", raising=False)
    synthetic = load_suite(path, default_registry())
    assert synthetic.dataset.name == "synth-msd" and "dcue: " in synthetic.notice
    import tomllib

    from recbench.suite import validate_raw

    text = path.read_text()
    raw = tomllib.loads(text)
    # the real data "available": a dataset that validates, the fallback still declared
    raw["dataset"] = {"name": "synth-msd", "fallback": raw["dataset"]["fallback"]}
    real = validate_raw(raw, default_registry(), str(path), text)
    assert real.notice is None
    by_id = {m.id: m.options for m in real.models}
    fb = {m.id: m.options for m in synthetic.models}
    for mid in ("dcue", "dcue-authors-warm", "dcue-item-index"):
        o = by_id[mid]
        assert (o["optimizer"], o["momentum"], o["lr_decay"], o["batch_size"]) == \
            ("sgd", 0.9, 1e-6, 10)
        assert o["patience"] == 5 and o["max_epochs"] >= 100 and o["steps_per_epoch"] is None
        assert (o["user_embedding_dim"], o["user_hidden"], o["dim"]) == (300, [300], 256)
        assert fb[mid]["optimizer"] == "adam" and fb[mid]["max_epochs"] <= 10
    assert by_id["wmf-regression"]["patience"] == 5 and by_id["wmf-regression"]["epochs"] >= 100
    for opts in (by_id, fb):
        assert opts["wmf-regression"]["backbone"] == opts["dcue"]["backbone"] == "conv1d-lee2018"
        assert opts["wmf-regression"]["backbone_params"] == opts["dcue"]["backbone_params"]
    assert real.features["compression"] == "log10-1p-10x" and real.features["window_frames"] == 130
