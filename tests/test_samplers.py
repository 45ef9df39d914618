"""Built-in negative samplers: distributions, exclusion of positives, two-stage top-n."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recbench.registry import build_registry


@pytest.fixture(scope="module")
def registry():
    return build_registry()


def _train(n_users=50, n_songs=30, seed=0):
    rng = np.random.default_rng(seed)
    # song j played by a number of users that grows with j (some songs unplayed)
    dense = np.zeros((n_users, n_songs), dtype=np.float32)
    for j in range(n_songs):
        k = min(n_users, j * 2)
        dense[rng.choice(n_users, size=k, replace=False), j] = rng.integers(1, 5, size=k)
    return sp.csr_matrix(dense)


def test_uniform_over_given_songs(registry):
    s = registry.create("sampler", "uniform")
    songs = np.array([3, 5, 7, 11])
    s.prepare(_train(), songs)
    out = s.sample(np.arange(2000), 5, np.random.default_rng(0))
    assert out.shape == (2000, 5) and set(np.unique(out)) == set(songs)
    freq = np.array([(out == j).mean() for j in songs])
    assert np.abs(freq - 0.25).max() < 0.01


def test_popularity_frequencies_match_power(registry):
    train = _train()
    songs = np.arange(train.shape[1])
    s = registry.create("sampler", "popularity")
    s.prepare(train, songs)
    draws = s.sample(np.zeros(20000, dtype=int), 20, np.random.default_rng(1)).ravel()
    listeners = np.asarray((train > 0).sum(axis=0)).ravel().astype(float)
    expected = listeners ** 0.75 / (listeners ** 0.75).sum()
    observed = np.bincount(draws, minlength=len(songs)) / draws.size
    assert np.abs(observed - expected).max() < 0.002  # 400,000 draws: sd <= 0.0008
    assert observed[0] == 0  # song 0 has no training listener
    # chi-square goodness of fit over songs with listeners
    from scipy.stats import chisquare
    m = expected > 0
    counts = np.bincount(draws, minlength=len(songs))[m]
    assert chisquare(counts, expected[m] * draws.size).pvalue > 1e-3


def test_popularity_exponent_zero_is_uniform_over_played(registry):
    train = _train()
    s = registry.create("sampler", "popularity", exponent=0.0)
    s.prepare(train, np.arange(train.shape[1]))
    played = np.asarray((train > 0).sum(axis=0)).ravel() > 0
    np.testing.assert_allclose(s.probabilities[played], 1 / played.sum())


# Excluding positives and determinism under a seed: SamplerContract in
# tests/contracts/test_contract_audio.py.


def test_two_stage_keeps_top_scored(registry):
    train = _train()
    songs = np.arange(train.shape[1])
    s = registry.create("sampler", "two-stage", pool_size=12)
    s.prepare(train, songs)
    users = np.array([0, 1, 2])
    seen = {}

    def scorer(u, cands):
        seen["pool"] = cands.copy()
        # user 0 likes high song ids, user 1 low ids, user 2 ids near 15
        return np.stack([cands * 1.0, -cands * 1.0, -np.abs(cands - 15.0)])[: len(u)]

    out = s.sample(users, 3, np.random.default_rng(4), scorer=scorer)
    pool = seen["pool"]
    assert out.shape == (3, 3) and len(pool) == 12
    assert list(out[0]) == sorted(pool, reverse=True)[:3]
    assert list(out[1]) == sorted(pool)[:3]
    ref2 = pool[np.argsort(np.abs(pool - 15.0), kind="stable")][:3]
    assert sorted(np.abs(out[2] - 15)) == sorted(np.abs(ref2 - 15))


def test_two_stage_without_scorer_falls_back(registry):
    train = _train()
    s = registry.create("sampler", "two-stage")
    songs = np.array([1, 2, 3])
    s.prepare(train, songs)
    out = s.sample(np.arange(100), 7, np.random.default_rng(0))
    assert out.shape == (100, 7) and set(np.unique(out)) <= set(songs)


def test_positive_lookup_table_matches_binary_search(registry, monkeypatch):
    """The users x songs bool table (small data) answers as the sorted-key search does,
    and both agree with the matrix itself."""
    import recbench_builtin.samplers as S

    train = _train(seed=3)
    songs = np.arange(train.shape[1])
    dense_s = registry.create("sampler", "uniform", exclude_positives=True)
    dense_s.prepare(train, songs)
    monkeypatch.setattr(S, "_DENSE_LOOKUP_MAX", 0)
    search_s = registry.create("sampler", "uniform", exclude_positives=True)
    search_s.prepare(train, songs)
    assert dense_s._pos_dense is not None and search_s._pos_dense is None
    rng = np.random.default_rng(0)
    users = rng.integers(0, train.shape[0], size=40)
    drawn = rng.integers(0, train.shape[1], size=(40, 25))
    truth = train.toarray()[users[:, None], drawn] > 0
    assert truth.any() and not truth.all()
    np.testing.assert_array_equal(dense_s._is_positive(users, drawn), truth)
    np.testing.assert_array_equal(search_s._is_positive(users, drawn), truth)


def test_select_by_weight_partial_sort_equals_full_lexsort():
    """The partial-sort path returns exactly the first n columns of the full lexsort
    (finite keys first, then decreasing Gumbel-perturbed log-weight), on rows with and
    without -inf entries and with fewer finite entries than n (the lexsort path)."""
    from recbench_builtin.samplers import select_by_weight

    for trial in range(60):
        r = np.random.default_rng(trial)
        rows, cols = int(r.integers(1, 20)), int(r.integers(2, 60))
        n = int(r.integers(1, cols + 1))
        lw = r.normal(size=(rows, cols)) * float(r.choice([0.0, 1.0, 30.0]))
        lw[r.random((rows, cols)) < float(r.choice([0.0, 0.3, 0.9]))] = -np.inf
        got = select_by_weight(lw, n, np.random.default_rng(trial + 100))
        g = np.random.default_rng(trial + 100).gumbel(size=lw.shape)
        fin = np.isfinite(lw)
        keys = np.where(fin, lw + g, g)
        np.testing.assert_array_equal(got, np.lexsort((-keys, ~fin), axis=-1)[:, :n])
