"""synth-msd's logging propensities and reward oracle (issue 14 item 2): unset knobs leave
the data alone, the propensities are the draws' probabilities, the oracle's play
probabilities agree with the generated skips, and the folder format keeps the column."""

from __future__ import annotations

import numpy as np
import pytest

from recbench.components import LoadContext
from recbench.errors import ConfigError, DataError
from recbench_builtin.datasets.synth_msd import SynthMSD
from recbench_builtin.datasets.synth_oracle import RewardOracle


def _load(tmp_path, **opts):
    return SynthMSD(preset="tiny", **opts).load(LoadContext(cache_dir=str(tmp_path)))


def test_unset_knobs_leave_the_data_alone(tmp_path):
    base = _load(tmp_path, skip_strength=1.0)
    off = _load(tmp_path, skip_strength=1.0, log_propensities=False, logging_uniform=0.0)
    assert base.events.propensity is None and off.fingerprint == base.fingerprint
    on = _load(tmp_path, skip_strength=1.0, log_propensities=True)
    # the same log, now with its propensities (hashed): only the fingerprint moves
    for a in ("user", "song", "timestamp", "session", "skipped"):
        np.testing.assert_array_equal(getattr(on.events, a), getattr(base.events, a))
    assert (on.counts != base.counts).nnz == 0
    assert on.fingerprint != base.fingerprint
    assert _load(tmp_path, skip_strength=1.0, log_propensities=True,
                 logging_uniform=0.0).fingerprint == on.fingerprint


def test_knobs_need_their_mechanism():
    with pytest.raises(ConfigError, match="skip_strength"):
        SynthMSD(preset="tiny", log_propensities=True).validate()
    with pytest.raises(ConfigError, match="log_propensities"):
        SynthMSD(preset="tiny", skip_strength=1.0, logging_uniform=0.5).validate()


def test_propensities_are_the_draws_probabilities(tmp_path):
    """E over draws a ~ p of 1 / p(a) = the number of songs (full support): the mean of
    1 / propensity over the log finds it (bounded weights: half the draws uniform)."""
    d = _load(tmp_path, skip_strength=1.0, log_propensities=True, logging_uniform=0.5,
              sessions_per_user=20.0)
    inv = 1.0 / d.events.propensity
    se = inv.std() / np.sqrt(len(inv))
    assert abs(inv.mean() - d.n_songs) < 4 * se
    assert inv.max() <= 2 * d.n_songs + 1e-6  # p >= 0.5 / songs
    every = _load(tmp_path, skip_strength=1.0, log_propensities=True, logging_uniform=1.0)
    np.testing.assert_allclose(every.events.propensity, 1.0 / every.n_songs, rtol=1e-12)


@pytest.mark.parametrize("opts", [{"skip_strength": 2.0, "skip_prev_strength": 1.0},
                                  {"skip_strength": 2.0, "skip_cause": "aversion",
                                   "skip_prev_strength": 0.5}])
def test_oracle_play_probabilities_agree_with_the_generated_skips(tmp_path, opts):
    d = _load(tmp_path, log_propensities=True, logging_uniform=0.3, sessions_per_user=12.0,
              **opts)
    oracle = RewardOracle(d)
    p = oracle.play_probability(np.arange(len(d.events)))
    played = ~d.events.skipped
    edges = np.quantile(p, [0.2, 0.4, 0.6, 0.8])
    bins = np.searchsorted(edges, p)
    for b in range(5):
        m = bins == b
        se = np.sqrt((p[m] * (1 - p[m])).sum()) / m.sum()
        assert abs(played[m].mean() - p[m].mean()) < 4 * se + 1e-9, b
    assert p[bins == 4].mean() - p[bins == 0].mean() > 0.5  # the law is informative
    # the matrix form gives the same numbers for the logged tracks
    slots = np.arange(0, len(d.events), 97)
    full = oracle.play_probability(slots, np.arange(d.n_songs))
    np.testing.assert_allclose(full[np.arange(len(slots)), d.events.song[slots]], p[slots])


