"""The io stage: the data objects that flow between plugins, and reading and writing data.

- :mod:`.dataset`: :class:`Dataset`, :class:`Split`, the :class:`AudioSource` protocol and
  :func:`hash_arrays` (the fingerprints), the optional side parts (:class:`Events`, ``SIDE_PARTS``);
- :mod:`.audio`: audio files as an AudioSource (decoding, resampling, probes);
- :mod:`.tables`: :class:`TableReader` (TSV, CSV, Parquet), with :mod:`.text` (UTF-8
  checks, number parsing) and :mod:`.problems` (what loading dropped or repaired);
- :mod:`.ids`: :class:`IdCollector` (string ids to dense positions);
- :mod:`.matrices`: :func:`coo_to_csr`, :func:`canonical_csr`;
- :mod:`.folder`: the generic on-disk dataset folder (:func:`write_dataset` and readers).

Everything here imports cheaply: pyarrow, pandas and soundfile load inside the functions
that need them.
"""

from __future__ import annotations

from .audio import (PROBE_FRAMES, AudioDecodeError, FileAudioSource, decode, file_sha256,
                    probe_audio, stat_identity)
from .dataset import SIDE_PARTS, AudioSource, Dataset, Events, Split, hash_arrays
from .folder import (DATASET_JSON, FORMAT_NAME, FORMAT_VERSION, LOSSLESS_SUBTYPES,
                     audio_file_name, read_dataset_json, read_id_list, restored_identity,
                     write_dataset)
from .ids import IdCollector
from .matrices import canonical_csr, coo_to_csr
from .problems import (MAX_EXAMPLE_CHARS, MAX_EXAMPLES, MAX_NAMED, MAX_REASON_CHARS, Problems,
                       first_bad_rows, report_bad_rows)
from .tables import TableReader, table_format
from .text import SNIPPET_CHARS, is_utf8, parse_numbers

__all__ = [
    "AudioDecodeError", "AudioSource", "DATASET_JSON", "Dataset", "Events", "FORMAT_NAME",
    "FORMAT_VERSION", "FileAudioSource", "IdCollector", "LOSSLESS_SUBTYPES",
    "MAX_EXAMPLES", "MAX_EXAMPLE_CHARS", "MAX_NAMED", "MAX_REASON_CHARS", "PROBE_FRAMES",
    "Problems", "SIDE_PARTS", "SNIPPET_CHARS", "Split", "TableReader", "audio_file_name", "canonical_csr",
    "coo_to_csr", "decode", "file_sha256", "first_bad_rows", "hash_arrays", "is_utf8",
    "parse_numbers", "probe_audio", "read_dataset_json", "read_id_list", "report_bad_rows",
    "restored_identity", "stat_identity", "table_format", "write_dataset",
]
