"""Metric maths against sklearn and hand-computed cases."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from recbench.components import MetricInput
from recbench.errors import ConfigError, DataError
from recbench.metrics import (average_precision_at_k, catalogue_coverage, hits_at_k,
                              mean_popularity_at_k, n_excluded, ndcg_at_k, precision_at_k,
                              recall_at_k, roc_auc_per_user, top_k)


def _ref_auc(scores, labels, mask):
    """sklearn per row over the row's candidates; NaN where a class is missing."""
    out = np.full(len(scores), np.nan)
    for i in range(len(scores)):
        keep = np.ones(scores.shape[1], bool) if mask is None else mask[i]
        y, s = labels[i][keep].astype(bool), scores[i][keep]
        if 0 < y.sum() < y.size:
            out[i] = roc_auc_score(y, s)
    return out


@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.float64, np.int16])
@pytest.mark.parametrize("masked", [False, True])
def test_auc_matches_sklearn_with_ties(dtype, masked):
    rng = np.random.default_rng(0)
    scores = rng.integers(-3, 4, (257, 30)).astype(dtype)  # few distinct values: many ties
    labels = rng.random((257, 30)) < 0.3
    mask = rng.random((257, 30)) < 0.7 if masked else None
    got = roc_auc_per_user(scores, labels, mask, chunk=40)
    ref = _ref_auc(scores, labels, mask)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=1e-9, equal_nan=True)


def test_auc_exact_on_float64_not_representable_in_float32():
    rng = np.random.default_rng(1)
    # distinct float64 values that collapse to the same float32: the fast path must not be used
    scores = 1.0 + rng.integers(0, 4, (64, 50)) * 1e-12
    labels = rng.random((64, 50)) < 0.4
    got = roc_auc_per_user(scores, labels)
    np.testing.assert_allclose(got, _ref_auc(scores, labels, None), atol=1e-9, equal_nan=True)


def test_auc_continuous_scores_and_infinities():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(100, 80))
    scores[:, :5] = np.inf
    scores[:, 5:10] = -np.inf
    scores[:, 10] = -0.0
    scores[:, 11] = 0.0
    labels = rng.random((100, 80)) < 0.2
    got = roc_auc_per_user(scores, labels)
    finite = np.clip(scores, -1e300, 1e300)  # same order and ties; sklearn rejects inf
    np.testing.assert_allclose(got, _ref_auc(finite, labels, None), atol=1e-9)


def test_auc_masked_scores_do_not_matter():
    rng = np.random.default_rng(3)
    scores = rng.random((20, 15))
    labels = rng.random((20, 15)) < 0.4
    mask = rng.random((20, 15)) < 0.6
    other = np.where(mask, scores, rng.choice([np.inf, -np.inf, np.nan, 0.5], size=scores.shape))
    # masked-out positives are ignored as well
    labels2 = labels | ~mask
    np.testing.assert_array_equal(roc_auc_per_user(scores, labels, mask),
                                  roc_auc_per_user(other, labels2, mask))


def test_auc_hand_computed_and_undefined_rows():
    scores = np.array([[0.1, 0.4, 0.35, 0.8],
                       [1.0, 1.0, 1.0, 1.0],
                       [0.3, 0.2, 0.1, 0.0],
                       [0.3, 0.2, 0.1, 0.0]])
    labels = np.array([[0, 0, 1, 1],
                       [1, 0, 0, 0],
                       [0, 0, 0, 0],   # no positive
                       [1, 1, 1, 1]])  # no negative
    got = roc_auc_per_user(scores, labels)
    assert got[0] == pytest.approx(0.75)  # pairs: (0.35>0.1), (0.35<0.4), (0.8>both) -> 3/4
    assert got[1] == pytest.approx(0.5)  # all tied
    assert np.isnan(got[2]) and np.isnan(got[3])
    assert n_excluded(got) == 2
    # mask leaves row 0 with one positive (0.8) and one negative (0.4)
    mask = np.array([[False, True, False, True]] + [[True] * 4] * 3)
    assert roc_auc_per_user(scores, labels, mask)[0] == 1.0


