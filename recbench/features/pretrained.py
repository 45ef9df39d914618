"""Pretrained per-song embeddings as a feature source (``ctx.features("embedding")``).

:func:`attach_embeddings` reads precomputed embeddings, aligns them with a dataset's
``song_ids`` and stores them as ``dataset.features[kind]`` (default kind ``"embedding"``),
an array of songs x T x D float32 with ``dataset.features[kind + ".lengths"]`` (T = 1 for
one vector per song; T > 1 for a sequence of frame embeddings, shorter ones zero-padded).
Models then read them like any precomputed feature: ``ctx.features("embedding")`` gives a
:class:`recbench.features.SongFeatures` with one-step windows (``window`` = 1,
``n_channels`` = D), standardised on the training songs; a song's vector is the mean over
its steps. The ``embedding`` / ``embedding-mlp`` backbones turn windows into vectors.

Accepted layouts (by `path`):

- a folder of ``<song id>.npy`` files (ids %-quoted as audio clips are), each of shape
  (D,) or (T, D);
- one ``.npy`` matrix (N x D, or N x T x D) plus an id list: `ids` names a text file with
  one song id per line (default: ``<matrix stem>.ids.txt`` beside it), row i = id i;
- a Parquet file with a song id column (`id_col`, default ``song``) and either one list
  column (the vector) or several numeric columns (one dimension each, in file order).

Songs without an embedding get length 0: the feature loader counts and names them
(``dropped.no_precomputed_features``) and models treat them as songs without audio; one
log line says how many and names the first ones, and ``dataset.manifest["pretrained"]``
records it all. Ids in the file that the dataset lacks are counted.

Identity: a hash of every file's name, size and mtime (``identity = "stat"``, default) or
of its bytes (``"content"``). It is the ``key`` of the features (``SongFeatures.key``,
recorded in each row) and it is folded into ``dataset.fingerprint``, so changing the
embeddings changes the fingerprint and every cache key that depends on it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError
from ..io.dataset import Dataset, hash_arrays

log = logging.getLogger("recbench")
MAX_NAMED_MISSING = 20


def files_identity(files: list[Path], how: str = "stat") -> str:
    """A 16-hex-digit identity of `files`: names + sizes + mtimes ("stat") or their SHA-256
    ("content")."""
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(f.name.encode() + b"\x1f")
        if how == "content":
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        else:
            st = os.stat(f)
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def _as_steps(arr: np.ndarray, where: str) -> np.ndarray:
    """(T, D) float32 of a (D,) or (T, D) embedding."""
    a = np.asarray(arr)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.dtype.kind not in "fiu":
        raise DataError(f"{where}: expected a numeric vector (D,) or matrix (T, D), got "
                        f"shape {a.shape} {a.dtype}")
    return a.astype(np.float32)


def read_embeddings(path: str | os.PathLike, *, ids: str | os.PathLike | None = None,
                    id_col: str = "song") -> tuple[dict[str, np.ndarray], list[Path], str]:
    """({song id: (T, D) float32}, the files read, the layout name) of `path` (see the
    module docstring); DataError naming the file and what was expected on bad input."""
    p = Path(path)
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.suffix == ".npy")
        if not files:
            raise DataError(f"{p}: no <song id>.npy files in this folder")
        from urllib.parse import unquote

        out = {unquote(f.stem): _as_steps(np.load(f), str(f)) for f in files}
        return out, files, "npy-per-song"
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder of embeddings")
    if p.suffix == ".npy":
        id_path = Path(ids) if ids is not None else p.with_name(p.stem + ".ids.txt")
        if not id_path.is_file():
            raise DataError(f"{p}: a matrix needs its song ids, one per line, in {id_path} "
                            "(or name the list with `ids`)")
        from ..io.folder import read_id_list

        id_list = read_id_list(id_path)
        m = np.load(p, mmap_mode="r")
        if m.ndim not in (2, 3) or m.shape[0] != len(id_list):
            raise DataError(f"{p}: expected N x D (or N x T x D) with N = {len(id_list)} "
                            f"rows (the ids in {id_path.name}), got shape {m.shape}")
        out = {}
        for i, sid in enumerate(id_list):
            out[sid] = _as_steps(m[i], f"{p} row {i}")
        return out, [p, id_path], "npy-matrix"
    if p.suffix == ".parquet":
        return _read_parquet(p, id_col), [p], "parquet"
    raise DataError(f"{p}: expected a folder of .npy files, a .npy matrix or a .parquet file")


def _read_parquet(p: Path, id_col: str) -> dict[str, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{p}: not a readable Parquet file ({exc})") from None
    if id_col not in table.column_names:
        raise DataError(f"{p}: no id column {id_col!r} (columns: "
                        f"{', '.join(table.column_names)}); set id_col")
    sids = [str(x) for x in table.column(id_col).to_pylist()]
    rest = [c for c in table.column_names if c != id_col]
    lists = [c for c in rest if pa.types.is_list(table.schema.field(c).type)
             or pa.types.is_large_list(table.schema.field(c).type)
             or pa.types.is_fixed_size_list(table.schema.field(c).type)]
    if len(lists) == 1 and len(rest) == 1:
        rows = table.column(lists[0]).to_pylist()
        try:
            return {s: _as_steps(np.asarray(r, dtype=np.float32), f"{p} row {i}")
                    for i, (s, r) in enumerate(zip(sids, rows))}
        except (TypeError, ValueError) as exc:
            raise DataError(f"{p}: column {lists[0]!r}: expected equal-length numeric "
                            f"lists ({exc})") from None
    bad = [c for c in rest if not (pa.types.is_floating(table.schema.field(c).type)
                                   or pa.types.is_integer(table.schema.field(c).type))]
    if bad or not rest:
        raise DataError(f"{p}: expected one list column or only numeric vector columns "
                        f"besides {id_col!r}; not numeric: {', '.join(bad) or 'no columns'}")
    m = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
                  for c in rest], axis=1)
    return {s: m[i:i + 1] for i, s in enumerate(sids)}


def attach_embeddings(dataset: Dataset, path: str | os.PathLike, *, kind: str = "embedding",
                      ids: str | os.PathLike | None = None, id_col: str = "song",
                      identity: str = "stat") -> Dataset:
    """Read the embeddings at `path`, align them with `dataset.song_ids` and store them as
    ``dataset.features[kind]`` (+ ``kind + ".lengths"``); fold their identity into the
    fingerprint. Returns `dataset` (changed in place). See the module docstring."""
    if identity not in ("stat", "content"):
        raise DataError(f"embeddings identity: expected 'stat' or 'content', got {identity!r}")
    emb, files, layout = read_embeddings(path, ids=ids, id_col=id_col)
    dims = {v.shape[1] for v in emb.values()}
    if len(dims) != 1:
        raise DataError(f"{path}: embeddings of different sizes {sorted(dims)}; expected one D")
    d = dims.pop()
    song_ids = [str(s) for s in dataset.song_ids]
    steps = max((emb[s].shape[0] for s in song_ids if s in emb), default=1)
    arr = np.zeros((len(song_ids), steps, d), dtype=np.float32)
    lengths = np.zeros(len(song_ids), dtype=np.int64)
    missing = []
    for i, s in enumerate(song_ids):
        v = emb.get(s)
        if v is None:
            missing.append(s)
            continue
        arr[i, :len(v)] = v
        lengths[i] = len(v)
    unknown = len(set(emb) - set(song_ids))
    key = files_identity(files, identity)
    base = dataset.fingerprint
    dataset.features[kind] = arr
    dataset.features[f"{kind}.lengths"] = lengths
    dataset.manifest.setdefault("pretrained", {})[kind] = {
        "path": str(path), "layout": layout, "identity": key, "identity_from": identity,
        "dim": int(d), "steps": int(steps), "n_missing": len(missing),
        "missing_songs": missing[:MAX_NAMED_MISSING], "n_unknown_ids": unknown}
    dataset.manifest.setdefault("feature_keys", {})[kind] = key
    # the embeddings are part of what the dataset is: a different file, a different dataset
    dataset._fingerprint = hash_arrays(base, "pretrained", kind, key)
    if missing:
        log.warning("embeddings %s: %d of %d songs have none (first: %s); they are scored "
                    "as songs without audio", path, len(missing), len(song_ids),
                    ", ".join(missing[:5]))
    return dataset


def features_key(dataset: Dataset, kind: str) -> str:
    """The identity of `dataset`'s precomputed features `kind` ("" when it has none)."""
    return str((dataset.manifest.get("feature_keys") or {}).get(kind, ""))


def window_of(kind: str, p: dict[str, Any]) -> int:
    """Steps per model window: from the feature parameters for logmel / waveform, one step
    (one embedding vector) for any other precomputed kind."""
    from .frontend import KINDS, window_steps

    return window_steps(kind, p) if kind in KINDS else 1


__all__ = ["attach_embeddings", "features_key", "files_identity", "read_embeddings",
           "window_of"]
