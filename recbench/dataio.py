"""Deprecated alias kept for one release: the code moved to :mod:`recbench.io`
(:mod:`~recbench.io.tables`, :mod:`~recbench.io.problems`, :mod:`~recbench.io.text`,
:mod:`~recbench.io.ids`, :mod:`~recbench.io.matrices`, :mod:`~recbench.io.folder`).
Import from ``recbench.io`` instead."""

from __future__ import annotations

from .io.dataset import Dataset
from .io.folder import (DATASET_JSON, FORMAT_NAME, FORMAT_VERSION, LOSSLESS_SUBTYPES,
                        audio_file_name, read_dataset_json, read_id_list, restored_identity,
                        write_dataset)
from .io.ids import IdCollector
from .io.matrices import canonical_csr, coo_to_csr
from .io.problems import (MAX_EXAMPLE_CHARS, MAX_EXAMPLES, MAX_NAMED, MAX_REASON_CHARS,
                          Problems, first_bad_rows, report_bad_rows)
from .io.tables import TableReader, table_format
from .io.text import SNIPPET_CHARS, is_utf8, parse_numbers

__all__ = [
    "DATASET_JSON", "Dataset", "FORMAT_NAME", "FORMAT_VERSION", "IdCollector",
    "LOSSLESS_SUBTYPES", "MAX_EXAMPLES", "MAX_EXAMPLE_CHARS", "MAX_NAMED", "MAX_REASON_CHARS",
    "Problems", "SNIPPET_CHARS", "TableReader", "audio_file_name", "canonical_csr",
    "coo_to_csr", "first_bad_rows", "is_utf8", "parse_numbers", "read_dataset_json",
    "read_id_list", "report_bad_rows", "restored_identity", "table_format", "write_dataset",
]
