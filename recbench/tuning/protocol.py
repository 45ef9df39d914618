"""The honest protocol: what a trial may see.

A trial fits on :func:`fit_view` (the split with every test label hidden: reading one
raises :class:`TestLabelsHidden`) and is scored by the task on :func:`validation_view`
(the validation part in the place of the test part). Only after the search is the chosen
setting fitted on the real split and evaluated, once, on test.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import RecbenchError
from ..io.dataset import Dataset, Split

# Split fields named test* that are index sets, not labels: a trial may know which songs
# and users exist (the model scores them at test time anyway).
_NOT_LABELS = ("test_songs", "test_users")


class TestLabelsHidden(RecbenchError):
    """A trial read the test part: the search would select on test labels."""

    __test__ = False  # not a pytest test class


class HiddenTestLabels:
    """Stands in for a test-label field of a split during a search: any use raises
    :class:`TestLabelsHidden` naming the field."""

    def __init__(self, field: str):
        object.__setattr__(self, "_field", field)

    def _refuse(self, *_a: Any, **_k: Any) -> Any:
        raise TestLabelsHidden(
            f"split.{self._field} was read during a tuning trial: trials see the training "
            f"and validation parts only (the test part is used once, after the search)")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._refuse()

    __getitem__ = __len__ = __iter__ = __array__ = __add__ = __radd__ = __mul__ = _refuse
    __bool__ = __eq__ = __ne__ = __gt__ = __lt__ = __ge__ = __le__ = __sub__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<hidden during tuning: split.{self._field}>"


def _label_fields(split: Split) -> list[str]:
    return [f.name for f in dataclasses.fields(split)
            if f.name.startswith("test") and f.name not in _NOT_LABELS]


def fit_view(split: Split) -> Split:
    """`split` with every test-label field (``test`` and any ``test_*`` a split subclass
    adds, except the song and user index sets) replaced by :class:`HiddenTestLabels`."""
    hidden: dict[str, Any] = {f: HiddenTestLabels(f) for f in _label_fields(split)}
    return dataclasses.replace(split, **hidden)


def validation_view(split: Split) -> Split:
    """The split a trial is scored on: the validation interactions as the test part
    (test songs = valid songs, test users = users with a validation interaction), no
    validation part (so the task does not exclude them as already seen). Other test-label
    fields stay hidden."""
    valid = split.valid.tocsr()
    users = np.unique(valid.nonzero()[0]).astype(np.int64)
    hidden: dict[str, Any] = {f: HiddenTestLabels(f) for f in _label_fields(split)
                              if f != "test"}
    return dataclasses.replace(
        split, test=valid, test_songs=np.asarray(split.valid_songs), test_users=users,
        valid=sp.csr_matrix(valid.shape, dtype=valid.dtype), **hidden)


def trial_dataset(dataset: Dataset, split: Split) -> Dataset:
    """`dataset` whose `counts` hold only the training and validation interactions (a
    task's popularity statistics or a model peeking at `counts` cannot reach test labels)
    and whose listening log (`events`, when there is one) has no event of a (user, song)
    pair with a test interaction; the fingerprint stays the dataset's, so feature caches
    are shared."""
    fingerprint = dataset.fingerprint
    counts = (split.train + split.valid).tocsr().astype(dataset.counts.dtype)
    events = dataset.events
    if events is not None and len(events):
        test = split.test.tocsr()
        keep = np.asarray(test[events.user, events.song]).ravel() == 0
        events = events.select(keep)
    return dataclasses.replace(dataset, counts=counts, events=events,
                               _fingerprint=fingerprint)
