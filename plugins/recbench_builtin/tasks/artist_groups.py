"""Small groups of unseen artists, each clustered on its own: the disambiguation setting of
Royo-Letelier et al., ISMIR 2018 (section 4), where a handful of artists that share a
name, often similar-sounding artists of one genre, must be told apart from their tracks.

Helpers of the ``artist-clustering`` task (``groups = "same-genre"`` or ``"mixed"``):
:func:`artist_groups` partitions the evaluated artists into groups of about
``group_size``; :func:`group_scores` clusters each group's tracks by k-means
(k = the group's artists) and scores ARI, NMI and the verification AUC per group;
:func:`group_intervals` gives percentile bootstrap intervals of the mean over groups,
resampling whole groups.
"""

from __future__ import annotations

import numpy as np

GROUP_METRICS = ("ari", "nmi", "verification_auc")


def _chunks(items: np.ndarray, size: int) -> list[np.ndarray]:
    """`items` cut into runs of `size`; a last run of one joins the run before it (a group
    needs 2+ artists), so sizes lie in 2..size + 1; a single item gives no group."""
    runs = [items[i:i + size] for i in range(0, len(items), size)]
    if runs and len(runs[-1]) < 2:
        last = runs.pop()
        if runs:
            runs[-1] = np.concatenate([runs[-1], last])
    return runs


def artist_groups(artists: np.ndarray, genres: np.ndarray, size: int, mode: str,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Partition `artists` (distinct codes, with `genres` the genre of each) into groups.

    ``mode = "same-genre"``: each genre's artists, shuffled, cut into groups of `size`
    (a genre with one artist gives none); ``"mixed"``: all artists shuffled together and cut
    the same way, whatever their genre. Every artist is in at most one group; groups have
    2..size + 1 artists. Returns a list of artist-code arrays.
    """
    artists, genres = np.asarray(artists), np.asarray(genres)
    if mode == "mixed":
        return _chunks(rng.permutation(artists), size)
    if mode != "same-genre":
        raise ValueError(f"groups must be 'same-genre' or 'mixed', got {mode!r}")
    out: list[np.ndarray] = []
    for g in np.unique(genres):
        out.extend(_chunks(rng.permutation(artists[genres == g]), size))
    return out


def majority(codes: np.ndarray, owners: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """For each key, the most frequent of `codes` among the rows whose owner is that key
    (ties: the smallest code)."""
    out = np.empty(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        vals, counts = np.unique(codes[owners == k], return_counts=True)
        out[i] = vals[np.argmax(counts)]
    return out


def group_scores(x: np.ndarray, artists: np.ndarray, groups: list[np.ndarray], n_init: int,
                 seed: int) -> np.ndarray:
    """(n_groups, 3) ARI, NMI and verification AUC of each group.

    `x`: (n, d) L2-normalised song vectors; `artists`: (n,) artist of each song. A group's
    songs are clustered by k-means (k = its number of artists, `n_init` restarts, seeded);
    the AUC ranks the cosine of every pair of the group's songs, same artist = positive.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import roc_auc_score

    from .artist_clustering import clustering_scores

    rows = []
    for members in groups:
        idx = np.flatnonzero(np.isin(artists, members))
        lab = artists[idx]
        clusters = KMeans(n_clusters=len(members), n_init=n_init,
                          random_state=seed).fit_predict(x[idx])
        ari, nmi = clustering_scores(lab, clusters)
        i, j = np.triu_indices(len(idx), k=1)
        auc = float(roc_auc_score(lab[i] == lab[j], (x[idx][i] * x[idx][j]).sum(1)))
        rows.append((ari, nmi, auc))
    return np.asarray(rows, dtype=np.float64).reshape(-1, len(GROUP_METRICS))


def group_intervals(per_group: np.ndarray, n_boot: int, confidence: float,
                    rng: np.random.Generator) -> list[list[float | None]]:
    """Percentile bootstrap interval of each column's mean over groups (groups resampled
    with replacement); [None, None] per column without resamples."""
    if not n_boot or not len(per_group):
        return [[None, None] for _ in range(per_group.shape[1])]
    pick = rng.integers(0, len(per_group), size=(n_boot, len(per_group)))
    means = per_group[pick].mean(axis=1)  # (n_boot, n_metrics)
    alpha = (1 - confidence) / 2
    return [[float(np.quantile(means[:, j], alpha)), float(np.quantile(means[:, j], 1 - alpha))]
            for j in range(per_group.shape[1])]
