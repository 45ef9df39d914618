"""Uncertainty of reported numbers: bootstrap over users, paired comparisons, seed spread.

The bootstrap resamples users (rows of the per-user values a metric returns: (U,) or
(U, ...)) with replacement and reports percentile intervals. When the statistic is the
mean over defined (non-NaN) values — ``np.nanmean``, ``np.mean`` or a metric's default
``reduce`` — all resamples are computed at once from an index matrix (in slabs, so memory
stays bounded). A custom reduce may offer a batched form: if the callable, or the object
it is bound to, has ``reduce_resamples(values, counts) -> (B,)`` (counts: (B, U) user
multiplicities), it is used; otherwise `reduce` is called once per resample.

Intervals are percentile intervals, except for a statistic that declares
``bootstrap_interval = "bias-corrected"`` (on the callable or the object it is bound to):
its resampled values are first shifted by the bootstrap estimate of their bias,
``mean(stat*) - stat``, so that they centre on the point estimate (and clipped to
``bootstrap_bounds = (low, high)`` when declared, e.g. (0, 1) for a share). That is for statistics
such as catalogue coverage (distinct songs in the users' top K), which a resample of U
users drawn with replacement (about 63% distinct users) underestimates by construction: a
plain percentile interval then lies below, and can exclude, the point estimate.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["bootstrap_ci", "bootstrap_stats", "paired_bootstrap", "seed_summary"]

_SLAB = 4_000_000  # index-matrix entries per slab (32 MB of int64)


def _is_mean(reduce: Callable) -> bool:
    if reduce in (np.nanmean, np.mean):
        return True
    from ..components import Metric

    return getattr(reduce, "__func__", None) is Metric.reduce


def _batched(reduce: Callable) -> Callable | None:
    fn = getattr(reduce, "reduce_resamples", None)
    if fn is None:
        fn = getattr(getattr(reduce, "__self__", None), "reduce_resamples", None)
    return fn


def _bias_corrected(reduce: Callable) -> bool:
    method = getattr(reduce, "bootstrap_interval", None)
    if method is None:
        method = getattr(getattr(reduce, "__self__", None), "bootstrap_interval", None)
    if method not in (None, "percentile", "bias-corrected"):
        raise ValueError(f"unknown bootstrap_interval {method!r}; expected 'percentile' or "
                         "'bias-corrected'")
    return method == "bias-corrected"


def _bounds(reduce: Callable) -> tuple[float, float] | None:
    b = getattr(reduce, "bootstrap_bounds", None)
    if b is None:
        b = getattr(getattr(reduce, "__self__", None), "bootstrap_bounds", None)
    return b


def _centre(stats: np.ndarray, point: float) -> np.ndarray:
    """Resampled statistics shifted by their estimated bias, mean(stats) - point."""
    finite = stats[~np.isnan(stats)]
    if not finite.size or np.isnan(point):
        return stats
    return stats - (finite.mean() - point)


def _resample_indices(n: int, n_resamples: int, seed: int):
    """Yield (B_slab, n) index matrices; the stream depends only on (n, n_resamples, seed)."""
    rng = np.random.default_rng(seed)
    per = max(1, _SLAB // max(n, 1))
    for a in range(0, n_resamples, per):
        yield rng.integers(0, n, size=(min(per, n_resamples - a), n))


def _mean_parts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-user sums and counts of defined entries: the mean of any row subset is
    sum(sums) / sum(counts) (equal to the nan-mean of those rows' entries)."""
    v = values.reshape(len(values), -1).astype(np.float64)
    defined = ~np.isnan(v)
    return np.where(defined, v, 0.0).sum(axis=1), defined.sum(axis=1).astype(np.float64)


def bootstrap_stats(values, reduce: Callable = np.nanmean, n_resamples: int = 1000,
                    seed: int = 0) -> np.ndarray:
    """The statistic `reduce` on `n_resamples` bootstrap resamples of the rows: (B,)."""
    return _paired_stats([np.asarray(values)], reduce, n_resamples, seed)[0]


