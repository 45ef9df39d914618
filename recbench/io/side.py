"""The side parts of a dataset folder: user features, categories, modalities, events.

Written by :func:`write_side` (called by :func:`recbench.io.folder.write_dataset`) and read
back by :func:`read_side` (the ``folder`` dataset). Every file is optional; tables are keyed
by id, so other tools can write them in any row order::

    user_features.tsv       user<TAB><feature 1><TAB>...   one row per user, float values
    user_categories.tsv     user<TAB><category 1><TAB>...  integer codes, -1 = unknown
    song_categories.tsv     song<TAB><category 1><TAB>...  integer codes, -1 = unknown
    modalities/<name>.npy   a dense songs x D matrix, rows in songs.txt order (or in the
                            order of modalities/<name>.ids.txt, one song id per line)
    modalities/<name>.npz   the same as a scipy sparse matrix (``scipy.sparse.save_npz``);
                            <name> is %-quoted where a file name cannot hold it
    events.tsv              user<TAB>song<TAB>timestamp<TAB>session<TAB>skipped, one
                            listening event per line (skipped: 1 or 0; session: an integer
                            id unique per user session; timestamp: any monotone number),
                            and optionally a sixth column ``propensity``: the probability
                            in (0, 1] with which the logging policy showed the track

``dataset.json`` holds, under ``"side"``, the files written and the names of the codes
(``category_names``, keyed ``"user:<category>"`` / ``"song:<category>"``), which tools
other than recbench may also write.

Reading rules (counted in the manifest like the interactions table's): malformed lines
(wrong number of fields, values that are not numbers, codes below -1) are skipped and
counted with the first located as file:line; rows of unknown users or songs are dropped
and counted; users or songs a table does not mention get 0 features / code -1 / a zero
modality row, counted as ``side_missing.<part>``; a modality row whose song is unknown is
dropped. Events are sorted by (user, timestamp), file order breaking ties.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from .atomic import atomic_path
from .dataset import Dataset, Events
from .tsv import fmt_numbers, read_id_list, write_tsv

USER_FEATURES = "user_features.tsv"
USER_CATEGORIES = "user_categories.tsv"
SONG_CATEGORIES = "song_categories.tsv"
MODALITIES_DIR = "modalities"
EVENTS = "events.tsv"
EVENT_COLUMNS = ("user", "song", "timestamp", "session", "skipped")
PROPENSITY = "propensity"  # the optional events column (off-policy evaluation)
_UNSAFE = re.compile(r"[\t\r\n]")


# --------------------------------------------------------------------------- writing


def _check_name(name: str, what: str) -> str:
    if not str(name) or _UNSAFE.search(str(name)):
        raise DataError(f"cannot write {what} {name!r}: expected a non-empty name without "
                        "tabs or newlines (it names a column)")
    return str(name)


def modality_file_stem(name: str) -> str:
    """The file name stem of modality `name` (%-quoted where a file name could not hold it;
    the reader unquotes it)."""
    from urllib.parse import quote

    stem = quote(_check_name(name, "modality name"), safe="-_.+=@,~ ")
    return "%2E" + stem[1:] if stem.startswith(".") else stem


def _fmt(values: np.ndarray) -> np.ndarray:
    return fmt_numbers(np.asarray(values))


def write_side(dataset: Dataset, out: Path, user_ids: list[str], song_ids: list[str]
               ) -> dict[str, Any] | None:
    """Write `dataset`'s side parts into the folder `out`; returns dataset.json's ``side``
    block (None when the dataset has none)."""
    if not dataset.side_parts():
        return None
    files: dict[str, Any] = {}
    uids = np.asarray(user_ids, dtype=object)
    sids = np.asarray(song_ids, dtype=object)
    if dataset.user_features is not None:
        uf = np.asarray(dataset.user_features)
        names = list(dataset.user_feature_names) or [f"f{j}" for j in range(uf.shape[1])]
        names = [_check_name(n, "user feature name") for n in names]
        write_tsv(out / USER_FEATURES, ["user"] + names,
                   [uids] + [_fmt(uf[:, j]) for j in range(uf.shape[1])])
        files["user_features"] = {"file": USER_FEATURES, "dtype": str(uf.dtype),
                                  "names_given": bool(dataset.user_feature_names)}
    for part, fname, ids, key in (("user_categories", USER_CATEGORIES, uids, "user"),
                                  ("song_categories", SONG_CATEGORIES, sids, "song")):
        cats = getattr(dataset, part)
        if cats:
            names = [_check_name(n, "category name") for n in sorted(cats)]
            write_tsv(out / fname, [key] + names,
                       [ids] + [np.asarray(cats[n]).astype(np.int64).astype(str).astype(object)
                                for n in names])
            files[part] = {"file": fname, "categories": names}
    if dataset.modalities:
        (out / MODALITIES_DIR).mkdir(exist_ok=True)
        mods = {}
        for name in sorted(dataset.modalities):
            m = dataset.modalities[name]
            stem = modality_file_stem(name)
            rel = f"{MODALITIES_DIR}/{stem}.{'npz' if sp.issparse(m) else 'npy'}"
            with atomic_path(out / rel, suffix=rel[-4:]) as tmp:
                if sp.issparse(m):
                    sp.save_npz(tmp, sp.csr_matrix(m), compressed=True)
                else:
                    np.save(tmp, np.asarray(m))
            mods[name] = {"file": rel, "shape": list(m.shape), "sparse": bool(sp.issparse(m))}
        files["modalities"] = mods
    if dataset.events is not None:
        ev = dataset.events
        prop = [] if ev.propensity is None else [
            np.char.mod("%.17g", ev.propensity.astype(np.float64)).astype(object)]
        write_tsv(out / EVENTS, list(EVENT_COLUMNS) + [PROPENSITY] * len(prop),
                   [uids[ev.user], sids[ev.song],
                    np.char.mod("%.17g", ev.timestamp.astype(np.float64)).astype(object),
                    ev.session.astype(np.int64).astype(str).astype(object),
                    ev.skipped.astype(np.int64).astype(str).astype(object), *prop])
        files["events"] = {"file": EVENTS, "n_events": len(ev)}
    return {"parts": dataset.side_parts(), "files": files,
            "category_names": {k: list(map(str, v))
                               for k, v in sorted(dataset.category_names.items())}}


# --------------------------------------------------------------------------- reading


def side_files(root: Path) -> tuple[str, ...]:
    """The side parts (`SIDE_PARTS` names) whose files are in the folder `root`."""
    found = {"user_features": (root / USER_FEATURES).is_file(),
             "user_categories": (root / USER_CATEGORIES).is_file(),
             "song_categories": (root / SONG_CATEGORIES).is_file(),
             "modalities": (root / MODALITIES_DIR).is_dir() and any(
                 p.suffix in (".npy", ".npz") and not p.name.startswith(".")
                 for p in (root / MODALITIES_DIR).iterdir()),
             "events": (root / EVENTS).is_file()}
    return tuple(k for k, v in found.items() if v)


def _value_set(ids: np.ndarray) -> Any:
    """`ids` as a pyarrow string array (built once per table, looked up per batch)."""
    import pyarrow as pa

    return pa.array([str(x) for x in ids], pa.string())


def _positions(col: Any, value_set: Any) -> np.ndarray:
    """Positions of the strings of pyarrow array `col` in `value_set` (-1 when absent)."""
    import pyarrow.compute as pcc

    return pcc.fill_null(pcc.index_in(col, value_set=value_set), -1).to_numpy(
        zero_copy_only=False).astype(np.int64)


def _read_keyed(path: Path, key: str, ids: np.ndarray, problems, integer: bool
                ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(value column names, row positions, values rows x columns) of a table keyed by `key`
    ids; malformed rows and unknown ids are counted and dropped."""
    from .problems import report_bad_rows
    from .tables import TableReader
    from .text import parse_numbers

    columns = [c for c in TableReader(path, [key]).available if c != key]
    reader = TableReader(path, [key] + columns, problems=problems)
    id_set = _value_set(ids)
    pos_all, val_all = [], []
    for row0, cols in reader:
        n = len(cols[key])
        vals = np.zeros((n, len(columns)))
        bad = np.zeros(n, dtype=bool)
        for j, c in enumerate(columns):
            v, ok = parse_numbers(cols[c])
            if integer:
                ok &= (v == np.round(v)) & (v >= -1)
            vals[:, j] = v
            bad |= ~ok
        report_bad_rows(problems, reader, row0, bad,
                        lambda p: ("expected integer codes >= -1 (-1 = unknown)" if integer
                                   else "expected a finite number in every column"))
        pos = _positions(cols[key], id_set)
        unknown = ~bad & (pos < 0)
        problems.drop(f"side_unknown_{key}s.{path.name}", int(unknown.sum()))
        good = ~bad & ~unknown
        pos_all.append(pos[good])
        val_all.append(vals[good])
    pos = np.concatenate(pos_all) if pos_all else np.zeros(0, np.int64)
    vals = np.concatenate(val_all) if val_all else np.zeros((0, len(columns)))
    return columns, pos, vals


