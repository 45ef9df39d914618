"""The two (or three) streaming passes over the triplets and the subset rules.

Subset rules (`subset`):

- ``clean`` (recbench's default): songs ranked by `song_rank` (total plays, or
  listeners) after dropping the songs of `sid_mismatches.txt` (less the pairs of
  `sid_matches_manually_accepted.txt`); with audio, the ranking is walked down until
  `n_songs` songs have a clip that decodes; users ranked by `user_rank` over those songs
  (distinct songs played, or their plays), ties by id.
- ``authors`` (the authors' code, `kyungyunlee/Echonest-TasteProfile-DataLoader`
  `load_user_data.py`): the `n_songs` songs with most total plays over all users,
  mismatched songs kept; songs without a usable clip are then dropped, not replaced; the
  `n_users` users with most total plays over ALL songs (not only the selected ones),
  ties by id; the matrix is their intersection (a top user with no play among the
  songs has an empty row and is dropped, counted in `users_without_selected_songs`).
  Pass 1 sums plays per song and per user, pass 2 keeps only the rows of selected users
  and songs: memory is bounded by the subset, not the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from recbench.data import Dataset, hash_arrays
from recbench.errors import DataError

from .audio import AudioSteps
from .files import read_accepted_pairs, read_mismatch_pairs, read_tracks
from .tags import TagSteps

SUBSET_RULES = {
    "clean": "clean: top n_songs by song_rank with sid_mismatches dropped (manually "
             "accepted pairs kept), refilled past songs without audio; top n_users by "
             "user_rank over those songs",
    "authors": "authors: top n_songs by total plays over all users, mismatches kept, "
               "songs without audio dropped (no refill); top n_users by total plays over "
               "all songs (kyungyunlee/Echonest-TasteProfile-DataLoader)",
}


def seal_fingerprint(ds: Dataset) -> None:
    """The subset and tag rules enter the fingerprint: two rules never share one, even
    where they happen to select the same arrays."""
    base = ds.fingerprint
    ds._fingerprint = hash_arrays(base, ds.manifest.get("subset_rule"),
                                  ds.manifest.get("tag_rule"))


def _file_ids(paths: list[str], root: str) -> np.ndarray:
    from recbench.audio import stat_identity

    return np.asarray([stat_identity(p, root) for p in paths], dtype=str)


def _set_logmel_fingerprint(ds: Dataset, ids: np.ndarray, lm: dict) -> None:
    """Log-mel files stand in for audio: their identities enter the fingerprint where
    audio identities would (Dataset.fingerprint alone would ignore features)."""
    ds._fingerprint = hash_arrays(ds.user_ids, ds.song_ids, ds.counts, ds.tags,
                                  list(ds.tag_names), ids)
    ds._logmel_files = lm  # type: ignore[attr-defined]
    ds.manifest["fingerprint_audio"] = "identities (path, size, mtime) of the log-mel files"


# ---------------------------------------------------------------------- the build


class _Builder(AudioSteps, TagSteps):
    """One build of the subset (keeps the intermediate state of the passes)."""

    def __init__(self, loader, root: Path, limit: int | None, strict: bool,
                 cdir: Path, ctx):
        from recbench.dataio import Problems

        self.o = loader.options
        self.loader = loader
        self.root = root
        self.limit = limit
        self.cdir = cdir
        self.ctx = ctx
        self.problems = Problems(strict=strict)
        self.info: dict[str, Any] = {"loader": "msd", "root": str(root), "limit": limit}

    # -- helpers
    def path(self, name: str | None) -> Path | None:
        return self.loader._path(self.root, name)

    def reader(self, first_pass: bool):
        from recbench.dataio import TableReader

        return TableReader(self.path(self.o["triplets"]), ["user", "song", "count"],
                           header=False, names=["user", "song", "count"],
                           problems=self.problems if first_pass else None, limit=self.limit,
                           block_size=8 << 20,  # arrow reads ~13 blocks ahead
                           complete_lines=True)  # the published file ends in a newline

    def clean(self, reader, row0: int, cols: dict, report: bool):
        """(user, song, plays, ok) of a batch: drops malformed rows and zero counts."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        from recbench.dataio import report_bad_rows

        u, s, c = cols["user"], cols["song"], cols["count"]
        digits = pcc.utf8_is_digit(c).to_numpy(zero_copy_only=False)
        empty = (pcc.equal(pcc.utf8_length(u), 0).to_numpy(zero_copy_only=False)
                 | pcc.equal(pcc.utf8_length(s), 0).to_numpy(zero_copy_only=False))
        bad = empty | ~digits
        plays = pcc.cast(pcc.if_else(pa.array(bad), "0", c), pa.int64()).to_numpy(
            zero_copy_only=False)
        if report and bad.any():
            report_bad_rows(self.problems, reader, row0, bad,
                            lambda p: (f"play count {c[p].as_py()!r} is not a "
                                       "non-negative integer") if not empty[p]
                            else "empty user or song id")
        zero = ~bad & (plays <= 0)
        if report:
            self.problems.drop("non_positive_counts", int(zero.sum()))
        return u, s, plays, ~(bad | zero)

    # -- steps
    def build(self) -> Dataset:
        """Run the passes; the Dataset (not yet cached)."""
        rule = self.o["subset"]
        self.info["subset"] = rule
        self.info["subset_rule"] = SUBSET_RULES[rule]
        mism = self.read_mismatches() if rule == "clean" else set()
        if rule == "authors":
            self.info["mismatches"] = "kept (authors' rule)"
        songs_tab, users_tab = self.pass1(user_totals=rule == "authors")
        ranked = self.rank_songs(songs_tab, mism)
        tracks = (read_tracks(self.path(self.o["tracks"]), self.problems)
                  if self.loader._needs_tracks(self.root) else None)
        chosen, clips = self.choose_songs(ranked, tracks)
        if rule == "authors":
            counts, user_ids = self.pass2_authors(chosen, users_tab)
        else:
            counts, user_ids = self.pass2(chosen)
        song_ids = np.asarray(chosen, dtype=str)
        tags, tag_names = self.read_tags(song_ids, tracks)
        audio, feats = self.audio_and_features(song_ids, clips)
        if counts.nnz == 0:
            raise DataError(f"{self.path(self.o['triplets'])}: no interactions left after "
                            "selection")
        manifest = {**self.info, **self.problems.manifest()}
        ds = Dataset(name="msd", counts=counts, user_ids=user_ids, song_ids=song_ids,
                     audio=audio, tags=tags, tag_names=tag_names, synthetic=False,
                     manifest=manifest, features=feats)
        if "logmel" in feats:
            ids = _file_ids(clips, str(self.clip_root))
            _set_logmel_fingerprint(ds, ids, {"paths": clips, "root": str(self.clip_root),
                                              "ids_hash": hash_arrays(ids)})
        seal_fingerprint(ds)
        return ds

    def read_mismatches(self) -> set[str]:
        """Songs of sid_mismatches.txt, less the manually accepted (song, track) pairs."""
        p = self.path(self.o["mismatches"])
        if p is None:
            self.info["mismatches"] = "not used"
            return set()
        pairs = read_mismatch_pairs(p, self.problems)
        acc = self.loader._accepted_path(self.root)
        if acc is not None:
            accepted = read_accepted_pairs(acc)
            self.info["accepted_pairs_listed"] = len(accepted)
            self.info["mismatch_pairs_accepted"] = len(pairs & accepted)
            pairs -= accepted
        out = {s for s, _ in pairs}
        self.info["mismatched_songs_listed"] = len(out)
        return out

    def pass1(self, user_totals: bool = False):
        """Tables (song, plays, listeners) and, with `user_totals`, (user, plays) over the
        whole triplet file (else None)."""
        import pyarrow as pa

        reader = self.reader(True)
        parts, uparts, n = [], [], 0
        for row0, cols in self.ctx.progress(reader, desc="triplets pass 1"):
            u, s, plays, ok = self.clean(reader, row0, cols, report=True)
            n += len(s)
            mask = pa.array(ok)
            t = pa.table({"song": s.filter(mask), "plays": plays[ok]})
            parts.append(t.group_by("song").aggregate([("plays", "sum"), ("plays", "count")])
                         .rename_columns(["song", "plays", "listeners"]))
            if len(parts) >= 16:  # compact: a song appears in many blocks
                parts = [_merge_song_parts(parts)]
            if user_totals:
                t = pa.table({"user": u.filter(mask), "plays": plays[ok]})
                uparts.append(t.group_by("user").aggregate([("plays", "sum")])
                              .rename_columns(["user", "plays"]))
                if len(uparts) >= 16:
                    uparts = [_merge_user_parts(uparts)]
        self.info["triplet_lines_read"] = n
        self.info["blank_lines"] = reader.blank_lines
        if not parts:
            raise DataError(f"{self.path(self.o['triplets'])}: no triplet lines")
        return _merge_song_parts(parts), (_merge_user_parts(uparts) if user_totals else None)

    def rank_songs(self, tab, mism: set[str]):
        """Song ids (pyarrow array) by decreasing popularity (ties by id), mismatches
        removed."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        self.info["songs_in_triplets"] = tab.num_rows
        if mism:
            bad = pcc.is_in(tab["song"], value_set=pa.array(sorted(mism), pa.string()))
            n_bad = int(pcc.sum(bad).as_py() or 0)
            self.info["mismatched_songs_dropped"] = n_bad
            self.problems.drop("mismatched_songs", n_bad)
            tab = tab.filter(pcc.invert(bad))
        key = "plays" if self.o["song_rank"] == "plays" or self.o["subset"] == "authors" \
            else "listeners"
        tab = tab.sort_by([(key, "descending"), ("song", "ascending")])
        self.song_popularity = tab
        return tab["song"].combine_chunks()

    # -- users
    def pass2(self, chosen: list[str]):
        """(users x songs CSR counts, user ids): the clean rule's `n_users` most active
        users over the chosen songs (distinct songs or plays, ties by id).

        Streams: pass 2 sums each user's activity over the chosen songs (a table of
        users, not of rows; a (user, song) pair is counted once even on several lines, as
        a user's lines are held back until the next batch shows the user has ended: the
        published file is grouped by user), pass 3 keeps the rows of the top users.
        A file not grouped by user falls back to `pass2_in_memory`."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        parts, carry = [], None
        for u, idx, plays in self.rows_of_songs(chosen):
            t = pa.table({"user": u, "song": idx, "plays": plays})
            if carry is not None:
                t = pa.concat_tables([carry, t])
            last = pcc.equal(t["user"], t["user"][-1])
            carry, t = t.filter(last), t.filter(pcc.invert(last))
            if t.num_rows:
                parts.append(_user_activity(t))
                if len(parts) >= 16:
                    parts = [_merge_activity(parts)]
        if carry is not None:
            parts.append(_user_activity(carry))
        if not parts:
            return self.pass2_in_memory(chosen)
        act = _merge_activity(parts)
        if int(pcc.max(act["parts"]).as_py()) > 1:
            self.info["triplets_grouped_by_user"] = False
            return self.pass2_in_memory(chosen)
        self.info["users_with_selected_songs"] = act.num_rows
        key = "songs" if self.o["user_rank"] == "songs" else "plays"
        top = act.sort_by([(key, "descending"), ("user", "ascending")]).slice(
            0, self.o["n_users"])
        counts, user_ids = self.rows_of(chosen, top["user"].combine_chunks())
        self.info["n_users"] = len(user_ids)
        self.info["n_users_requested"] = self.o["n_users"]
        return counts, user_ids

    def rows_of_songs(self, chosen: list[str]):
        """Yield, batch by batch, (users, song positions in `chosen`, plays) of the valid
        triplet rows whose song is in `chosen` (pyarrow string and int arrays, numpy
        plays): one streaming pass over the file."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        song_set = pa.array(chosen, pa.string())
        reader = self.reader(False)
        for row0, cols in self.ctx.progress(reader, desc="triplets pass 2"):
            u, s, plays, ok = self.clean(reader, row0, cols, report=False)
            idx = pcc.index_in(s, value_set=song_set)
            keep = ok & pcc.is_valid(idx).to_numpy(zero_copy_only=False)
            if keep.any():
                mask = pa.array(keep)
                yield u.filter(mask), idx.filter(mask), plays[keep]

    def pass2_in_memory(self, chosen: list[str]):
        """pass2's result from one pass holding every row of the chosen songs (memory
        O(those rows)): for a file whose lines are not grouped by user."""
        from recbench.dataio import IdCollector, canonical_csr, coo_to_csr

        users = IdCollector()
        song_pos, plays_kept = [], []
        for u, idx, plays in self.rows_of_songs(chosen):
            users.add(u)
            # 4-byte positions and plays (exact below 2**24): the kept rows of the real
            # file are tens of millions
            song_pos.append(idx.to_numpy(zero_copy_only=False).astype(np.int32))
            plays_kept.append(plays.astype(np.float32))
        user_ids, upos = users.finish()
        rows = np.concatenate(upos) if upos else np.zeros(0, np.int64)
        cols_ = np.concatenate(song_pos) if song_pos else np.zeros(0, np.int64)
        vals = np.concatenate(plays_kept) if plays_kept else np.zeros(0)
        counts, merged = coo_to_csr(rows, cols_, vals, (len(user_ids), len(chosen)))
        self.problems.repair("duplicate_rows", merged)
        self.info["users_with_selected_songs"] = len(user_ids)
        if self.o["user_rank"] == "songs":
            activity = np.diff(counts.indptr).astype(np.float64)
        else:
            activity = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
        # ties by user id: user_ids are sorted, so a stable sort on -activity suffices
        order = np.argsort(-activity, kind="stable")[: self.o["n_users"]]
        order = order[activity[order] > 0]
        self.info["n_users"] = len(order)
        self.info["n_users_requested"] = self.o["n_users"]
        counts = canonical_csr(counts[order])
        empty = int((np.diff(counts.tocsc().indptr) == 0).sum())
        if empty:
            self.info["songs_without_selected_users"] = empty
        return counts, user_ids[order]


    def pass2_authors(self, chosen: list[str], users_tab):
        """(users x songs CSR counts, user ids): the `n_users` users with most plays over
        all songs (ties by id), restricted to the chosen songs; a top user without a play
        among them is dropped (counted)."""
        top = users_tab.sort_by([("plays", "descending"), ("user", "ascending")]).slice(
            0, self.o["n_users"])
        self.info["users_in_triplets"] = users_tab.num_rows
        n_top = top.num_rows
        counts, user_ids = self.rows_of(chosen, top["user"].combine_chunks())
        if len(user_ids) < n_top:
            self.info["users_without_selected_songs"] = n_top - len(user_ids)
        self.info["n_users"] = len(user_ids)
        self.info["n_users_requested"] = self.o["n_users"]
        return counts, user_ids

    def rows_of(self, chosen: list[str], top_ids):
        """One pass keeping only the rows of the users `top_ids` (in that order) and the
        chosen songs: (CSR counts, user ids), users without a row dropped. Memory: the
        subset's rows."""
        import pyarrow as pa
        import pyarrow.compute as pcc

        from recbench.dataio import canonical_csr, coo_to_csr

        song_set = pa.array(chosen, pa.string())
        reader = self.reader(False)
        rows, cols, vals = [], [], []
        for row0, c in self.ctx.progress(reader, desc="triplets: subset rows"):
            u, s, plays, ok = self.clean(reader, row0, c, report=False)
            sidx = pcc.index_in(s, value_set=song_set)
            uidx = pcc.index_in(u, value_set=top_ids)
            keep = ok & pcc.is_valid(sidx).to_numpy(zero_copy_only=False) & \
                pcc.is_valid(uidx).to_numpy(zero_copy_only=False)
            if not keep.any():
                continue
            mask = pa.array(keep)
            rows.append(uidx.filter(mask).to_numpy(zero_copy_only=False).astype(np.int32))
            cols.append(sidx.filter(mask).to_numpy(zero_copy_only=False).astype(np.int32))
            vals.append(plays[keep].astype(np.float32))
        r = np.concatenate(rows) if rows else np.zeros(0, np.int32)
        cc = np.concatenate(cols) if cols else np.zeros(0, np.int32)
        v = np.concatenate(vals) if vals else np.zeros(0, np.float32)
        counts, merged = coo_to_csr(r.astype(np.int64), cc.astype(np.int64), v,
                                    (len(top_ids), len(chosen)))
        self.problems.repair("duplicate_rows", merged)
        has = np.diff(counts.indptr) > 0
        counts = canonical_csr(counts[np.flatnonzero(has)])
        empty = int((np.diff(counts.tocsc().indptr) == 0).sum())
        if empty:
            self.info["songs_without_selected_users"] = empty
        return counts, np.asarray(top_ids.to_pylist(), dtype=str)[has]


