"""Collecting string ids from table batches into dense positions (:class:`IdCollector`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

class IdCollector:
    """Collects string ids batch by batch; assigns dense positions at the end.

    `add(array)` dictionary-encodes a pyarrow string array and returns a batch number;
    `finish(fixed)` fixes the order (the `fixed` ids first, in their order, then the
    others sorted) and returns (ids, positions of batch 0, 1, ...). One hash pass over all
    distinct ids: no per-row Python objects.
    """

    def __init__(self) -> None:
        self._dicts: list[Any] = []
        self._codes: list[np.ndarray] = []

    def add(self, a: Any) -> int:
        import pyarrow.compute as pcc

        enc = pcc.dictionary_encode(a)
        if hasattr(enc, "combine_chunks"):
            enc = enc.combine_chunks()
        self._dicts.append(enc.dictionary)
        self._codes.append(enc.indices.to_numpy(zero_copy_only=False).astype(np.int32))
        return len(self._codes) - 1

    def finish(self, fixed: Sequence[str] | None = None
               ) -> tuple[np.ndarray, list[np.ndarray]]:
        """(ids as a numpy str array, [int64 positions of each added batch's rows])."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        all_ids = pa.concat_arrays([d.cast(pa.string()) for d in self._dicts]
                                   or [pa.array([], pa.string())])
        uniq = pcc.unique(all_ids)
        if fixed:
            fixed_a = pa.array(list(fixed), pa.string())
            others = pcc.filter(uniq, pcc.invert(pcc.is_in(uniq, value_set=fixed_a)))
        else:
            fixed_a, others = pa.array([], pa.string()), uniq
        others = pcc.take(others, pcc.sort_indices(others))
        order = pa.concat_arrays([fixed_a, others])
        pos_all = pcc.index_in(all_ids, value_set=order).to_numpy(
            zero_copy_only=False).astype(np.int64)
        out, k = [], 0
        for d, codes in zip(self._dicts, self._codes):
            out.append(pos_all[k:k + len(d)][codes])
            k += len(d)
        ids = np.asarray(order.to_pylist(), dtype=str) if len(order) else np.array([], str)
        return ids, out
