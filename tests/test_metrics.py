"""Metric maths against sklearn and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recbench.components import MetricInput
from recbench.errors import DataError
from recbench.metrics import n_excluded, roc_auc_per_user


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