def _merge_song_parts(parts):
    import pyarrow as pa

    if len(parts) == 1:
        return parts[0]
    t = pa.concat_tables(parts)
    return (t.group_by("song").aggregate([("plays", "sum"), ("listeners", "sum")])
            .rename_columns(["song", "plays", "listeners"]))


def _merge_user_parts(parts):
    import pyarrow as pa

    if len(parts) == 1:
        return parts[0]
    t = pa.concat_tables(parts)
    return t.group_by("user").aggregate([("plays", "sum")]).rename_columns(["user", "plays"])


def _user_activity(t):
    """(user, plays, songs, parts=1) of a batch of (user, song, plays) rows."""
    import pyarrow as pa

    g = t.group_by(["user", "song"]).aggregate([("plays", "sum")])
    g = g.group_by("user").aggregate([("plays_sum", "sum"), ("song", "count")])
    g = g.rename_columns(["user", "plays", "songs"] if g.column_names[0] == "user" else
                         ["plays", "songs", "user"])
    return g.append_column("parts", pa.array(np.ones(g.num_rows, np.int64)))


def _merge_activity(parts):
    import pyarrow as pa

    t = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    g = t.group_by("user").aggregate([("plays", "sum"), ("songs", "sum"), ("parts", "sum")])
    names = {"plays_sum": "plays", "songs_sum": "songs", "parts_sum": "parts"}
    return g.rename_columns([names.get(n, n) for n in g.column_names])
