"""The `deezer-coldstart` dataset: the Deezer user cold start release of the KDD 2021
paper "A Semi-Personalized System for User Cold Start Recommendation on Music Streaming
Apps" (Briand et al.), read from a local copy; nothing is downloaded.

Published layout (https://zenodo.org/record/5121674, files in one folder):

    song_embeddings.parquet                 song_index, features_svd (list of 128
                                            floats), features_mf (list of 256 floats)
    user_embeddings.parquet                 svd_embeddings, mf_embeddings (lists; rows in
                                            the order of the training users sorted by
                                            user_index; a user_index column is used when
                                            present)
    user_features_{train,validation,test}_{svd,mf}.parquet
                                            user_index, d1d30_songs (list of song_index
                                            listened in the first 30 days), then, from
                                            the third column on, the registration /
                                            first-day features (2579 for svd, 5139 for
                                            mf; NaN means 0)

Sources: deezer/semi_perso_user_cold_start data_generation.py (read_parquet of these
files; features = the columns from the third on; fillna(0); d1d30_songs mapped through
song_index; user embeddings aligned with the training users sorted by user_index),
model_evaluation.py (song_embeddings "features_" + version), options.py (versions svd /
mf, dataset_eval = validation, test), data/read_me (the Zenodo record).

What it becomes. Songs: the rows of song_embeddings.parquet (ids = song_index);
modality "embedding" = their `features_<version>` vectors. Users: the users of the three
feature files (ids = user_index); `counts`: 1 for each song in d1d30_songs;
`user_features`: the feature columns (float32, NaN -> 0, counted under
repaired.missing_features_zeroed), named after the columns; a file without
d1d30_songs gives its users no interactions (named in files_without_d1d30_songs); user category
"official_split" (0 train, 1 validation, 2 test). With `user_embeddings = true`, the
paper's regression targets (present for training users only, zeros otherwise) are
appended to user_features as target_0.. (they are derived from listening data: a model
that reads them for evaluation users would leak; off by default).

Bad input: a row with a null id, a list of the wrong length or a null d1d30_songs is
skipped, counted under dropped.malformed_rows and named "file: row N" (fatal under
strict); songs listed in d1d30_songs but absent from song_embeddings are dropped and
counted (dropped.unknown_songs); a user listed twice keeps the first row
(dropped.duplicate_users). Missing files: one line naming the file expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recbench import hookimpl
from recbench.components import DatasetLoader, LoadContext
from recbench.data import Dataset
from recbench.errors import DataError
from recbench.params import Param
from recbench_builtin.datasets import _realdata as R

PARTS = ("train", "validation", "test")


class DeezerColdStartDataset(DatasetLoader):
    """Deezer KDD 2021 user cold start: registration features, first-month songs, embeddings."""

    name = "deezer-coldstart"
    description = ("Deezer user cold start release of KDD 2021 (local copy): user registration "
                   "features, first-30-day songs, song embeddings")
    params = (
        Param("root", str, required=True,
              help="the folder of the Zenodo files (relative: to the suite file)"),
        Param("version", str, "svd", choices=("svd", "mf"),
              help="which embeddings / feature files: svd (TT-SVD) or mf (UT-ALS)"),
        Param("user_embeddings", bool, False,
              help="append the paper's user embedding targets to user_features (train "
                   "users only; derived from listening)"),
        Param("dataset_name", str, "deezer-coldstart", help="dataset name in results"),
        Param("strict", bool, False, help="malformed rows are fatal"),
    )

    def _root(self, base: str | None) -> Path:
        return R.root_dir(self.name, self.options["root"], base)

    def _files(self, root: Path) -> dict[str, Path]:
        v = self.options["version"]
        files = {"songs": ("song_embeddings.parquet", "the song embeddings")}
        files.update({p: (f"user_features_{p}_{v}.parquet", f"the {p} users' features")
                      for p in PARTS})
        if self.options["user_embeddings"]:
            files["user_embeddings"] = ("user_embeddings.parquet", "the user embeddings")
        return {k: R.need_file(self.name, "root", root / f, what)
                for k, (f, what) in files.items()}

    def validate(self, suite_dir: str | None = None) -> None:
        """The root and every file of the chosen version exist."""
        self._files(self._root(suite_dir))

    def provides(self, suite_dir: str | None = None) -> tuple[str, ...]:
        """interactions, user features and categories, the song embedding modality."""
        return ("interactions", "user_features", "user_categories", "modalities")

    def load(self, ctx: LoadContext) -> Dataset:
        """Read the parquet files (see the module docstring)."""
        from recbench import dataio

        o = self.options
        root = self._root(ctx.suite_dir)
        files = self._files(root)
        problems = dataio.Problems(strict=bool(o["strict"] or ctx.strict))
        v = o["version"]
        song_tab = _read(files["songs"])
        song_col = _list_column(song_tab, files["songs"], f"features_{v}", "song_index")
        song_idx = song_tab.column("song_index").to_pylist()
        emb, ok = _lists(song_col)
        ok &= np.array([s is not None for s in song_idx])
        _report(problems, files["songs"], ok, f"null song_index or features_{v} not a "
                                              f"list of {emb.shape[1]} numbers")
        song_ids = np.array([str(s) for s, k in zip(song_idx, ok) if k], dtype=str)
        emb = emb[ok]
        song_pos = {s: i for i, s in enumerate(song_ids.tolist())}

        users: list[str] = []
        feats, parts, rows, cols = [], [], [], []
        info_missing: list[str] = []
        names: list[str] | None = None
        for code, part in enumerate(PARTS):
            tab = _read(files[part])
            if ctx.limit is not None:  # smoke runs: the first rows of each users' file
                tab = tab.slice(0, ctx.limit)
            if "user_index" not in tab.column_names:
                raise DataError(f"{files[part]}: no column 'user_index' (columns: "
                                f"{', '.join(tab.column_names[:8])}, ...)")
            # the paper's code takes the features as the columns from the third on
            fcols = tab.column_names[2:]
            if names is None:
                names = fcols
            elif fcols != names:
                raise DataError(f"{files[part]}: feature columns differ from "
                                f"{files['train'].name}'s ({len(fcols)} vs {len(names)})")
            uidx = tab.column("user_index").to_pylist()
            if "d1d30_songs" in tab.column_names:
                listened = tab.column("d1d30_songs").to_pylist()
            else:  # no first-month songs in this file: its users have no interactions
                listened = [[] for _ in uidx]
                info_missing.append(files[part].name)
            ok = np.array([u is not None and isinstance(s, list)
                           for u, s in zip(uidx, listened)], dtype=bool)
            _report(problems, files[part], ok, "null user_index or d1d30_songs")
            x = _numbers(tab, fcols, files[part])
            nan = ~np.isfinite(x)
            problems.repair("missing_features_zeroed", int(nan[ok].sum()))
            x[nan] = 0.0
            seen = set(users)
            for i in np.flatnonzero(ok):
                uid = str(uidx[i])
                if uid in seen:
                    problems.drop("duplicate_users", 1)
                    continue
                seen.add(uid)
                u = len(users)
                users.append(uid)
                feats.append(x[i])
                parts.append(code)
                known = [song_pos.get(str(s)) for s in listened[i]]
                problems.drop("unknown_songs", sum(k is None for k in known))
                known = [k for k in known if k is not None]
                rows += [u] * len(known)
                cols += known
        if not users:
            raise DataError(f"{files['train']}: no valid user rows "
                            f"({problems.manifest()['dropped']})")
        user_ids = np.array(users, dtype=str)
        counts, merged = dataio.coo_to_csr(np.array(rows, np.int64), np.array(cols, np.int64),
                                           np.ones(len(rows)), (len(users), len(song_ids)))
        counts.data[:] = 1.0
        user_features = np.vstack(feats).astype(np.float32)
        names = list(names or [])
        info = {"loader": self.name, "root": str(root), "version": v,
                "files_without_d1d30_songs": info_missing,
                "users_per_part": {p: int((np.array(parts) == k).sum())
                                   for k, p in enumerate(PARTS)}}
        if o["user_embeddings"]:
            target = self._targets(files["user_embeddings"], user_ids, np.array(parts),
                                   problems)
            user_features = np.hstack([user_features, target])
            names += [f"target_{j}" for j in range(target.shape[1])]
        ds = Dataset(name=o["dataset_name"], counts=counts, user_ids=user_ids,
                     song_ids=song_ids, manifest={**info, **problems.manifest()},
                     user_features=user_features, user_feature_names=names,
                     user_categories={"official_split": np.array(parts, dtype=np.int64)},
                     category_names={"user:official_split": list(PARTS)},
                     modalities={"embedding": emb.astype(np.float32)})
        ds.validate_side()
        return ds

    def _targets(self, path: Path, user_ids: np.ndarray, parts: np.ndarray, problems
                 ) -> np.ndarray:
        """users x D embedding targets: rows matched by user_index when the file has it,
        else in the order of the training users sorted by user_index (the paper's code)."""
        v = self.options["version"]
        tab = _read(path)
        col = _list_column(tab, path, f"{v}_embeddings", None)
        emb, ok = _lists(col)
        _report(problems, path, ok, f"{v}_embeddings not a list of {emb.shape[1]} numbers")
        out = np.zeros((len(user_ids), emb.shape[1]), dtype=np.float32)
        pos = {u: i for i, u in enumerate(user_ids.tolist())}
        if "user_index" in tab.column_names:
            keys = [str(u) for u in tab.column("user_index").to_pylist()]
        else:
            train = sorted((u for u, p in zip(user_ids.tolist(), parts) if p == 0),
                           key=lambda u: (len(u), u) if u.isdigit() else (0, u))
            keys = train + [None] * max(len(emb) - len(train), 0)
        for k, (key, good) in enumerate(zip(keys, ok)):
            if good and key in pos:
                out[pos[key]] = emb[k]
        return out


def _read(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: not a readable Parquet file ({R.one_line(exc)})") from None


def _numbers(tab, columns: list[str], path: Path) -> np.ndarray:
    """rows x len(columns) float32 of numeric columns (null -> NaN); a column that is not
    numeric is a one-line error naming it."""
    import pyarrow as pa

    out = np.zeros((tab.num_rows, len(columns)), dtype=np.float32)
    for j, c in enumerate(columns):
        col = tab.column(c)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)
                or pa.types.is_boolean(col.type) or pa.types.is_null(col.type)):
            raise DataError(f"{path}: feature column {c!r} has type {col.type}; expected "
                            "numbers (every column after user_index and d1d30_songs)")
        out[:, j] = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return out


