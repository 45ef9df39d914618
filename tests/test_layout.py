"""The stage packages (suite -> registry -> io -> split -> features -> run -> metrics ->
results -> leaderboard): old import paths still give the same objects, no module of
recbench is over 400 lines, and every module can be imported first."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

import recbench

# old module -> {new module: public names it held before the move}
MOVED = {
    "recbench.dataio": {
        "recbench.io.folder": ["DATASET_JSON", "FORMAT_NAME", "FORMAT_VERSION",
                               "LOSSLESS_SUBTYPES", "audio_file_name", "read_dataset_json",
                               "read_id_list", "restored_identity", "write_dataset"],
        "recbench.io.ids": ["IdCollector"],
        "recbench.io.problems": ["MAX_EXAMPLES", "MAX_EXAMPLE_CHARS", "MAX_NAMED",
                                 "MAX_REASON_CHARS", "Problems", "first_bad_rows",
                                 "report_bad_rows"],
        "recbench.io.text": ["SNIPPET_CHARS", "is_utf8", "parse_numbers"],
        "recbench.io.tables": ["TableReader", "table_format"],
        "recbench.io.matrices": ["canonical_csr", "coo_to_csr"],
        "recbench.io.dataset": ["Dataset"],
    },
    "recbench.data": {"recbench.io.dataset": ["AudioSource", "Dataset", "Split", "hash_arrays"]},
    "recbench.audio": {
        "recbench.io.audio": ["AudioDecodeError", "FileAudioSource", "PROBE_FRAMES", "decode",
                              "file_sha256", "probe_audio", "stat_identity"]},
    "recbench.metrics": {
        "recbench.metrics.auc": ["roc_auc_per_user"],
        "recbench.metrics.blocks": ["DEFAULT_CHUNK", "n_excluded", "stack_rows"],
        "recbench.metrics.topk": ["average_precision_at_k", "hits_at_k", "mean_popularity_at_k",
                                  "ndcg_at_k", "precision_at_k", "recall_at_k", "top_k"],
        "recbench.metrics.coverage": ["catalogue_coverage", "coverage_rows",
                                      "expected_coverage"],
        "recbench.metrics.ranking": ["Ranking", "ranking_of"],
    },
    "recbench.uncertainty": {
        "recbench.metrics.uncertainty": ["bootstrap_ci", "bootstrap_stats", "paired_bootstrap",
                                         "seed_summary"]},
    "recbench.registry": {
        "recbench.registry.discovery": ["ENTRY_POINT_GROUP", "build_registry",
                                        "default_registry"],
        "recbench.registry.entries": ["Entry", "LoadFailure", "NAME_RE", "RESERVED_KEYS",
                                      "Registry"],
    },
    "recbench.hookspecs": {
        "recbench.registry.hookspecs": [
            "HOOKS", "hookspec", "recbench_register_backbones", "recbench_register_datasets",
            "recbench_register_executors", "recbench_register_losses",
            "recbench_register_metrics", "recbench_register_recommenders",
            "recbench_register_samplers", "recbench_register_splits",
            "recbench_register_tasks"]},
    "recbench.params": {
        "recbench.registry.params": ["NESTED_PLUGIN_KINDS", "Param", "ParamSet", "suggest"]},
    "recbench.suite": {
        "recbench.suite.model": ["ComponentSpec", "ENV_KEY", "FEATURE_PARAMS", "MAX_SEED",
                                 "MetricSpec", "RUN_PARAMS", "SECTIONS", "SUITE_PARAMS", "Suite",
                                 "TaskSpec"],
        "recbench.suite.overrides": ["apply_override", "parse_override"],
        "recbench.suite.vars": ["expand_vars"],
        "recbench.suite.load": ["load_suite"],
        "recbench.suite.validate": ["validate_raw"],
    },
    "recbench.features": {
        "recbench.features.frontend": ["COMPRESSIONS", "DEFAULT_PARAMS", "KINDS",
                                       "MAX_NAMED_DROPPED", "NORMALISATIONS", "SILENCE_PEAK",
                                       "logmel", "n_frames", "resolve_params", "window_steps"],
        "recbench.features.drops": ["REASONS", "EmptyAudio", "NonFiniteAudio",
                                    "NonFiniteFeatures", "SilentAudio", "SongDropped",
                                    "drop_reason"],
        "recbench.features.store": ["CacheEntryDamaged"],
        "recbench.features.song_features": ["SongFeatures"],
        "recbench.features.extract": ["cache_key", "extract_songs"],
        "recbench.features.cache": ["default_workers", "load_features"],
    },
    "recbench.runner": {
        "recbench.run.plan": ["CellPlan", "FitUnit", "default_cache_dir", "plan_cells",
                              "plan_units", "resolve_cache_dir"],
        "recbench.run.lock": ["RunLock"],
        "recbench.run.runner": ["RunSummary", "check_output_folder", "run_suite"],
        "recbench.run.prefetch": ["extract_features_task", "prefetch_features"],
        "recbench.run.worker": ["run_fit_unit"],
        "recbench.split.cache": ["WORKER_CACHE", "WorkerCache", "load_dataset", "load_split"],
    },
    "recbench.components": {
        "recbench.components.base": ["Component"],
        "recbench.components.recommender": ["CONSUMABLE", "FitContext", "Recommender",
                                            "SongFeaturesLike"],
        "recbench.components.audio": ["Backbone", "Loss", "Sampler"],
        "recbench.components.data": ["DatasetLoader", "LoadContext", "Splitter"],
        "recbench.components.evaluation": ["CellContext", "DiagnosticsChart",
                                           "DiagnosticsTable", "Metric", "MetricInfo",
                                           "MetricInput", "Task", "TaskOutput"],
        "recbench.components.executor": ["Executor"],
        "recbench.components.kinds": ["KINDS"],
    },
    "recbench.leaderboard": {
        "recbench.leaderboard.board": ["SECTION_COLD", "SECTION_ORACLE", "SECTION_REFERENCE",
                                       "board_context", "build", "build_from_folder",
                                       "ci_label", "commit_text", "diagnostics",
                                       "diagnostics_rows", "render_markdown",
                                       "table_rows", "task_class", "title"],
        "recbench.leaderboard.csvboard": ["render_csv"],
        "recbench.leaderboard.write": ["write_leaderboards"],
    },
    "recbench.report": {
        "recbench.leaderboard.report": ["PALETTE", "PLOT_NAME", "REFERENCE_COLOUR",
                                        "html_board", "model_colours", "render_html",
                                        "write_html", "write_plots"],
        "recbench.leaderboard.jinja": ["markdown_inline", "templates"],
    },
    "recbench.compare": {
        "recbench.leaderboard.compare": ["EXIT_OK", "EXIT_REGRESSION", "EXIT_USAGE", "Change",
                                         "compare", "direction", "load_leaderboard",
                                         "paired_change", "render"],
    },
    "recbench.testing.contracts": {
        "recbench.testing.contracts.base": ["PROTOCOLS", "ComponentContract"],
        "recbench.testing.contracts.recommender": ["RecommenderContract"],
        "recbench.testing.contracts.audio": ["BackboneContract", "LossContract",
                                             "SamplerContract"],
        "recbench.testing.contracts.evaluation": ["MetricContract", "TaskContract"],
        "recbench.testing.contracts.data": ["DatasetLoaderContract", "SplitterContract"],
        "recbench.testing.contracts.executor": ["ExecutorContract"],
        "recbench.testing.contracts.coverage": ["CONTRACTS", "contract_subclasses", "covered"],
    },
    "recbench.results": {
        "recbench.io.atomic": ["atomic_write_bytes", "atomic_write_text"]},
}

# private names that tests and plugins import from an old path
PRIVATE = {"recbench.features": {"recbench.features.store": ["_FORMAT", "_VERIFIED",
                                                             "_checksum", "_file_lock"]},
           "recbench.leaderboard": {"recbench.leaderboard.board": ["_clean"]}}

STAGES = ("suite", "registry", "io", "split", "features", "run", "metrics", "results",
          "leaderboard")
MAX_LINES = 400


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_paths_give_the_same_objects(old):
    if old == "recbench.results":  # re-exports a few names; its own stay (no __all__)
        results = importlib.import_module(old)
        atomic = importlib.import_module("recbench.io.atomic")
        assert all(getattr(results, n) is getattr(atomic, n) for n in MOVED[old][
            "recbench.io.atomic"])
        return
    old_mod = importlib.import_module(old)
    for new, names in MOVED[old].items():
        new_mod = importlib.import_module(new)
        for name in names:
            assert getattr(old_mod, name) is getattr(new_mod, name), f"{old}.{name}"
    public = {n for names in MOVED[old].values() for n in names}
    assert public <= set(old_mod.__all__), f"{old}.__all__ lacks {public - set(old_mod.__all__)}"


def test_private_names_that_tests_import_keep_their_old_path():
    for old, new in PRIVATE.items():
        for module, names in new.items():
            for name in names:
                assert getattr(importlib.import_module(old), name) is getattr(
                    importlib.import_module(module), name), f"{old}.{name}"


def test_stage_packages_re_export_their_modules_public_names():
    import recbench.io
    import recbench.metrics

    for package, old in (("recbench.io", "recbench.dataio"), ("recbench.io", "recbench.data"),
                         ("recbench.io", "recbench.audio")):
        pkg = importlib.import_module(package)
        for names in MOVED[old].values():
            for name in names:
                assert getattr(pkg, name) is getattr(importlib.import_module(old), name)
    assert {n for names in MOVED["recbench.metrics"].values() for n in names} <= set(
        recbench.metrics.__all__)


def test_no_module_of_recbench_is_over_400_lines():
    root = Path(recbench.__file__).parent
    sizes = {str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines())
             for p in sorted(root.rglob("*.py"))}
    assert {f"{pkg}/__init__.py" for pkg in STAGES} <= set(sizes)  # the packages were read
    assert {k: v for k, v in sizes.items() if v > MAX_LINES} == {}


def test_the_stage_packages_read_in_the_order_of_the_data_flow():
    root = Path(recbench.__file__).parent
    assert all((root / pkg / "__init__.py").is_file() for pkg in STAGES)
    # the old flat modules that became packages are gone (a package would shadow them)
    assert not [p.name for p in root.glob("*.py") if p.stem in STAGES]


def _all_modules() -> list[str]:
    root = Path(recbench.__file__).parent
    return sorted("recbench." + ".".join(p.relative_to(root).with_suffix("").parts)
                  .removesuffix(".__init__").removesuffix(".__main__") for p in root.rglob("*.py")
                  if p.name != "__main__.py")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks a fresh child per module")
def test_every_module_of_recbench_can_be_imported_first():
    """Each module imported first in its own child process (forked from an interpreter that
    has imported the third-party dependencies only): no import order hits a cycle."""
    script = textwrap.dedent("""
        import importlib, os, sys, traceback
        import jinja2, numpy, pluggy, pydantic, scipy.sparse  # warm: not recbench
        assert not [m for m in sys.modules if m.startswith("recbench")]
        failed = []
        for name in sys.argv[1:]:
            pid = os.fork()
            if pid == 0:
                try:
                    importlib.import_module(name)
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
                os._exit(0)
            if os.waitpid(pid, 0)[1] != 0:
                failed.append(name)
        print("FAILED", failed)
    """)
    modules = _all_modules()
    assert len(modules) > 80 and "recbench.run.worker" in modules
    r = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True,
                       text=True, check=False, timeout=600)
    assert r.returncode == 0 and "FAILED []" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.parametrize("module", [
    "recbench.params", "recbench.hookspecs", "recbench.components", "recbench.registry",
    "recbench.registry.params", "recbench.registry.entries", "recbench.data",
    "recbench.dataio", "recbench.uncertainty", "recbench.suite"])
def test_any_module_can_be_imported_first(module):
    """recbench.components imports recbench.params, which now lives in the registry package
    that itself needs components: no import order may hit the cycle."""
    r = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                       text=True, check=False)
    assert r.returncode == 0, r.stderr


def test_the_old_hookspecs_module_still_drives_pluggy():
    from recbench import hookspecs as old_specs

    class Plugin:
        @recbench.hookimpl
        def recbench_register_metrics(self, register):
            register("seen")

    pm = pluggy.PluginManager("recbench")
    pm.add_hookspecs(old_specs)
    pm.register(Plugin())
    pm.check_pending()
    got = []
    pm.hook.recbench_register_metrics(register=got.append)
    assert got == ["seen"]
    assert pm.hook.recbench_register_metrics.has_spec()
