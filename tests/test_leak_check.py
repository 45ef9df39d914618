"""The leak check on the synthetic data (tiny preset, 3 seeds, cold-item split).

With a high `audible_share`, audio models learn what users like from the audio: the warm
WMF oracle > DCUE > honest popularity (exactly chance on cold songs), and DCUE beats random
clearly. With `audible_share = 0` the audio says nothing about listening, so every audio
model must sit at chance: an audio model above it would be reading a leak.

Each seed draws its own dataset, split and model, with 600 songs instead of the tiny
preset's 200: a model's error on one test song is shared by all users, so the number of
test songs, not users, sets the noise (40 test songs alone cannot tell 0.5 from 0.45).
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from recbench.registry import default_registry
from recbench.runner import run_suite
from recbench.suite import load_suite

SUITE = """
[suite]
name = "leak"
seeds = [0]
bootstrap = 0

[dataset]
name = "synth-msd"
preset = "tiny"
songs = 600
audible_share = {share}

[split]
name = "cold-item"

[[tasks]]
name = "recommendation"
metrics = ["auc"]

[[models]]
name = "random"

[[models]]
name = "popularity"

[[models]]
name = "wmf"
factors = 16

[[models]]
name = "content-profile"

[[models]]
name = "wmf-regression"
factors = 16
epochs = 15
optimizer = "adam"
lr = 0.003
backbone_params = {{ width = 0.25 }}

[[models]]
name = "dcue"
optimizer = "adam"
lr = 0.003
user_lr = 0.01
sampler = "popularity"
shared_negatives = true
max_epochs = 8
steps_per_epoch = 40
backbone_params = {{ width = 0.25 }}
"""


def mean_auc(tmp_path, share: float, seeds=(0, 1, 2)) -> dict[str, float]:
    path = tmp_path / f"leak-{share}.toml"
    path.write_text(textwrap.dedent(SUITE.format(share=share)))
    aucs: dict[str, list[float]] = {}
    for seed in seeds:
        suite = load_suite(path, default_registry(), [f"dataset.seed={seed}",
                                                      f"split.seed={seed}",
                                                      f"suite.seeds=[{seed}]"])
        out = tmp_path / f"out-{share}-{seed}"
        summary = run_suite(suite, out, show_progress=False)
        assert summary.exit_code == 0, summary.failures
        for line in (out / "results.jsonl").read_text().splitlines():
            r = json.loads(line)
            aucs.setdefault(r["model"]["id"], []).append(r["metrics"]["auc"])
    assert all(len(v) == len(seeds) for v in aucs.values())
    print(share, {k: np.round(v, 3).tolist() for k, v in aucs.items()})
    return {k: float(np.mean(v)) for k, v in aucs.items()}


@pytest.mark.slow
def test_audio_models_learn_when_audible_and_sit_at_chance_when_not(tmp_path):
    high = mean_auc(tmp_path, 0.9)
    assert high["popularity"] == 0.5
    assert high["wmf"] > high["dcue"] > high["popularity"]
    assert high["dcue"] > high["random"] + 0.08
    assert high["content-profile"] > 0.56 and high["wmf-regression"] > 0.56

    none = mean_auc(tmp_path, 0.0, seeds=(0, 1, 2, 3, 4))
    for model in ("content-profile", "wmf-regression", "dcue"):
        assert abs(none[model] - 0.5) <= 0.03, (model, none[model])
    assert none["wmf"] > 0.8  # the oracle still sees the test songs' interactions
