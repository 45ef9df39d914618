"""Tuning: search spaces and [tuning] validated like every other key; the trial's view of
a split (test labels hidden, validation in the test's place); config hashes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.errors import ConfigError
from recbench.io.dataset import Split
from recbench.registry import build_registry
from recbench.suite import load_suite
from recbench.tuning import TestLabelsHidden, fit_view, validation_view
from recbench.tuning.space import grid_points, grid_size, suggest_point

HEAD = """
[suite]
name = "t"
bootstrap = 0
[dataset]
name = "tiny"
[split]
name = "warm"
[[tasks]]
name = "recommendation"
metrics = ["auc", "ndcg@5", "popularity@5"]
"""

MODEL = """
[[models]]
name = "mf-bpr"
max_epochs = 2
"""


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def load(tmp_path, registry, text):
    path = tmp_path / "s.toml"
    path.write_text(HEAD + text)
    return load_suite(path, registry)


def error(tmp_path, registry, text) -> str:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, registry, text)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(tmp_path / "s.toml"))
    return msg


def test_a_valid_space_is_converted_to_each_parameters_type(tmp_path, registry):
    suite = load(tmp_path, registry, """
[tuning]
trials = 4
metric = "popularity@5"
""" + MODEL + """
[models.search]
lr = {low = 1e-4, high = 1e-1, log = true}
dim = {choices = [8, 16.0]}
batch_size = {low = 64, high = 256, step = 64}
""")
    t = suite.models[0].tuning
    assert t["space"] == {"lr": {"low": 1e-4, "high": 0.1, "log": True, "step": None},
                          "dim": {"choices": [8, 16]},
                          "batch_size": {"low": 64, "high": 256, "log": False, "step": 64}}
    assert type(t["space"]["dim"]["choices"][1]) is int
    # popularity is lower-is-better: the search minimises it
    assert (t["metric"], t["task"], t["direction"]) == ("popularity@5", "recommendation",
                                                        "minimize")
    assert t["budget"] == {"trials": 4, "seconds": None} and t["sampler"] == "tpe"
    assert grid_points({"b": t["space"]["batch_size"]}) == {"b": [64, 128, 192, 256]}
    assert grid_size(t["space"]) is None  # lr is a float range without a step


def test_the_metric_defaults_to_the_tasks_primary_and_maximises(tmp_path, registry):
    suite = load(tmp_path, registry, "[tuning]\nseconds = 30\n" + MODEL
                 + "[models.search]\nlr = {low = 0.001, high = 0.01}\n")
    t = suite.models[0].tuning
    assert (t["metric"], t["direction"], t["budget"]) == (
        "auc", "maximize", {"trials": None, "seconds": 30.0})


@pytest.mark.parametrize("search, key, words", [
    ("lrr = {low = 0.1, high = 1.0}", "models[0].search.lrr", "not a declared parameter"),
    ("lr = {low = -1.0, high = 0.1}", "models[0].search.lr.low", "must be >= 0"),
    ("dim = {low = 8, high = 16.5}", "models[0].search.dim.high", "expected int"),
    ("dim = {low = 16, high = 8}", "models[0].search.dim", "`low` must be < `high`"),
    ("lr = {low = 0.0, high = 0.1, log = true}", "models[0].search.lr.low", "needs `low` > 0"),
    ("lr = {low = 0.001, high = 0.1, log = true, step = 0.01}", "models[0].search.lr.step",
     "cannot be combined"),
    ("dim = {low = 8, high = 64, step = 1.5}", "models[0].search.dim.step",
     "positive integer"),
    ("dim = {choices = []}", "models[0].search.dim.choices", "non-empty"),
    ("dim = {choices = [8, 8]}", "models[0].search.dim.choices", "duplicates"),
    ("dim = {choices = [8, \"x\"]}", "models[0].search.dim.choices[1]", "expected int"),
    ("dim = [8, 16]", "models[0].search.dim", "expected {choices"),
    ("lr = {low = 0.1, high = 1.0, scale = 2}", "models[0].search.lr", "unknown key"),
])
def test_a_bad_dimension_names_the_file_and_key(tmp_path, registry, search, key, words):
    msg = error(tmp_path, registry, "[tuning]\ntrials = 2\n" + MODEL
                + f"[models.search]\n{search}\n")
    assert f": {key}: " in msg and words in msg, msg


@pytest.mark.parametrize("tuning, search, key, words", [
    ("", "lr = {low = 0.001, high = 0.01}", "models[0].search", "needs a [tuning] section"),
    ("[tuning]\nsampler = \"tpe\"\n", "lr = {low = 0.001, high = 0.01}", "tuning",
     "`trials` and/or `seconds`"),
    ("[tuning]\ntrials = 2\n", None, "tuning", "no model has a `search`"),
    ("[tuning]\ntrials = 0\n", "lr = {low = 0.001, high = 0.01}", "tuning.trials", ">= 1"),
    ("[tuning]\ntrials = 2\nsampler = \"tp\"\n", "lr = {low = 0.001, high = 0.01}",
     "tuning.sampler", "did you mean 'tpe'"),
    ("[tuning]\ntrials = 2\nmetric = \"recall@10\"\n", "lr = {low = 0.001, high = 0.01}",
     "tuning.metric", "not computed by any task"),
    ("[tuning]\ntrials = 2\nmetric = \"aucc\"\n", "lr = {low = 0.001, high = 0.01}",
     "tuning.metric", "Unknown"),
    ("[tuning]\ntrials = 2\ntask = \"tagging\"\n", "lr = {low = 0.001, high = 0.01}",
     "tuning.task", "names no task"),
    ("[tuning]\ntrials = 2\nsampler = \"grid\"\n", "lr = {low = 0.001, high = 0.01}",
     "models[0].search", "has no grid"),
    ("[tuning]\ntrials = 2\n[tuning.per_model.other]\ntrials = 3\n",
     "lr = {low = 0.001, high = 0.01}", "tuning.per_model.other", "names no tuned model"),
    ("[tuning]\ntrials = 2\n[tuning.per_model.mf-bpr]\nsampler = \"random\"\n",
     "lr = {low = 0.001, high = 0.01}", "tuning.per_model.mf-bpr.sampler", "only `trials`"),
])
def test_a_bad_tuning_section_names_the_file_and_key(tmp_path, registry, tuning, search,
                                                      key, words):
    text = tuning + MODEL + (f"[models.search]\n{search}\n" if search else "")
    msg = error(tmp_path, registry, text)
    assert f": {key}: " in msg and words.lower() in msg.lower(), msg


def test_an_oracle_cannot_be_tuned(tmp_path, registry):
    msg = error(tmp_path, registry, """[tuning]