def _scatter(n: int, pos: np.ndarray, vals: np.ndarray, fill: float, problems, part: str
             ) -> np.ndarray:
    out = np.full((n, vals.shape[1]), fill)
    out[pos] = vals  # a repeated id: the last row wins
    missing = n - len(np.unique(pos))
    problems.drop(f"side_missing.{part}", missing)
    return out


def read_side(root: Path, meta: dict[str, Any] | None, user_ids: np.ndarray,
              song_ids: np.ndarray, problems, row_songs: list[str] | None = None
              ) -> dict[str, Any]:
    """The side parts found in the folder `root`, aligned with `user_ids` / `song_ids`, as
    keyword arguments of :class:`Dataset` (see the module docstring for the rules).

    row_songs: the song ids of modality rows when no ``<name>.ids.txt`` is given (the
    written dataset's songs.txt); None = `song_ids`."""
    side_meta = (meta or {}).get("side") or {}
    written = side_meta.get("files") or {}
    out: dict[str, Any] = {}
    nu, ns = len(user_ids), len(song_ids)
    if (root / USER_FEATURES).is_file():
        names, pos, vals = _read_keyed(root / USER_FEATURES, "user", user_ids, problems,
                                       integer=False)
        dtype = (written.get("user_features") or {}).get("dtype", "float32")
        out["user_features"] = _scatter(nu, pos, vals, 0.0, problems,
                                        "user_features").astype(dtype)
        given = (written.get("user_features") or {}).get("names_given", True)
        out["user_feature_names"] = names if given else []
    for part, fname, key, ids, n in (("user_categories", USER_CATEGORIES, "user", user_ids, nu),
                                     ("song_categories", SONG_CATEGORIES, "song", song_ids, ns)):
        if (root / fname).is_file():
            names, pos, vals = _read_keyed(root / fname, key, ids, problems, integer=True)
            arr = _scatter(n, pos, vals, -1, problems, part).astype(np.int64)
            out[part] = {name: arr[:, j].copy() for j, name in enumerate(names)}
    if "modalities" in side_files(root):
        out["modalities"] = _read_modalities(root / MODALITIES_DIR, song_ids, problems,
                                             row_songs)
    if (root / EVENTS).is_file():
        out["events"] = _read_events(root / EVENTS, user_ids, song_ids, problems)
    code_names = side_meta.get("category_names")
    if isinstance(code_names, dict) and code_names:
        out["category_names"] = {str(k): [str(x) for x in v] for k, v in code_names.items()}
    return out