def _list_column(tab, path: Path, name: str, id_col: str | None):
    need = [name] + ([id_col] if id_col else [])
    missing = [c for c in need if c not in tab.column_names]
    if missing:
        raise DataError(f"{path}: no column {', '.join(map(repr, missing))} (columns: "
                        f"{', '.join(tab.column_names[:8])})")
    return tab.column(name).to_pylist()


def _lists(values: list) -> tuple[np.ndarray, np.ndarray]:
    """(rows x D float32, ok) of a column of number lists; D is the most common length;
    a null, a list of another length or a non-number makes the row not ok."""
    lengths = [len(v) if isinstance(v, list) else -1 for v in values]
    good_lengths = [n for n in lengths if n > 0]
    d = max(set(good_lengths), key=good_lengths.count) if good_lengths else 0
    out = np.zeros((len(values), d), dtype=np.float32)
    ok = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if lengths[i] == d and all(isinstance(x, (int, float)) for x in v):
            out[i] = v
            ok[i] = np.isfinite(out[i]).all()
    return out, ok


def _report(problems, path: Path, ok: np.ndarray, reason: str) -> None:
    bad = np.flatnonzero(~ok)
    for j, i in enumerate(bad[:5]):
        problems.bad("malformed_rows", f"{path}: row {i + 1}", reason,
                     n=1 if j < min(len(bad), 5) - 1 else len(bad) - j)


@hookimpl
def recbench_register_datasets(register):
    register(DeezerColdStartDataset)
