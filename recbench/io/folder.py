"""The generic on-disk dataset format, and the table readers the loaders share.

A dataset folder (written by :func:`write_dataset`, read by the ``folder`` dataset)::

    dataset.json       name, synthetic flag, sample_rate, feature_params, tag names, audio
                       index, the source dataset's manifest
    interactions.tsv   user<TAB>song<TAB>count, with a header line
    users.txt          user ids in row order (one per line; also users without interactions)
    songs.txt          song ids in column order
    tags.tsv           song<TAB>tag (plus <TAB>value when a tag weight is not 1), with a header
    audio/<song>.wav   one clip per song; ids are %-quoted when they contain unsafe characters
    features/<name>.npy  precomputed per-song features (Dataset.features), if any
    user_features.tsv, user_categories.tsv, song_categories.tsv, modalities/<name>.npy|npz,
    events.tsv         the optional side parts (see :mod:`recbench.io.side`)

Only interactions.tsv is needed by the ``folder`` loader; the rest is optional.

Audio identities. `Dataset.fingerprint` hashes every song's audio identity. Clips are
written as 32-bit float WAV at the dataset's sample rate, which decodes back to exactly
the samples the source returned (float32, mono, no resampling). `dataset.json` records,
per song, the source identity and the SHA-256, size and mtime of the written file. On
reading, a song gets its source identity back only when its file is provably the one
written (same size and mtime, or else the same SHA-256); otherwise its identity is the
file's content hash and the fingerprint changes, as it should. With a lossy
`audio_subtype` (e.g. PCM_16) identities are never restored: the audio differs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from .atomic import atomic_path, atomic_write_text
from .dataset import Dataset
from .tsv import fmt_numbers, read_id_list, write_tsv

FORMAT_NAME = "recbench-dataset"
FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
LOSSLESS_SUBTYPES = {"FLOAT": np.float32, "DOUBLE": np.float64}

_UNSAFE = re.compile(r"[\t\r\n]")


# --------------------------------------------------------------------------- writing


def _check_id(value: str, what: str) -> str:
    s = str(value)
    if _UNSAFE.search(s) or s == "":
        raise DataError(f"cannot write {what} {s!r}: ids must be non-empty and contain no "
                        "tab or newline")
    return s


def audio_file_name(song_id: str, ext: str = "wav") -> str:
    """The file name of a song's clip: the id, %-quoted when it has unsafe characters."""
    safe = quote(str(song_id), safe="-_.+=@,~ ")
    if safe in ("", ".", "..") or safe.startswith("."):
        safe = quote(safe, safe="")
        safe = safe.replace(".", "%2E", 1) if safe.startswith(".") else safe
    return f"{safe}.{ext}"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist() if obj.size <= 10_000 else f"<array {obj.shape} {obj.dtype}>"
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return repr(obj)


def write_dataset(dataset: Dataset, out_dir: str | os.PathLike, *,
                  audio_subtype: str = "FLOAT", overwrite: bool = False,
                  progress: Callable[..., Any] | None = None) -> Path:
    """Write `dataset` as a dataset folder (see the module docstring); returns its path.

    audio_subtype: soundfile subtype of the WAV clips: "FLOAT" (default, lossless for
                   float32 sources, so the fingerprint survives a round trip) or e.g.
                   "PCM_16" (half the size; the audio and the fingerprint change).
    overwrite:     replace an existing dataset folder's files (otherwise DataError).
    progress:      `progress(iterable, total=, desc=)` around the audio loop.
    Songs whose audio cannot be read are listed in dataset.json["audio"]["unreadable"].
    """
    out = Path(out_dir)
    if (out / DATASET_JSON).exists() and not overwrite:
        raise DataError(f"{out}: already holds a dataset ({DATASET_JSON}); choose another "
                        "folder or pass overwrite")
    out.mkdir(parents=True, exist_ok=True)
    # dataset.json is written last and means "complete": gone first, an interrupted
    # overwrite leaves a folder that does not look complete
    (out / DATASET_JSON).unlink(missing_ok=True)
    user_ids = [_check_id(u, "user id") for u in dataset.user_ids]
    song_ids = [_check_id(s, "song id") for s in dataset.song_ids]
    if len(set(user_ids)) != len(user_ids) or len(set(song_ids)) != len(song_ids):
        raise DataError(f"{dataset.name}: user or song ids are not unique; cannot write")
    tag_names = [_check_id(t, "tag name") for t in dataset.tag_names]

    atomic_write_text(out / "users.txt", "".join(u + "\n" for u in user_ids), fsync=False)
    atomic_write_text(out / "songs.txt", "".join(s + "\n" for s in song_ids), fsync=False)

    m = sp.csr_matrix(dataset.counts).tocoo()
    write_tsv(out / "interactions.tsv", ["user", "song", "count"],
               [np.asarray(user_ids, dtype=object)[m.row],
                np.asarray(song_ids, dtype=object)[m.col], fmt_numbers(m.data)])

    files: dict[str, Any] = {"interactions": "interactions.tsv", "users": "users.txt",
                             "songs": "songs.txt", "tags": None, "audio_dir": None}
    if dataset.tags is not None:
        t = sp.csr_matrix(dataset.tags).tocoo()
        cols = [np.asarray(song_ids, dtype=object)[t.row],
                np.asarray(tag_names, dtype=object)[t.col]]
        header = ["song", "tag"]
        if t.nnz and not np.all(t.data == 1):
            header.append("value")
            cols.append(fmt_numbers(t.data))
        write_tsv(out / "tags.tsv", header, cols)
        files["tags"] = "tags.tsv"

    meta: dict[str, Any] = {
        "format": FORMAT_NAME, "version": FORMAT_VERSION, "name": dataset.name,
        "synthetic": bool(dataset.synthetic),
        "sample_rate": int(dataset.audio.sample_rate) if dataset.audio is not None else None,
        "n_users": int(dataset.n_users), "n_songs": int(dataset.n_songs),
        "n_interactions": int(dataset.counts.nnz), "fingerprint": dataset.fingerprint,
        "files": files, "tag_names": tag_names, "tags_shape": (
            list(dataset.tags.shape) if dataset.tags is not None else None),
        "feature_params": _json_safe(dataset.manifest.get("feature_params")),
        "manifest": _json_safe(dataset.manifest),
    }
    if dataset.audio is not None:
        meta["audio"] = _write_audio(dataset, out, song_ids, audio_subtype, progress)
        files["audio_dir"] = "audio"
    if dataset.features:
        (out / "features").mkdir(exist_ok=True)
        feats = {}
        for name, arr in dataset.features.items():
            rel = f"features/{name}.npy"
            with atomic_path(out / rel, suffix=".npy") as tmp:
                np.save(tmp, np.asarray(arr))
            feats[name] = {"file": rel, "shape": list(np.shape(arr)),
                           "dtype": str(np.asarray(arr).dtype)}
        meta["features"] = feats
    from .side import write_side

    side = write_side(dataset, out, user_ids, song_ids)
    if side is not None:
        meta["side"] = side
    # written last: its presence means "complete"
    atomic_write_text(out / DATASET_JSON, json.dumps(meta, indent=1) + "\n")
    return out