def test_auc_rejects_nan_scores_and_bad_shapes():
    scores = np.array([[0.1, np.nan], [0.2, 0.3]])
    labels = np.array([[1, 0], [0, 1]])
    with pytest.raises(DataError, match="NaN"):
        roc_auc_per_user(scores, labels)
    assert roc_auc_per_user(scores, labels, np.array([[True, False], [True, True]]))[1] == 1.0
    with pytest.raises(DataError, match="same shape"):
        roc_auc_per_user(scores, labels[:1])


def test_auc_plugin():
    from recbench_builtin.metrics import AUC

    rng = np.random.default_rng(4)
    scores = rng.random((30, 12)).astype(np.float32)
    labels = rng.random((30, 12)) < 0.3
    m = AUC()
    assert m.name == "auc" and m.higher_is_better and not m.needs_k
    values = m.per_user(MetricInput(scores, labels, None, None))
    ref = _ref_auc(scores, labels, None)
    assert m.reduce(values) == pytest.approx(np.nanmean(ref), abs=1e-12)


# --------------------------------------------------------------------------- top-K metrics


def _metrics_of_order(lab: np.ndarray, k: int) -> np.ndarray:
    """[precision, recall, ndcg, ap] of one concrete ranking (labels in rank order)."""
    n_pos, top = lab.sum(), lab[:k].astype(float)
    disc = 1 / np.log2(np.arange(2, top.size + 2))
    ideal = (1 / np.log2(np.arange(2, min(k, n_pos) + 2))).sum()
    hits_upto = np.cumsum(top)
    ap = (top * hits_upto / np.arange(1, top.size + 1)).sum() / min(k, n_pos)
    return np.array([top.sum() / k, top.sum() / n_pos, (top * disc).sum() / ideal, ap])


