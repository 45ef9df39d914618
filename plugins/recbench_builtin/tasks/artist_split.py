"""`cold-artist` split: artists, not songs, held out (the unknown-artist protocol of
Royo-Letelier et al., ISMIR 2018, section 4: the artists clustered at test time have no
track in the training set).

The artists (``song_categories[category]``, default ``artist``) are split at random (by
seed) into train / valid / test shares (default 70/10/20 of the artists); every song goes
with its artist, so valid and test songs are cold (no training interactions, protocol
``cold-item``) and their artists unseen in training. Songs without an artist (code -1)
stay in training. Registered by the ``artist-clustering`` task's module.
"""

from __future__ import annotations

import numpy as np

from recbench.data import Dataset, Split
from recbench.errors import DataError
from recbench.params import Param
from recbench_builtin.splits import (_shares, _SharesSplitter, restrict_columns,
                                     users_with_interactions)


class ColdArtistSplit(_SharesSplitter):
    """Artists split train / valid / test by seed; each song follows its artist."""

    name = "cold-artist"
    description = ("Artists split 70/10/20 by seed, songs follow their artist: test artists "
                   "are unseen in training (the unknown-artist protocol)")
    protocol = "cold-item"
    params = (
        Param("valid_share", float, 0.1, "share of artists held out for validation",
              min=0.0, max=0.9),
        Param("test_share", float, 0.2, "share of artists held out for the reported numbers",
              gt=0.0, max=0.9),
        Param("category", str, "artist", "song category holding the artist"),
    )

    def split(self, dataset: Dataset, seed: int) -> Split:
        """Train / valid / test songs by their artist's part (songs sorted in each)."""
        o = self.options
        cats = getattr(dataset, "song_categories", None) or {}
        if o["category"] not in cats:
            raise DataError(f"split cold-artist: dataset {dataset.name!r} has no song "
                            f"category {o['category']!r} (synth-msd: set "
                            f"artist_style_strength)")
        artist = np.asarray(cats[o["category"]], dtype=np.int64)
        uniq = np.unique(artist[artist >= 0])
        n_valid, n_test = _shares(len(uniq), o["valid_share"], o["test_share"], "artists")
        order = np.random.default_rng(seed).permutation(uniq)
        part = np.zeros(len(artist), dtype=np.int64)  # 0 train, 1 valid, 2 test
        part[np.isin(artist, order[:n_test])] = 2
        part[np.isin(artist, order[n_test:n_test + n_valid])] = 1
        songs = [np.flatnonzero(part == k).astype(np.int64) for k in range(3)]
        counts = dataset.counts.tocsr()
        train, valid, test = (restrict_columns(counts, s) for s in songs)
        return Split(name=self.name, seed=int(seed), protocol=self.protocol,
                     train=train, valid=valid, test=test, train_songs=songs[0],
                     valid_songs=songs[1], test_songs=songs[2],
                     train_users=users_with_interactions(train),
                     test_users=users_with_interactions(test), params=dict(o))