def test_oracle_refuses_a_log_without_propensities(tmp_path):
    with pytest.raises(DataError, match="log_propensities"):
        RewardOracle(_load(tmp_path, skip_strength=1.0))


def test_oracle_refuses_the_mood_skips_it_does_not_model(tmp_path):
    """Mood skips depend on the session's earlier tracks: the oracle's per-slot skip law
    would give a silently wrong true value, so it refuses (the task then has no oracle)."""
    d = _load(tmp_path, skip_strength=2.0, skip_cause="mood", log_propensities=True)
    assert d.events.propensity is not None
    with pytest.raises(DataError, match="skip_cause"):
        RewardOracle(d)


def test_propensity_column_round_trips_through_the_folder_format(tmp_path):
    from recbench.io.folder import write_dataset
    from recbench_builtin.datasets.folder import FolderDataset

    src = _load(tmp_path, skip_strength=1.0, log_propensities=True, logging_uniform=0.2)
    out = write_dataset(src, tmp_path / "folder")
    assert (out / "events.tsv").read_text().split("\n", 1)[0].endswith("\tpropensity")
    back = FolderDataset(root=str(out)).load(LoadContext(cache_dir=str(tmp_path)))
    np.testing.assert_array_equal(back.events.propensity, src.events.propensity)
    assert back.fingerprint == src.fingerprint
    # a propensity outside (0, 1] in a file: one line naming the file and the event
    text = (out / "events.tsv").read_text().split("\n")
    fields = text[1].split("\t")
    text[1] = "\t".join(fields[:-1] + ["1.5"])
    (out / "events.tsv").write_text("\n".join(text))
    with pytest.raises(DataError, match=r"events\.tsv: events\.propensity\[\d+\] = 1\.5"):
        FolderDataset(root=str(out)).load(LoadContext(cache_dir=str(tmp_path / "c2")))


class _FixedPolicy:
    """A context-free target policy drawn once, independent of every log."""

    def __init__(self, n_songs: int):
        z = np.random.default_rng(99).normal(size=n_songs)
        self.pi = np.exp(1.5 * z) / np.exp(1.5 * z).sum()

    def fit(self, ctx):
        pass

    def policy(self, users, songs):
        return np.broadcast_to(self.pi[songs] / self.pi[songs].sum(),
                               (len(users), len(songs))).copy()


def test_task_ips_is_unbiased_for_the_oracles_true_value_over_generated_logs(tmp_path):
    """The whole chain (logged propensities, the task's weights, the oracle's reward law):
    over 16 independently generated worlds, IPS - true value averages to 0 within 4
    standard errors, while the logging policy's own value is far from the target's."""
    from recbench.components import CellContext, FitContext
    from recbench_builtin.splits_users import ColdUserKSplit
    from recbench_builtin.tasks.off_policy import OffPolicyTask

    diffs, gaps = [], []
    for seed in range(16):
        d = SynthMSD(preset="tiny", seed=seed, skip_strength=1.0, log_propensities=True,
                     logging_uniform=0.5).load(LoadContext(cache_dir=str(tmp_path)))
        split = ColdUserKSplit(test_share=0.5).split(d, seed)
        model = _FixedPolicy(d.n_songs)
        ctx = CellContext(dataset=d, split=split, model=model, metrics=[],
                          fit=FitContext(dataset=d, split=split, seed=0), seed=0, bootstrap=0)
        out = OffPolicyTask(sessions=6).run(ctx)
        diffs.append(out.metrics["ips"] - out.metrics["true_value"])
        gaps.append(out.diagnostics["logged_value"] - out.metrics["true_value"])
    diffs = np.asarray(diffs)
    assert abs(diffs.mean()) < 4 * diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert np.mean(gaps) > 10 * diffs.std(ddof=1) / np.sqrt(len(diffs))
