"""Tab-separated files of a dataset folder: exact number text, atomic TSV writes, id lists.

Shared by the folder writer (`folder.py`) and the side-information parts (`side.py`), so
that neither imports the other for them.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .atomic import atomic_path
from .text import _as_text, _snippet


def fmt_numbers(values: np.ndarray) -> np.ndarray:
    """Numbers as exact text: integers without a decimal point, float32 with 9 and float64
    with 17 significant digits (both round-trip exactly); an object array of str."""
    v = np.asarray(values)
    if np.all(v == np.round(v)) and (v.size == 0 or np.abs(v).max() < 2**53):
        return v.astype(np.int64).astype(str).astype(object)
    # 9 significant digits round-trip float32 exactly; 17 for float64.
    fmt = "%.9g" if v.dtype == np.float32 else "%.17g"
    return np.char.mod(fmt, v).astype(object)


def write_tsv(path: Path, header: list[str], cols: list[np.ndarray]) -> None:
    """Columns `cols` under `header` as a tab-separated file at `path`, written atomically
    (no quoting: the values were checked to hold no tab or newline)."""
    import pandas as pd

    df = pd.DataFrame({h: c for h, c in zip(header, cols)})
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, quoting=csv.QUOTE_NONE, lineterminator="\n")


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Ids, one per line (blank lines ignored); DataError naming the line when one is not
    UTF-8 (these files are written by `write_dataset`: a bad one is a damaged copy)."""
    out = []
    with open(path, "rb") as f:
        for ln, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{ln}: not valid UTF-8 text: "
                                f"{_snippet(_as_text(raw.rstrip(bytes([10, 13]))))}; expected "
                                "one id per line (a damaged copy? delete it to use the table "
                                "order)") from None
            if line.strip():
                out.append(line.rstrip("\r\n"))
    return out