def _expected_over_tie_orders(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Brute force: the metrics averaged over every order of the tied scores."""
    groups = [np.flatnonzero(scores == v) for v in sorted(set(scores), reverse=True)]
    total, count = 0.0, 0
    for perm in itertools.product(*[itertools.permutations(g) for g in groups]):
        total = total + _metrics_of_order(labels[np.concatenate(perm)], k)
        count += 1
    return total / count


AT_K = (precision_at_k, recall_at_k, ndcg_at_k, average_precision_at_k)


def test_at_k_metrics_are_the_expectation_over_tie_orders():
    rng = np.random.default_rng(10)
    checked = 0
    for _ in range(150):
        n = int(rng.integers(2, 8))
        scores = rng.integers(0, 3, n).astype(float)
        labels = rng.random(n) < 0.4
        mask = rng.random(n) < 0.8
        k = int(rng.integers(1, 9))
        if not labels[mask].any():
            continue
        ref = _expected_over_tie_orders(scores[mask], labels[mask], k)
        got = [f(scores[None], labels[None], k, mask[None])[0] for f in AT_K]
        np.testing.assert_allclose(got, ref, atol=1e-12)
        checked += 1
    assert checked > 80


@pytest.mark.parametrize("k", [1, 3, 10, 50])
@pytest.mark.parametrize("masked", [False, True])
def test_ndcg_matches_sklearn_with_ties(k, masked):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 5, (120, 25)).astype(np.float32)  # heavy ties
    labels = rng.random((120, 25)) < 0.25
    mask = rng.random((120, 25)) < 0.75 if masked else None
    got = ndcg_at_k(scores, labels, k, mask, chunk=17)
    for i in range(len(scores)):
        keep = np.ones(25, bool) if mask is None else mask[i]
        y, s = labels[i][keep], scores[i][keep]
        if not y.any():
            assert np.isnan(got[i])
            continue
        if y.size < 2:  # sklearn refuses a single document; NDCG of one positive is 1
            assert got[i] == 1.0
            continue
        ref = ndcg_score(y[None].astype(float), s[None], k=k, ignore_ties=False)
        assert got[i] == pytest.approx(ref, abs=1e-9)


def test_tie_free_metrics_match_a_plain_ranking():
    rng = np.random.default_rng(11)
    scores = rng.normal(size=(200, 60))
    labels = rng.random((200, 60)) < 0.15
    order = np.argsort(-scores, axis=1)
    for k in (1, 5, 20, 60, 100):
        for i in range(len(scores)):
            if not labels[i].any():
                continue
            ref = _metrics_of_order(labels[i][order[i]], k)
            got = [f(scores[i:i + 1], labels[i:i + 1], k)[0] for f in AT_K]
            np.testing.assert_allclose(got, ref, atol=1e-12)


def test_at_k_hand_computed():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])
    labels = np.array([[1, 0, 1, 0, 1]])
    assert precision_at_k(scores, labels, 3)[0] == pytest.approx(2 / 3)
    assert recall_at_k(scores, labels, 3)[0] == pytest.approx(2 / 3)
    assert hits_at_k(scores, labels, 3)[0] == pytest.approx(2)
    # AP@3 = (1/1 + 2/3) / min(3, 3); AP@5 = (1 + 2/3 + 3/5) / 3
    assert average_precision_at_k(scores, labels, 3)[0] == pytest.approx((1 + 2 / 3) / 3)
    assert average_precision_at_k(scores, labels, 5)[0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # AP@2 normalised by min(K, n_pos) = 2: (1/1) / 2
    assert average_precision_at_k(scores, labels, 2)[0] == pytest.approx(0.5)
    dcg = 1 + 1 / np.log2(4)
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(scores, labels, 3)[0] == pytest.approx(dcg / ideal)
    # K beyond the candidates: precision still divides by K
    assert precision_at_k(scores, labels, 10)[0] == pytest.approx(3 / 10)
    # one tie group straddling the cutoff: 2 slots of a 4-song group holding 1 positive
    tied = np.array([[5.0, 1, 1, 1, 1]])
    lab = np.array([[0, 1, 0, 0, 0]])
    assert hits_at_k(tied, lab, 3)[0] == pytest.approx(0.5)
    assert recall_at_k(tied, lab, 3)[0] == pytest.approx(0.5)


def test_constant_scores_give_chance_values():
    rng = np.random.default_rng(12)
    labels = rng.random((50, 40)) < 0.2
    labels[:, 0] = True
    scores = np.zeros((50, 40), dtype=np.float32)
    n_pos = labels.sum(axis=1)
    np.testing.assert_allclose(roc_auc_per_user(scores, labels), 0.5)
    np.testing.assert_allclose(precision_at_k(scores, labels, 10), n_pos / 40)
    np.testing.assert_allclose(recall_at_k(scores, labels, 10), 10 / 40)


def test_users_without_positive_or_candidate_are_excluded():
    scores = np.arange(12, dtype=float).reshape(3, 4)
    labels = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=bool)
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=bool)
    for f in AT_K:
        v = f(scores, labels, 2, mask)
        assert np.isnan(v[1]) and np.isnan(v[2]) and not np.isnan(v[0])
        assert n_excluded(v) == 2
    pop = mean_popularity_at_k(scores, np.ones(4), 2, mask)
    assert np.isnan(pop[2]) and n_excluded(pop) == 1


def test_results_do_not_depend_on_chunking_or_dtype_path():
    rng = np.random.default_rng(13)
    scores = rng.integers(0, 6, (300, 40)).astype(np.float64)
    labels = rng.random((300, 40)) < 0.2
    mask = rng.random((300, 40)) < 0.9
    wide = scores * (1 + 1e-13)  # not representable in float32: takes the dense-rank path
    for f in (roc_auc_per_user, lambda s, y, m, chunk: ndcg_at_k(s, y, 7, m, chunk=chunk),
              lambda s, y, m, chunk: average_precision_at_k(s, y, 7, m, chunk=chunk)):
        a = f(scores, labels, mask, chunk=1000)
        np.testing.assert_allclose(f(scores, labels, mask, chunk=7), a, atol=1e-12)
        np.testing.assert_allclose(f(wide, labels, mask, chunk=64), a, atol=1e-12)
        np.testing.assert_allclose(f(scores.astype(np.float32), labels, mask, chunk=64), a,
                                   atol=1e-12)


def test_empty_block_and_bad_k():
    assert roc_auc_per_user(np.zeros((0, 5)), np.zeros((0, 5))).shape == (0,)
    assert ndcg_at_k(np.zeros((0, 5)), np.zeros((0, 5)), 3).shape == (0,)
    with pytest.raises(ConfigError, match="positive integer"):
        ndcg_at_k(np.zeros((2, 5)), np.ones((2, 5)), 0)


def test_top_k_is_deterministic_with_ties_by_position():
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0],
                       [0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_array_equal(top_k(scores, 3), [[1, 2, 4], [0, 1, 2]])
    np.testing.assert_array_equal(top_k(scores, 9), [[1, 2, 4, 3, 0], [0, 1, 2, 3, 4]])
    mask = np.array([[True, False, True, True, False], [False, False, True, False, False]])
    np.testing.assert_array_equal(top_k(scores, 3, mask), [[2, 3, 0], [2, -1, -1]])
    rng = np.random.default_rng(14)
    s = rng.normal(size=(40, 30))
    np.testing.assert_array_equal(top_k(s, 6, chunk=7), np.argsort(-s, axis=1)[:, :6])


def test_catalogue_coverage_and_popularity():
    top = np.array([[0, 1], [1, 2], [1, -1]])
    assert catalogue_coverage(top, 10) == pytest.approx(0.3)
    scores = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    pop = np.array([10.0, 20.0, 30.0, 40.0])
    # row 1 ties everything: the expected mean popularity is the catalogue mean
    np.testing.assert_allclose(mean_popularity_at_k(scores, pop, 2), [15.0, 25.0])
    mask = np.array([[False, True, True, True], [True] * 4])
    np.testing.assert_allclose(mean_popularity_at_k(scores, pop, 2, mask), [25.0, 25.0])


# --------------------------------------------------------------------------- plugins


def _plugin_classes():
    from recbench_builtin import metrics as builtin

    registered = []
    builtin.recbench_register_metrics(registered.append)
    return {cls.name: cls for cls in registered}


def test_plugins_registered_with_exact_variants():
    classes = _plugin_classes()
    assert set(classes) == {"auc", "ndcg", "recall", "precision", "map", "coverage",
                            "popularity"}
    assert not classes["auc"].needs_k
    assert all(classes[n].needs_k for n in classes if n != "auc")
    assert not classes["popularity"].higher_is_better
    assert "per-user" in classes["auc"].label and "not pooled" in classes["auc"].description
    assert "min(K, positives)" in classes["map"].description
    assert "not min(K, positives)" in classes["recall"].description
    for cls in classes.values():
        assert cls.label and cls.description


def test_plugins_match_array_functions():
    classes = _plugin_classes()
    rng = np.random.default_rng(15)
    scores = rng.integers(0, 9, (80, 30)).astype(np.float64)
    labels = rng.random((80, 30)) < 0.2
    mask = rng.random((80, 30)) < 0.9
    pop = rng.integers(1, 100, 30).astype(float)
    block = MetricInput(scores, labels, mask, 5, popularity=pop)
    expect = {"ndcg": ndcg_at_k(scores, labels, 5, mask),
              "recall": recall_at_k(scores, labels, 5, mask),
              "precision": precision_at_k(scores, labels, 5, mask),
              "map": average_precision_at_k(scores, labels, 5, mask),
              "popularity": mean_popularity_at_k(scores, pop, 5, mask)}
    for name, ref in expect.items():
        np.testing.assert_array_equal(classes[name]().per_user(block), ref)
    block.k = None
    with pytest.raises(ConfigError, match="needs a cutoff"):
        classes["ndcg"]().per_user(block)
    block.k, block.popularity = 5, None
    with pytest.raises(ConfigError, match="popularity"):
        classes["popularity"]().per_user(block)


def test_map_500_and_coverage_plugin():
    classes = _plugin_classes()
    rng = np.random.default_rng(16)
    scores = rng.random((60, 700))
    labels = rng.random((60, 700)) < 0.05
    m = classes["map"]()
    v = m.per_user(MetricInput(scores, labels, None, 500))
    assert m.reduce(v) == pytest.approx(np.nanmean(average_precision_at_k(scores, labels, 500)))
    cov = classes["coverage"]()
    skewed = scores + np.linspace(0, 0.9, 700)  # later songs favoured: partial coverage
    values = cov.per_user(MetricInput(skewed, labels, None, 10))
    assert len(values) == 60 and n_excluded(values) == 0
    # no ties: the expectation is the plain count of distinct songs in the top 10s
    assert cov.reduce(values) == pytest.approx(catalogue_coverage(top_k(skewed, 10), 700))
    assert 0 < cov.reduce(values) < 1
    # the batched bootstrap form equals reducing each resample
    idx = rng.integers(0, 60, (5, 60))
    counts = np.stack([np.bincount(r, minlength=60) for r in idx])
    np.testing.assert_allclose(cov.reduce_resamples(values, counts),
                               [cov.reduce(values[r]) for r in idx])


def test_no_candidate_songs_at_all():
    scores, labels = np.zeros((3, 0)), np.zeros((3, 0), dtype=bool)
    assert np.isnan(roc_auc_per_user(scores, labels)).all()
    assert np.isnan(recall_at_k(scores, labels, 5)).all()
    assert top_k(scores, 5).shape == (3, 0)


def test_large_integers_and_sparse_inputs():
    import scipy.sparse as sp

    rng = np.random.default_rng(17)
    # int64 beyond 2**24: distinct values that a float32 would merge
    scores = 2**40 + rng.integers(0, 3, (50, 20)).astype(np.int64)
    labels = rng.random((50, 20)) < 0.3
    np.testing.assert_allclose(roc_auc_per_user(scores, labels),
                               _ref_auc(scores - 2**40, labels, None), atol=1e-9,
                               equal_nan=True)
    mask = rng.random((50, 20)) < 0.8
    np.testing.assert_array_equal(
        roc_auc_per_user(scores, sp.csr_matrix(labels), sp.csr_matrix(mask)),
        roc_auc_per_user(scores, labels, mask))


# --------------------------------------------------------------------------- coverage


def _coverage_over_tie_orders(scores, mask, k):
    """Brute force: distinct songs in the users' concrete top K, averaged over every
    combination of every user's tie orders."""
    per_user = []
    for s, m in zip(scores, mask):
        cand = np.flatnonzero(m)
        groups = [cand[s[cand] == v] for v in sorted(set(s[cand]), reverse=True)]
        per_user.append([np.concatenate(p)[:k] if p else np.array([], int) for p in
                         itertools.product(*[itertools.permutations(g) for g in groups])])
    total, count = 0.0, 0
    for lists in itertools.product(*per_user):
        total += len(set(np.concatenate(lists).tolist())) if lists else 0
        count += 1
    return total / count / scores.shape[1]


def test_expected_coverage_equals_brute_force_over_tie_orders():
    from recbench.metrics import coverage_rows, expected_coverage

    rng = np.random.default_rng(20)
    checked = 0
    for _ in range(60):
        n_users, n = int(rng.integers(1, 4)), int(rng.integers(2, 6))
        scores = rng.integers(0, 3, (n_users, n)).astype(float)
        mask = rng.random((n_users, n)) < 0.85
        k = int(rng.integers(1, 5))
        if not mask.any(axis=1).all():
            continue
        got = expected_coverage(coverage_rows(scores, k, mask, chunk=2))
        assert got == pytest.approx(_coverage_over_tie_orders(scores, mask, k), abs=1e-12)
        checked += 1
    assert checked > 30


def test_expected_coverage_equals_distinct_top_k_without_ties():
    from recbench.metrics import coverage_rows, expected_coverage

    rng = np.random.default_rng(21)
    scores = rng.normal(size=(80, 300))
    mask = rng.random((80, 300)) < 0.9
    for k in (1, 10, 50, 400):
        rows = coverage_rows(scores, k, mask, chunk=13)
        assert expected_coverage(rows) == pytest.approx(
            catalogue_coverage(top_k(scores, k, mask), 300), abs=1e-12)


def test_all_tied_model_gets_the_expected_coverage_not_the_first_songs():
    """A constant-score model: each user's top 10 is a uniformly random 10 of the 200
    candidates, so E[coverage] = 1 - (1 - 10/200)^U (old code: 10/200 by song position)."""
    from recbench.metrics import coverage_rows, expected_coverage

    classes = _plugin_classes()
    cov = classes["coverage"]()
    scores = np.zeros((30, 200), dtype=np.float32)
    labels = np.zeros((30, 200), dtype=bool)
    values = cov.per_user(MetricInput(scores, labels, None, 10))
    expected = 1 - (1 - 10 / 200) ** 30
    assert cov.reduce(values) == pytest.approx(expected, abs=1e-12)
    assert values.shape[1] <= 3 + 10  # the 200-song tie group is listed by its complement
    assert expected_coverage(coverage_rows(scores, 10)) == pytest.approx(expected, abs=1e-12)
    # the batched form equals reducing each resample (duplicated users count once each draw)
    rng = np.random.default_rng(22)
    idx = rng.integers(0, 30, (6, 30))
    counts = np.stack([np.bincount(r, minlength=30) for r in idx])
    np.testing.assert_allclose(cov.reduce_resamples(values, counts),
                               [cov.reduce(values[r]) for r in idx], atol=1e-12)


# --------------------------------------------------------------------------- rank once


def _ref_bucket_auc(scores, labels, mask, bucket_of, n_buckets):
    """The popularity-bucket AUCs as the task computed them before ranking once: one
    re-sorting roc_auc_per_user call per bucket."""
    base = np.ones_like(labels) if mask is None else mask
    return np.stack([roc_auc_per_user(scores, labels & (bucket_of == b)[None, :],
                                      base & (~labels | (bucket_of == b)[None, :]))
                     for b in range(n_buckets)], axis=1)


@pytest.mark.parametrize("masked", [False, True])
def test_ranking_once_gives_the_standalone_values(masked):
    from recbench.metrics import Ranking, coverage_rows

    rng = np.random.default_rng(23)
    scores = rng.integers(0, 6, (150, 70)).astype(np.float64)  # heavy ties
    labels = rng.random((150, 70)) < 0.15
    mask = rng.random((150, 70)) < 0.8 if masked else None
    pop = rng.integers(0, 50, 70).astype(float)
    bucket_of = rng.integers(0, 3, 70)
    r = Ranking(scores, labels, mask, chunk=16, k_max=50, popularity=pop)
    np.testing.assert_allclose(r.auc(), roc_auc_per_user(scores, labels, mask), atol=1e-12)
    np.testing.assert_allclose(r.auc_by_group(bucket_of, 3),
                               _ref_bucket_auc(scores, labels, mask, bucket_of, 3), atol=1e-12)
    for k in (50, 1, 7, 10):  # a smaller K reuses the prefix of the largest
        for fn in AT_K + (hits_at_k,):
            np.testing.assert_allclose(r.at_k(fn.__name__, k), fn(scores, labels, k, mask),
                                       atol=1e-12)
        np.testing.assert_allclose(r.at_k("mean_popularity_at_k", k),
                                   mean_popularity_at_k(scores, pop, k, mask), atol=1e-12)
        np.testing.assert_array_equal(r.at_k("coverage_rows", k),
                                      coverage_rows(scores, k, mask))
    # k beyond k_max re-selects
    np.testing.assert_allclose(r.at_k("ndcg_at_k", 60), ndcg_at_k(scores, labels, 60, mask),
                               atol=1e-12)


def test_bucket_auc_hand_built():
    from recbench.metrics import Ranking

    # songs 0,1 in bucket 0, songs 2,3,4 in bucket 1
    scores = np.array([[5.0, 1.0, 4.0, 2.0, 3.0]])
    labels = np.array([[1, 0, 1, 0, 0]], dtype=bool)
    # negatives: songs 1 (1.0), 3 (2.0), 4 (3.0); bucket 0's positive 5.0 beats all -> 1;
    # bucket 1's positive 4.0 beats all -> 1
    np.testing.assert_allclose(Ranking(scores, labels).auc_by_group(np.array([0, 0, 1, 1, 1])),
                               [[1.0, 1.0]])
    scores = np.array([[0.0, 1.0, 3.0, 2.0, 3.0]])
    # bucket 0 positive 0.0 beats none -> 0; bucket 1 positive 3.0 ties song 4, beats 1 and
    # 3 -> (2 + 0.5) / 3; a bucket without positives -> NaN
    got = Ranking(scores, labels).auc_by_group(np.array([0, 0, 1, 1, 1]), 3)
    np.testing.assert_allclose(got, [[0.0, 2.5 / 3, np.nan]])
