"""The issue-14 suites end to end on the published-dataset fixtures of issue 12: the user
cold-start models on the Deezer release (registration features, first-month songs) and
the sequential models on the Spotify sessions (one session per user: the last tracks are
held out)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import real_datasets as RD  # noqa: E402
import test_loader_deezer_coldstart as TDZ  # noqa: E402
import test_loader_mssd as TMS  # noqa: E402
from recbench_builtin.datasets import deezer_coldstart as dz  # noqa: E402
from recbench_builtin.datasets import mssd  # noqa: E402

COLDSTART_MODELS = """
[[models]]
name = "popularity"

[[models]]
name = "popularity-diverse"

[[models]]
name = "segment-popularity"
min_segment = 2

[[models]]
name = "deezer-semi"
factors = 2
clusters = 2
max_epochs = 3
use_categories = false     # official_split is the release's split, not a demographic

[[models]]
name = "deezer-personal"
factors = 2
max_epochs = 3
use_categories = false
"""

SEQUENTIAL_MODELS = """
[[models]]
name = "seq-popularity"

[[models]]
name = "last-item-sim"

[[models]]
name = "sasrec"
dim = 8
layers = 1
max_len = 5
max_epochs = 2
skip_loss = "skip-contrastive"

[[models]]
name = "gru4rec"
dim = 8
max_len = 5
max_epochs = 2
"""


def test_user_coldstart_suite_on_the_deezer_release(tmp_path, monkeypatch):
    root = TDZ.write_deezer(tmp_path / "deezer")
    for k in (0, 1):
        (tmp_path / f"k{k}").mkdir()
        rc, out, err = RD.run_suite(
            tmp_path / f"k{k}", monkeypatch, dz, root, split="cold-user-k",
            split_options=f"valid_share = 0.2\ntest_share = 0.3\nrevealed = {k}",
            models=COLDSTART_MODELS)
        assert rc == 0, err
        rows = RD.rows_of(out)
        assert len(rows) == 5 and all(r["status"] == "ok" for r in rows), err
        assert all(0.0 <= r["metrics"]["auc"] <= 1.0 for r in rows)
        deezer = [r for r in rows if r["model"]["name"] == "deezer-semi"][0]
        assert deezer["model"]["fit"]["uses"] == ["interactions", "user_features"]
        RD.check_leaderboard(out, "recommendation", "deezer-coldstart", "cold-user")


def test_sequential_suite_on_the_spotify_sessions(tmp_path, monkeypatch):
    root = TMS.write_mssd(tmp_path / "mssd")
    (tmp_path / "run").mkdir()
    rc, out, err = RD.run_suite(
        tmp_path / "run", monkeypatch, mssd, root, split="next-session",
        split_options='holdout = "tracks"\ntest_tracks = 2\nvalid_tracks = 0',
        task="sequential", task_options='metrics = ["hr@3", "mrr"]\nskip_k = 3',
        models=SEQUENTIAL_MODELS)
    assert rc == 0, err
    rows = RD.rows_of(out)
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows), err
    assert all(0.0 <= r["metrics"]["mrr"] <= 1.0 for r in rows)
    assert all(0.0 <= r["metrics"]["skip@3"] <= 1.0 for r in rows)  # skipped test tracks
    RD.check_leaderboard(out, "sequential", "mssd", "warm")