def _write_audio(dataset: Dataset, out: Path, song_ids: list[str], subtype: str,
                 progress: Callable[..., Any] | None) -> dict[str, Any]:
    import hashlib

    import soundfile as sf

    audio = dataset.audio
    assert audio is not None
    (out / "audio").mkdir(exist_ok=True)
    sr = int(audio.sample_rate)
    files: dict[str, Any] = {}
    unreadable: dict[str, str] = {}
    lossless_dtype = LOSSLESS_SUBTYPES.get(subtype.upper())
    it = range(len(audio))
    if progress is not None:
        it = progress(it, total=len(audio), desc="writing audio")
    for i in it:
        sid = song_ids[i]
        try:
            x = np.asarray(audio.waveform(i))
        except Exception as exc:  # noqa: BLE001 - recorded, the song is left without audio
            unreadable[sid] = " ".join(str(exc).split())[:200] or type(exc).__name__
            continue
        rel = "audio/" + audio_file_name(sid, "wav")
        with atomic_path(out / rel) as tmp:
            sf.write(tmp, x, sr, subtype=subtype, format="WAV")
        data = (out / rel).read_bytes()
        st = os.stat(out / rel)
        lossless = (lossless_dtype is not None and x.ndim == 1 and x.dtype == lossless_dtype)
        files[sid] = {"file": rel, "source_identity": audio.identity(i),
                      "lossless": bool(lossless),
                      "sha256": hashlib.sha256(data).hexdigest(), "size": st.st_size,
                      "mtime_ns": st.st_mtime_ns}
    return {"dir": "audio", "subtype": subtype, "sample_rate": sr, "files": files,
            "unreadable": unreadable}


# --------------------------------------------------------------------------- reading


def read_dataset_json(root: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed dataset.json of a dataset folder, or None if it has none."""
    p = Path(root) / DATASET_JSON
    if not p.exists():
        return None
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DataError(f"{p}: not a recbench dataset description (expected "
                        f"\"format\": \"{FORMAT_NAME}\")")
    if int(meta.get("version", 0)) > FORMAT_VERSION:
        raise DataError(f"{p}: dataset format version {meta.get('version')} is newer than "
                        f"this recbench reads ({FORMAT_VERSION})")
    return meta


def restored_identity(root: Path, entry: dict[str, Any], path: str) -> str | None:
    """The source identity recorded for a written clip, if the file is provably unchanged.

    Unchanged = same size and mtime as recorded, or else the same SHA-256 (a copy).
    Returns None when the clip was written lossily or the file changed.
    """
    from .audio import file_sha256

    if not entry.get("lossless") or not entry.get("source_identity"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_size != entry.get("size"):
        return None
    if st.st_mtime_ns == entry.get("mtime_ns"):
        return str(entry["source_identity"])
    if file_sha256(path) == entry.get("sha256"):
        return str(entry["source_identity"])
    return None