def _read_modalities(folder: Path, song_ids: np.ndarray, problems,
                     row_songs: list[str] | None) -> dict[str, Any]:
    from urllib.parse import unquote

    out: dict[str, Any] = {}
    index = {str(s): i for i, s in enumerate(song_ids)}
    for p in sorted(folder.iterdir()):
        if p.suffix not in (".npy", ".npz") or p.name.startswith("."):
            continue  # dot files: temporary files of an interrupted write
        name = unquote(p.stem)
        try:
            m = sp.load_npz(p).tocsr() if p.suffix == ".npz" else np.load(p)
        except Exception as exc:  # noqa: BLE001 - any unreadable file: one line
            raise DataError(f"{p}: unreadable ({type(exc).__name__}: {exc}); expected a "
                            f"{'scipy.sparse.save_npz' if p.suffix == '.npz' else 'numpy'} "
                            "file of songs x D") from None
        ids_file = folder / f"{p.stem}.ids.txt"
        rows = read_id_list(ids_file) if ids_file.is_file() else (
            row_songs if row_songs is not None else [str(s) for s in song_ids])
        if m.ndim != 2 or m.shape[0] != len(rows):
            listed = ids_file.name if ids_file.is_file() else "songs.txt"
            raise DataError(f"{p}: expected a 2-D matrix with one row per song "
                            f"({len(rows)} rows, as {listed}), got shape {m.shape}")
        src = np.array([index.get(r, -1) for r in rows], dtype=np.int64)
        problems.drop(f"side_unknown_songs.{p.name}", int((src < 0).sum()))
        if np.array_equal(src, np.arange(len(song_ids))):
            out[name] = m
            continue
        keep = np.flatnonzero(src >= 0)
        problems.drop(f"side_missing.modalities.{name}", len(song_ids) - len(np.unique(src[keep])))
        if sp.issparse(m):
            sel = sp.csr_matrix((np.ones(len(keep)), (src[keep], keep)),
                                shape=(len(song_ids), m.shape[0]))
            out[name] = (sel @ m).astype(m.dtype).tocsr()
        else:
            arr = np.zeros((len(song_ids), m.shape[1]), dtype=m.dtype)
            arr[src[keep]] = m[keep]
            out[name] = arr
    return out


