"""End to end: a suite runs content-profile, wmf-regression and dcue on pretrained
embeddings given to the folder loader; the rows carry the embeddings' identity."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import recbench, rows_of, suite_file

SUITE = """
[suite]
name = "pretrained-e2e"
bootstrap = 50

[dataset]
name = "folder"
root = "{root}"
embeddings = "{emb}"

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "content-profile"
backbone = "embedding"

[[models]]
name = "wmf-regression"
backbone = "embedding"
factors = 8
epochs = 3

[[models]]
name = "dcue"
backbone = "embedding-mlp"
backbone_params = {{ hidden = [16] }}
dim = 16
max_epochs = 2
steps_per_epoch = 20
batch_size = 32
"""


def _write(tmp_path: Path) -> Path:
    from recbench.components import LoadContext
    from recbench.dataio import write_dataset
    from recbench.registry import default_registry

    ds = default_registry().create("dataset", "synth-msd", preset="tiny").load(
        LoadContext(cache_dir=str(tmp_path / "cache")))
    ds = dataclasses.replace(ds, audio=None, _fingerprint=None)  # embeddings instead
    root = write_dataset(ds, tmp_path / "data")
    # "pretrained" embeddings: the songs' factors of the full play matrix (informative,
    # the point is the pipeline), and random ones of the same size; one song left out
    c = ds.counts.toarray().astype(np.float64)
    _, _, vt = np.linalg.svd(np.log1p(c), full_matrices=False)
    informative = vt[:8].T.astype(np.float32)
    rand = np.random.default_rng(0).standard_normal(informative.shape).astype(np.float32)
    ids = [str(s) for s in ds.song_ids]
    for name, m in (("good", informative), ("random", rand)):
        np.save(root / f"{name}.npy", m[1:])
        (root / f"{name}.ids.txt").write_text("".join(i + "\n" for i in ids[1:]))
    return root


def test_models_run_on_pretrained_embeddings(tmp_path):
    root = _write(tmp_path)
    auc = {}
    for emb in ("good", "random"):
        out = tmp_path / f"out-{emb}"
        p = suite_file(tmp_path, SUITE.format(root=root, emb=f"{emb}.npy"), name=f"{emb}.toml")
        recbench("run", p, "-o", out, "-q", "--cache-dir", tmp_path / "cache", check=0)
        rows = rows_of(out)
        assert [r["model"]["name"] for r in rows] == ["content-profile", "wmf-regression",
                                                       "dcue"]
        assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
        for r in rows:
            feats = r["dataset"]["features"]["embedding"]
            pre = r["dataset"]["manifest"]["pretrained"]["embedding"]
            assert feats["key"] == pre["identity"] and pre["n_missing"] == 1
            assert feats["dropped"] == {"no_precomputed_features": 1}
            assert r["dataset"]["fingerprint"] != r["dataset"]["manifest"]["fingerprint_at_write"]
        auc[emb] = {r["model"]["name"]: r["metrics"]["auc"] for r in rows}
    print("AUC by embeddings and model:", auc)
    # the embeddings reach the models: informative ones rank cold songs, random ones do not
    for model in ("content-profile", "wmf-regression", "dcue"):
        assert auc["good"][model] > auc["random"][model] + 0.05, auc
    assert abs(auc["random"]["content-profile"] - 0.5) < 0.1, auc


HEAR_SUITE = """
[suite]
name = "hear-e2e"
bootstrap = 50

[dataset]
name = "synth-msd"
preset = "tiny"

[features]
sample_rate = 16000          # the toy model's rate: no resampling

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "content-profile"
backbone = "hear"
backbone_params = {{ module = "{toy}", input_rate = 16000 }}

[[models]]
name = "wmf-regression"
factors = 8
epochs = 2
backbone = "hear"
backbone_params = {{ module = "{toy}", input_rate = 16000, fine_tune = true }}
"""


def test_a_hear_module_runs_frozen_and_fine_tuned_in_a_suite(tmp_path):
    toy = Path(__file__).with_name("hear_toy.py")
    out = tmp_path / "out"
    p = suite_file(tmp_path, HEAR_SUITE.format(toy=toy), name="hear.toml")
    recbench("run", p, "-o", out, "-q", "--cache-dir", tmp_path / "cache", check=0)
    rows = rows_of(out)
    assert [r["status"] for r in rows] == ["ok", "ok"], [r.get("error") for r in rows]
    for r in rows:
        assert r["dataset"]["features"]["waveform"]["n_songs"] == r["dataset"]["n_songs"]
        assert 0.0 <= r["metrics"]["auc"] <= 1.0
    print("AUC:", {r["model"]["name"]: r["metrics"]["auc"] for r in rows})