trials = 2
[[models]]
name = "wmf"
[models.search]
factors = {choices = [8, 16]}
""")
    assert "models[0].search" in msg and "oracle" in msg


def test_budget_and_space_are_part_of_the_config_hash(tmp_path, registry):
    base = MODEL + "[models.search]\nlr = {low = 0.001, high = 0.01}\n"
    hand = load(tmp_path, registry, MODEL).models[0]
    a = load(tmp_path, registry, "[tuning]\ntrials = 4\n" + base).models[0]
    b = load(tmp_path, registry, "[tuning]\ntrials = 4\n" + base).models[0]
    c = load(tmp_path, registry, "[tuning]\ntrials = 5\n" + base).models[0]
    d = load(tmp_path, registry, "[tuning]\ntrials = 4\n" + base.replace("0.01", "0.1")
             ).models[0]
    assert a.options == hand.options
    assert a.config_hash == b.config_hash
    assert len({hand.config_hash, a.config_hash, c.config_hash, d.config_hash}) == 4
    assert hand.to_dict().get("tuning") is None and a.to_dict()["tuning"] == a.tuning


def test_only_per_model_gives_a_model_another_budget(tmp_path, registry):
    suite = load(tmp_path, registry, """[tuning]
trials = 4
seconds = 60
[tuning.per_model.b]
trials = 9
""" + MODEL + "id = \"a\"\n[models.search]\nlr = {low = 0.001, high = 0.01}\n"
        + MODEL + "id = \"b\"\n[models.search]\nlr = {low = 0.001, high = 0.01}\n")
    assert [m.tuning["budget"] for m in suite.models] == [
        {"trials": 4, "seconds": 60.0}, {"trials": 9, "seconds": 60.0}]


def test_suggest_proposes_points_of_the_space():
    import optuna

    space = {"lr": {"low": 1e-3, "high": 1e-1, "log": True, "step": None},
             "dim": {"choices": [8, 16]}, "n": {"low": 2, "high": 8, "log": False, "step": 2}}
    trial = optuna.trial.FixedTrial({"lr": 0.01, "dim": 16, "n": 6})
    assert suggest_point(trial, space) == {"lr": 0.01, "dim": 16, "n": 6}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        p = suggest_point(study.ask(), space)
        assert 1e-3 <= p["lr"] <= 1e-1 and p["dim"] in (8, 16) and p["n"] in (2, 4, 6, 8)


def _split() -> Split:
    # 4 users x 5 songs; valid interactions of users 1 and 3 only
    train = sp.csr_matrix(np.array([[1, 0, 0, 0, 0], [0, 2, 0, 0, 0],
                                    [0, 0, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=np.float32))
    valid = sp.csr_matrix(np.array([[0, 0, 0, 0, 0], [0, 0, 0, 1, 0],
                                    [0, 0, 0, 0, 0], [0, 0, 0, 0, 3]], dtype=np.float32))
    test = sp.csr_matrix(np.array([[0, 0, 0, 0, 1], [1, 0, 0, 0, 0],
                                   [0, 0, 0, 1, 0], [0, 0, 0, 0, 0]], dtype=np.float32))
    return Split(name="warm", seed=0, protocol="warm", train=train, valid=valid, test=test,
                 train_songs=np.arange(5), valid_songs=np.array([3, 4]),
                 test_songs=np.array([0, 3, 4]), train_users=np.arange(4),
                 test_users=np.array([0, 1, 2]))


@pytest.mark.parametrize("use", [
    lambda s: s.test.toarray(), lambda s: s.test[0], lambda s: s.train + s.test,
    lambda s: np.asarray(s.test), lambda s: s.test.sum(), lambda s: s.test.nnz,
    lambda s: len(s.test),
])
def test_a_trial_cannot_read_test_labels(use):
    view = fit_view(_split())
    with pytest.raises(TestLabelsHidden, match="split.test was read during a tuning trial"):
        use(view)
    assert view.train is _split().train or (view.train != _split().train).nnz == 0
    assert list(view.test_songs) == [0, 3, 4] and list(view.test_users) == [0, 1, 2]


def test_the_validation_view_puts_valid_in_the_test_place():
    s = _split()
    v = validation_view(s)
    assert (v.test != s.valid).nnz == 0
    assert list(v.test_songs) == [3, 4] and list(v.test_users) == [1, 3]
    assert v.valid.nnz == 0 and v.valid.shape == s.valid.shape
    assert (v.train != s.train).nnz == 0
    assert (s.test != _split().test).nnz == 0  # the real split is untouched


def test_the_leaderboard_shows_each_rows_budget():
    from recbench.leaderboard.board import build, render_markdown
    from test_leaderboard import row

    tuned = []
    for seed, (trials, chosen) in enumerate([(4, 0.01), (4, 0.02)]):
        r = row("t", seed, 0.8, [0.7, 0.9])
        r["model"]["tuning"] = {"sampler": "tpe", "budget": {"trials": 4, "seconds": None},
                                "metric": "auc", "trials_run": trials, "best_value": 0.81,
                                "chosen": {"lr": chosen}}
        tuned.append(r)
    other = row("u", 0, 0.7, [0.6, 0.8])
    other["model"]["tuning"] = {"sampler": "tpe", "budget": {"trials": 9, "seconds": 60},
                                "metric": "auc", "trials_run": 9, "best_value": 0.75,
                                "chosen": {"lr": 0.1}}
    lb = build(tuned + [other, row("h", 0, 0.6, [0.5, 0.7])])
    entries = {e["model_id"]: e for e in lb["tasks"]["recommendation"]["rows"]}
    assert entries["t"]["setting"] == "cold-item; tuned (tpe, budget 4 trials)"
    assert entries["u"]["setting"] == "cold-item; tuned (tpe, budget 9 trials or 60 s)"
    assert entries["h"]["setting"] == "cold-item; hand-set"
    assert entries["t"]["tuning"]["chosen"] == [{"lr": 0.01}, {"lr": 0.02}]
    assert entries["h"]["tuning"] is None
    assert "budget 9 trials or 60 s" in render_markdown(lb)
    # a board without tuned rows says nothing about tuning
    plain = build([row("h", 0, 0.6, [0.5, 0.7])])
    assert plain["tasks"]["recommendation"]["rows"][0]["setting"] == "cold-item"


def test_a_trials_dataset_holds_no_test_interaction_in_counts_or_events():
    from recbench.io.dataset import Dataset, Events
    from recbench.tuning.protocol import trial_dataset

    s = _split()
    counts = (s.train + s.valid + s.test).tocsr()
    # one event per played pair, plus a skip of song 2 by user 0 (not a test pair)
    pairs = sorted(zip(*counts.nonzero())) + [(0, 2)]
    pairs.sort()
    user = np.array([u for u, _ in pairs], dtype=np.int64)
    song = np.array([i for _, i in pairs], dtype=np.int64)
    skipped = np.array([(u, i) == (0, 2) for u, i in pairs])
    events = Events(user=user, song=song, timestamp=np.arange(len(pairs), dtype=float),
                    session=np.arange(len(pairs), dtype=np.int64), skipped=skipped)
    ds = Dataset(name="d", counts=counts, user_ids=np.array(list("abcd")),
                 song_ids=np.array(list("vwxyz")), events=events)
    t = trial_dataset(ds, s)
    assert (t.counts != (s.train + s.valid)).nnz == 0
    assert t.fingerprint == ds.fingerprint
    kept = set(zip(t.events.user.tolist(), t.events.song.tolist()))
    # test pairs (0,4), (1,0), (2,3) are gone; train, valid and the skip remain
    assert kept == {(0, 0), (0, 2), (1, 1), (1, 3), (2, 2), (3, 0), (3, 4)}
    assert t.events.skipped.tolist() == [(u, i) == (0, 2) for u, i in sorted(kept)]
    assert len(ds.events) == 10  # the real dataset is untouched