def _paired_stats(arrays: list[np.ndarray], reduce: Callable, n_resamples: int,
                  seed: int) -> list[np.ndarray]:
    """`reduce` on resamples of each array, the SAME user indices for every array."""
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"paired values must have the same users, got lengths "
                         f"{[len(a) for a in arrays]}")
    out: list[list[np.ndarray]] = [[] for _ in arrays]
    if n == 0 or n_resamples <= 0:
        return [np.full(max(n_resamples, 0), np.nan) for _ in arrays]
    mean = _is_mean(reduce)
    batched = None if mean else _batched(reduce)
    parts = [_mean_parts(a) for a in arrays] if mean else None
    with np.errstate(invalid="ignore", divide="ignore"):
        for idx in _resample_indices(n, n_resamples, seed):
            for i, a in enumerate(arrays):
                if mean:
                    assert parts is not None
                    sums, counts = parts[i]
                    out[i].append(sums[idx].sum(axis=1) / counts[idx].sum(axis=1))
                elif batched is not None:
                    flat = (np.arange(len(idx))[:, None] * n + idx).ravel()
                    counts = np.bincount(flat, minlength=idx.size).reshape(idx.shape)
                    out[i].append(np.asarray(batched(a, counts), dtype=np.float64))
                else:
                    out[i].append(np.array([reduce(a[row]) for row in idx], dtype=np.float64))
    return [np.concatenate(o) for o in out]


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")


def _interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    finite = stats[~np.isnan(stats)]
    if not finite.size:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def bootstrap_ci(values, reduce: Callable = np.nanmean, n_resamples: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``reduce(values)``, resampling users (rows);
    bias-corrected when `reduce` declares it (see the module docstring).

    values: (U,) or (U, ...) per-user values (NaN = undefined user). Returns (low, high);
    (nan, nan) when there are no users. Deterministic under `seed`.
    """
    _check_level(level)
    stats = bootstrap_stats(values, reduce, n_resamples, seed)
    if _bias_corrected(reduce) and len(np.asarray(values)):
        with np.errstate(invalid="ignore", divide="ignore"):
            stats = _centre(stats, float(reduce(np.asarray(values))))
        bounds = _bounds(reduce)  # a shift may cross the statistic's range: clip to it
        if bounds is not None:
            stats = np.clip(stats, *bounds)
    return _interval(stats, level)


def paired_bootstrap(a, b, reduce: Callable = np.nanmean, n_resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> dict:
    """Bootstrap of ``reduce(a) - reduce(b)`` for two models evaluated on the same users.

    a, b: per-user values with the same rows (users); each resample draws the same users
    for both. Returns dict(diff, low, high, p_value): the observed difference, its
    percentile interval, and a two-sided bootstrap p-value for "no difference",
    ``min(1, 2 * min(#(d* <= 0) + 1, #(d* >= 0) + 1) / (B + 1))`` (both from the
    bias-corrected differences when `reduce` declares it).
    """
    _check_level(level)
    a, b = np.asarray(a), np.asarray(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = float(reduce(a) - reduce(b))
    sa, sb = _paired_stats([a, b], reduce, n_resamples, seed)
    d = sa - sb
    d = d[~np.isnan(d)]
    if _bias_corrected(reduce):
        d = _centre(d, diff)
    low, high = _interval(d, level) if d.size else (float("nan"), float("nan"))
    if d.size:
        tail = min(np.sum(d <= 0) + 1, np.sum(d >= 0) + 1) / (d.size + 1)
        p = float(min(1.0, 2 * tail))
    else:
        p = float("nan")
    return {"diff": diff, "low": low, "high": high, "p_value": p}


def seed_summary(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for one seed) of per-seed values.

    NaN entries (failed seeds) are ignored; (nan, nan) when none is left.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    if not v.size:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