def _read_events(path: Path, user_ids: np.ndarray, song_ids: np.ndarray, problems) -> Events:
    import pyarrow.compute as pcc

    from .problems import report_bad_rows
    from .tables import TableReader
    from .text import parse_numbers

    reader = TableReader(path, [*EVENT_COLUMNS, PROPENSITY], optional=[PROPENSITY],
                         problems=problems)
    has_prop = PROPENSITY in reader.present
    user_set, song_set = _value_set(user_ids), _value_set(song_ids)
    parts: dict[str, list[np.ndarray]] = {c: [] for c in (*EVENT_COLUMNS, PROPENSITY)}
    for row0, cols in reader:
        ts, ok_t = parse_numbers(cols["timestamp"])
        prop, ok_p = (parse_numbers(cols[PROPENSITY]) if has_prop
                      else (np.ones(len(ts)), np.ones(len(ts), dtype=bool)))
        sess, ok_s = parse_numbers(cols["session"])
        ok_s &= sess == np.round(sess)
        skip_txt = pcc.utf8_lower(pcc.utf8_trim_whitespace(cols["skipped"]))
        is_true = pcc.is_in(skip_txt, value_set=_pa_strings(["1", "true"])).to_numpy(
            zero_copy_only=False)
        is_false = pcc.is_in(skip_txt, value_set=_pa_strings(["0", "false"])).to_numpy(
            zero_copy_only=False)
        bad = ~(ok_t & ok_s & ok_p & (is_true | is_false))
        report_bad_rows(problems, reader, row0, bad,
                        lambda p: "expected a number timestamp, an integer session and "
                                  "skipped 0/1" + (" and a number propensity" if has_prop
                                                   else ""))
        u, s = _positions(cols["user"], user_set), _positions(cols["song"], song_set)
        unknown = ~bad & ((u < 0) | (s < 0))
        problems.drop("side_unknown_ids.events", int(unknown.sum()))
        good = ~bad & ~unknown
        for name, arr in (("user", u), ("song", s), ("timestamp", ts),
                          ("session", sess), ("skipped", is_true), (PROPENSITY, prop)):
            parts[name].append(arr[good])
    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in parts.items()}
    order = np.lexsort((cat["timestamp"], cat["user"]))  # stable: file order breaks ties
    ev = Events(user=cat["user"].astype(np.int64)[order],
                song=cat["song"].astype(np.int64)[order],
                timestamp=cat["timestamp"].astype(np.float64)[order],
                session=cat["session"].astype(np.int64)[order],
                skipped=cat["skipped"].astype(bool)[order],
                propensity=cat[PROPENSITY].astype(np.float64)[order] if has_prop else None)
    try:
        ev.validate(len(user_ids), len(song_ids))
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    return ev


def _pa_strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, pa.string())


__all__ = ["EVENTS", "EVENT_COLUMNS", "MODALITIES_DIR", "SONG_CATEGORIES", "USER_CATEGORIES",
           "USER_FEATURES", "read_side", "side_files", "write_side"]
