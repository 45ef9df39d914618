"""The stage packages (recbench.io, recbench.metrics, recbench.registry): old import paths
still give the same objects, modules stay small, and every first import works."""

from __future__ import annotations

import importlib
import subprocess
import sys
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
}

PACKAGES = ("io", "metrics", "registry")
MAX_LINES = 400


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_paths_give_the_same_objects(old):
    old_mod = importlib.import_module(old)
    for new, names in MOVED[old].items():
        new_mod = importlib.import_module(new)
        for name in names:
            assert getattr(old_mod, name) is getattr(new_mod, name), f"{old}.{name}"
    public = {n for names in MOVED[old].values() for n in names}
    assert public <= set(old_mod.__all__), f"{old}.__all__ lacks {public - set(old_mod.__all__)}"


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


def test_no_module_of_the_stage_packages_is_over_400_lines():
    root = Path(recbench.__file__).parent
    sizes = {str(p.relative_to(root)): len(p.read_text(encoding="utf-8").splitlines())
             for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))}
    assert len(sizes) >= 3 * len(PACKAGES)  # the packages are there and were read
    assert {k: v for k, v in sizes.items() if v > MAX_LINES} == {}


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
