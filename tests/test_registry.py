"""Plugin discovery: entry points, failures, duplicates, switches, the third-party plugin."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import sys
import types

import numpy as np
import pytest

from recbench import hookimpl, registry as reg
from recbench.components import KINDS, Recommender
from recbench.errors import PluginError
from recbench.hookspecs import HOOKS


def _module(name: str, **hooks) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in hooks.items():
        setattr(mod, k, hookimpl(v))
    return mod


class Dummy(Recommender):
    name = "dummy"
    description = "test"

    def fit(self, ctx):
        pass

    def score(self, users, songs):
        return np.zeros((len(users), len(songs)))


def test_builtins_are_discovered_through_entry_points():
    eps = {ep.name: ep.value for ep in md.entry_points(group="recbench")}
    assert eps["baselines"] == "recbench_builtin.recommenders.baselines"
    r = reg.build_registry()
    assert {"random", "popularity", "popularity-oracle"} <= set(r.names("recommender"))
    assert r.get("recommender", "random").dist == "recbench"
    assert "cold-item" in r.names("split") and "local" in r.names("executor")


def test_core_imports_no_builtin_by_name():
    import pathlib

    import recbench

    root = pathlib.Path(recbench.__file__).parent
    offenders = [p.name for p in root.glob("*.py") if "recbench_builtin" in p.read_text()]
    assert offenders == []


def test_core_names_builtin_defaults_in_one_module_only():
    """The core works with whatever is registered: the built-in names it falls back on
    (default executor, split, task, synthetic dataset) live in recbench/defaults.py."""
    import pathlib
    import re

    import recbench

    root = pathlib.Path(recbench.__file__).parent
    pattern = re.compile(r"""["'](local|recommendation|cold-item|synth-msd)["']""")
    offenders = {str(p.relative_to(root)): pattern.findall(p.read_text())
                 for p in root.rglob("*.py") if p.name != "defaults.py"}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_executors_declare_whether_they_run_in_process():
    """The runner asks the executor (`in_process`) instead of testing its name."""
    r = reg.build_registry()
    flags = {name: r.get("executor", name).cls.in_process for name in r.names("executor")}
    assert flags == {"local": True, "process": False, "dask": False}


def test_third_party_plugin_is_listed_beside_builtins():
    """The example package under tests/plugin_example must be installed (README command)."""
    r = reg.build_registry()
    entry = r.get("recommender", "example-inverse-popularity")
    assert entry.dist == "recbench-example-plugin" and entry.version == "0.3.1"
    out = subprocess.run([sys.executable, "-m", "recbench", "list", "--kind", "recommender"],
                         capture_output=True, text=True, check=True).stdout
    assert "example-inverse-popularity" in out and "recbench-example-plugin 0.3.1" in out
    assert "popularity-oracle" in out


def test_failed_import_is_reported_and_the_rest_load(monkeypatch):
    good = md.EntryPoint("baselines", "recbench_builtin.recommenders.baselines", "recbench")
    bad = md.EntryPoint("broken", "no_such_module_xyz", "recbench")
    monkeypatch.setattr(reg.discovery, "_entry_points", lambda: [bad, good])
    r = reg.build_registry()
    assert [f.plugin for f in r.failures] == ["broken"]
    assert "ModuleNotFoundError" in r.failures[0].error
    assert "random" in r.names("recommender")


def test_duplicate_names_name_both_providers(monkeypatch):
    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    a = _module("plug_a", recbench_register_recommenders=lambda register: register(Dummy))

    class Other(Dummy):
        pass
    b = _module("plug_b", recbench_register_recommenders=lambda register: register(Other))
    with pytest.raises(PluginError) as info:
        reg.build_registry([a, b])
    msg = str(info.value)
    assert "'dummy' is registered twice" in msg and "plug_a" in msg and "plug_b" in msg


def test_wrong_base_class_is_rejected(monkeypatch):
    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    m = _module("plug_c", recbench_register_losses=lambda register: register(Dummy))
    with pytest.raises(PluginError, match="does not subclass recbench.components.Loss"):
        reg.build_registry([m])


def test_misspelled_hook_is_reported_like_an_import_failure(monkeypatch):
    """A misspelt hook name fails its plugin alone (listed in failures, like an import
    error), suggesting the right name; the other plugins still load."""
    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    m = _module("plug_d", recbench_register_recomenders=lambda register: register(Dummy))
    ok = _module("plug_ok", recbench_register_recommenders=lambda register: register(Dummy))
    r = reg.build_registry([m, ok])
    assert [f.plugin for f in r.failures] == ["plug_d"]
    assert "unknown hook 'recbench_register_recomenders'" in r.failures[0].error
    assert "Did you mean: recbench_register_recommenders" in r.failures[0].error
    assert r.names("recommender") == ["dummy"]


def test_misspelled_hook_in_an_entry_point_plugin(monkeypatch, capsys):
    """`recbench list` reports the plugin as FAILED (one line) and lists the others."""
    from recbench.cli import main

    bad = types.ModuleType("misspelt_plugin_xyz")
    bad.recbench_register_metric = hookimpl(lambda register: None)
    monkeypatch.setitem(sys.modules, "misspelt_plugin_xyz", bad)
    good = md.EntryPoint("baselines", "recbench_builtin.recommenders.baselines", "recbench")
    ep = md.EntryPoint("misspelt", "misspelt_plugin_xyz", "recbench")
    monkeypatch.setattr(reg.discovery, "_entry_points", lambda: [ep, good])
    r = reg.build_registry()
    assert [f.plugin for f in r.failures] == ["misspelt"]
    assert "random" in r.names("recommender")
    assert main(["list", "--kind", "recommender"]) == 0
    out, err = capsys.readouterr()
    assert "random" in out
    lines = [ln for ln in err.splitlines() if "misspelt" in ln]
    assert len(lines) == 1 and lines[0].startswith("FAILED to load plugin misspelt")
    assert "recbench_register_metrics" in lines[0] and "Traceback" not in err


def test_switches(monkeypatch):
    monkeypatch.setenv("RECBENCH_DISABLE_PLUGINS", "baselines")
    r = reg.build_registry()
    assert "random" not in r.names("recommender") and "cold-item" in r.names("split")
    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert reg.build_registry().all() == []


def test_one_hook_per_kind_and_unknown_names_suggest():
    assert set(HOOKS) == set(KINDS)
    r = reg.build_registry()
    with pytest.raises(Exception, match="Did you mean: popularity"):
        r.get("recommender", "popularty")


def test_list_is_fast_and_lazy():
    """Plugin modules import no heavy library at start-up (list must stay quick)."""
    code = ("import sys; from recbench.registry import build_registry; build_registry(); "
            "print(','.join(m for m in ('torch', 'librosa', 'implicit', 'sklearn') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


def test_reserved_parameter_names_are_rejected(monkeypatch):
    from recbench.params import Param

    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")

    class Named(Dummy):
        params = (Param("label", str, ""),)
    m = _module("plug_e", recbench_register_recommenders=lambda register: register(Named))
    with pytest.raises(PluginError, match="reserved parameter"):
        reg.build_registry([m])


@pytest.mark.parametrize("kind, key", [("split", "seed"), ("task", "metrics"),
                                       ("dataset", "fallback"), ("executor", "name")])
def test_keys_the_suite_reserves_are_reserved_per_kind(monkeypatch, kind, key):
    """The suite pops `seed` from [split], `metrics` from [[tasks]], `fallback` from
    [dataset]: a plugin declaring one could never receive it, so registration refuses it."""
    from recbench.params import Param

    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    base = KINDS[kind]
    cls = type(f"Reserved{kind.title()}", (base,), {"name": f"reserved-{kind}",
                                                      "params": (Param(key, int, 0),),
                                                      "__abstractmethods__": frozenset()})
    m = _module("plug_f", **{HOOKS[kind]: lambda register: register(cls)})
    with pytest.raises(PluginError, match=f"reserved parameter.*{key}") as info:
        reg.build_registry([m])
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- the typed contract


def test_fit_context_without_factory_or_features_fails_with_a_config_error():
    from recbench.components import FitContext
    from recbench.errors import ConfigError

    ctx = FitContext(dataset=None, split=None, seed=0)
    with pytest.raises(ConfigError, match="component factory"):
        ctx.create("loss", "hinge")
    with pytest.raises(ConfigError, match="without audio"):
        ctx.features("logmel")


def test_song_features_satisfy_the_protocol():
    from recbench.components import SongFeaturesLike
    from recbench.features import SongFeatures

    f = SongFeatures("logmel", np.zeros((2, 4, 3), np.float16), np.array([4, 0]),
                     np.zeros(3, np.float32), np.ones(3, np.float32), window=2)
    assert isinstance(f, SongFeaturesLike)
    assert not isinstance(object(), SongFeaturesLike)


def test_capabilities_of_the_builtins():
    registry = reg.default_registry()
    # (item vectors, needs audio) of the DCUE paper's systems; later built-ins declare their own
    expected = {"random": (False, False), "popularity": (False, False),
                "popularity-oracle": (False, False), "wmf": (True, False),
                "wmf-regression": (True, True), "dcue": (True, True),
                "dcue-authors-warm": (True, True), "dcue-item-index": (True, False),
                "content-profile": (True, True)}
    for name, (vectors, audio) in expected.items():
        cls = registry.get("recommender", name).cls
        assert (cls.provides_item_vectors(), cls.needs_audio()) == (vectors, audio), name
    for e in registry.all("recommender"):
        assert e.cls.uses_test_interactions == ("test_interactions" in e.cls.consumes), e.name
    assert registry.create("backbone", "mel-stats").out_features(10, 8, 64) == 16
    assert registry.create("backbone", "conv1d").out_features(10, 8, 64) == 64


def test_has_item_vectors_overrides_the_inference():
    class Declared(Recommender):
        name = "declared"
        has_item_vectors = False

        def fit(self, ctx):
            pass

        def score(self, users, songs):
            return np.zeros((len(users), len(songs)))

        def item_vectors(self, songs):
            return None

    assert not Declared.provides_item_vectors() and Recommender.provides_item_vectors() is False


@pytest.mark.parametrize("bad", ["mrr@10", "my metric", "a=b", "x,y", "m[0]", "v1.2", "-lead",
                                 ""])
def test_names_a_suite_cannot_address_are_refused(monkeypatch, bad):
    """`mrr@10` would register and then never be usable ('@' is the cutoff separator);
    whitespace, '.', '=', ',' and brackets clash with suite and --set syntax."""
    from recbench.components import Metric

    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    Bad = type("Bad", (Metric,), {"name": bad, "per_user": lambda self, block: None})
    m = _module("plug_bad_name", recbench_register_metrics=lambda register: register(Bad))
    with pytest.raises(PluginError) as info:
        reg.build_registry([m])
    msg = str(info.value)
    assert "\n" not in msg and ("cannot be used in a suite" in msg or "without a `name`" in msg)


def test_usual_names_are_accepted(monkeypatch):
    from recbench.components import Metric

    monkeypatch.setenv("RECBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    classes = [type(f"M{i}", (Metric,), {"name": n, "per_user": lambda self, block: None})
               for i, n in enumerate(["mrr", "hit_rate", "ndcg-2", "v12"])]
    m = _module("plug_ok_names",
                recbench_register_metrics=lambda register: [register(c) for c in classes])
    assert {"mrr", "hit_rate", "ndcg-2", "v12"} <= set(reg.build_registry([m]).names("metric"))


def test_list_verbose_shows_cutoffs_directions_consumes_and_oracles(capsys):
    import json

    from recbench.cli import main

    assert main(["list", "-v", "--kind", "metric"]) == 0
    out = capsys.readouterr().out
    assert "metric auc; needs_k: no; higher_is_better: yes" in out
    assert "metric ndcg; needs_k: yes; higher_is_better: yes" in out
    assert "metric popularity; needs_k: yes; higher_is_better: no" in out
    assert main(["list", "-v", "--kind", "recommender"]) == 0
    out = capsys.readouterr().out
    assert ("recommender dcue; consumes: interactions, audio; uses_test_interactions: no\n"
            in out)
    assert "recommender wmf; consumes: interactions, test_interactions; " \
           "uses_test_interactions: yes (oracle: ranked apart)" in out
    assert main(["list", "--json"]) == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[("metric", "recall")]["needs_k"] is True
    assert rows[("metric", "popularity")]["higher_is_better"] is False
    assert rows[("recommender", "popularity-oracle")]["uses_test_interactions"] is True
    assert rows[("recommender", "dcue")]["consumes"] == ["interactions", "audio"]
    assert "needs_k" not in rows[("loss", "hinge")]
