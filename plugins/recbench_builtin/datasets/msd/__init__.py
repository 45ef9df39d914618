"""The `msd` dataset: the paper's subset of the Million Song Dataset, from local copies.

Reads the published files under `root` (or $RECBENCH_MSD_ROOT):

- Taste Profile `train_triplets.txt` (or `.txt.gz`/`.bz2`/`.zst`, `\\r\\n` line ends
  accepted): user<TAB>song<TAB>play_count (48M lines, 2.8 GB), streamed in blocks with
  pyarrow's CSV reader (no Python object per line): pass 1 sums each song's (and, for the
  authors' rule, each user's) plays, pass 2 keeps the selected rows;
- `unique_tracks.txt`: track<SEP>song<SEP>artist<SEP>title (track ids of each song);
  titles may hold control characters, `\\r` or non-UTF-8 bytes (only the ids are read);
- `sid_mismatches.txt`: `ERROR: <SONG TRACK> ...` lines, and
  `sid_matches_manually_accepted.txt` (same lines in diff form, `< ERROR: <...>`): the
  accepted pairs are not mismatches;
- Last.fm tags: `lastfm_tags.db` (SQLite tids / tags / tid_tag) or the JSON folders
  (`lastfm_train/A/B/C/TRABC....json`, "tags": [["rock", "100"], ...]);
- audio previews: clips named by track id, song id or 7digital id, flat or nested
  (`A/B/C/TR....clip.mp3`, `<d1>/<d2>/<7digitalid>.clip.mp3`; MP3, WAV, FLAC), or
  precomputed log-mel `.npy` files named the same ways; 7digital ids come from
  `track_metadata.db` (SQLite table `songs`, column `track_7digitalid`; schema of
  `tbertinmahieux/MSongsDB` `Tasks_Demos/SQLite/create_track_metadata_db.py`) or a
  two-column `id_map` file (see `audio.py`).

Subset rules (`subset`, see `build.py`): ``clean`` (default: mismatches dropped, users by
distinct selected songs) and ``authors`` (the authors' code: top songs and top users by
total plays over the whole file, mismatches kept). Songs are ordered by rank, users by
activity. Counts are raw play counts (float32).

Tag presets (`tag_preset`, see `tags.py`): ``top50-count`` (default: the `n_tags` tags on
most selected songs, weight >= `tag_min_val`) and ``choi50`` (Choi et al.'s curated 50
tags of the MSD tagging split, weight > 50, as the paper's labels).

The manifest (a result row's `dataset.manifest`) records `subset`, `subset_rule`,
`tag_rule` and the audio naming used; the rules also enter the dataset fingerprint, so
two rules never share one.

Log-mel `.npy` files hold (frames, mels) arrays (`logmel_transpose` for (mels, frames));
they go into `Dataset.features["logmel"]`, a float16 (n_songs, frames, mels) array in the
cache folder, cropped to `logmel_frames` from the start or zero-padded at the end to the
longest clip; `features["logmel.lengths"]` holds each song's valid frames.

Bad input: a triplet line with the wrong number of fields, bytes that are not UTF-8, an
empty id or a count that is not a non-negative integer is skipped and counted
(`dropped.malformed_lines`, the first few located as file:line); a last line without a
newline is a cut-off copy of the file and is skipped and counted (`truncated_lines`)
rather than read as a smaller number; `unique_tracks.txt` lines without two ASCII ids
likewise (`malformed_track_lines`); `strict = true` makes each of these fatal. A missing
`unique_tracks.txt` (when audio or tags need it), an empty, non-SQLite or table-less
`lastfm_tags.db` or `track_metadata.db` are one-line errors naming the file, raised by
`validate` before any pass over the triplets. An audio folder that yields no usable clip
for the selected songs stops the build with one line naming the namings tried and what
the folder holds.

The built subset is cached in `<cache_dir>/msd/<key>` where the key hashes the
parameters and the size and mtime of every input file and folder; `cache = false` rebuilds.
The build holds a lock (`<key>.lock`), so two runs started together build it once.
A cached subset that cannot be read back whole and consistent (a truncated or overwritten
file, arrays of disagreeing sizes) is logged and rebuilt, and the manifest's
`cache_rebuilt` says why.
"""

from __future__ import annotations

from recbench import hookimpl

from .build import SUBSET_RULES, _Builder
from .loader import DEFAULT_TAG_SOURCES, ENV_ROOT, LOADER_VERSION, MSDDataset
from .tags import CHOI50_TAGS, TAG_RULES, check_tags_db

__all__ = [
    "CHOI50_TAGS",
    "DEFAULT_TAG_SOURCES",
    "ENV_ROOT",
    "LOADER_VERSION",
    "SUBSET_RULES",
    "TAG_RULES",
    "MSDDataset",
    "_Builder",
    "check_tags_db",
    "recbench_register_datasets",
]


@hookimpl
def recbench_register_datasets(register):
    """Register the `msd` dataset loader."""
    register(MSDDataset)
