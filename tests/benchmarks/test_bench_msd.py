"""Scale: the `msd` subset build on a full-size (48,373,586-line, ~3 GB) triplets file.

Run with `pytest tests/benchmarks/test_bench_msd.py --benchmark-only -s`.

The file is written on the fly in a temporary folder (the real one's shape: 1,019,318
users of 40 hex digits in user order, ~47 lines each; 384,546 song ids, Zipf-like
popularity; geometric play counts), from numpy-formatted byte records, in about a
minute. Each subset rule (``clean``, ``authors``) is then built in a fresh process
(10,000 songs x 20,000 users, no audio, no tags, no cache), and the figures are that
process's wall time and peak resident memory (``ru_maxrss``), printed and put into
``extra_info``. ``RECBENCH_BENCH_MSD_LINES`` sets a smaller file (e.g. 2000000) for a
quick look. Needs ~3.2 GB free in the temporary folder (skipped otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.benchmark

REPO = Path(__file__).resolve().parents[2]
LINES = int(os.environ.get("RECBENCH_BENCH_MSD_LINES", "48373586"))  # the published file
USERS = max(LINES * 1019318 // 48373586, 10)
SONGS = max(LINES * 384546 // 48373586, 10)
RECORD = 64  # user 40, tab, song 18, tab, count <= 3 digits (blank-padded), newline


def _ids(n: int, width: int, prefix: bytes, alphabet: bytes, rng) -> np.ndarray:
    """(n, width) uint8 ids: `prefix` then random characters of `alphabet`, unique."""
    a = np.frombuffer(alphabet, np.uint8)
    body = a[rng.integers(0, len(a), size=(n, width - len(prefix)))]
    # make them unique: the last 7 characters spell the index in base len(alphabet)
    idx = np.arange(n)
    for k in range(1, 8):
        body[:, -k] = a[idx % len(a)]
        idx = idx // len(a)
    head = np.broadcast_to(np.frombuffer(prefix, np.uint8), (n, len(prefix)))
    return np.ascontiguousarray(np.concatenate([head, body], axis=1))


def write_triplets(path: Path, n_lines: int, seed: int = 0, chunk: int = 2_000_000) -> None:
    """A Taste-Profile-shaped triplets file of `n_lines` lines (see the module docstring)."""
    rng = np.random.default_rng(seed)
    users = _ids(USERS, 40, b"", b"0123456789abcdef", rng)
    songs = _ids(SONGS, 18, b"SO", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", rng)
    per_user = rng.multinomial(n_lines, np.ones(USERS) / USERS)
    ends = np.cumsum(per_user)
    cdf = np.cumsum(1.0 / np.arange(1, SONGS + 1) ** 0.9)
    cdf /= cdf[-1]
    perm = rng.permutation(SONGS)  # popularity is not in id order
    with open(path, "wb") as f:
        for start in range(0, n_lines, chunk):
            n = min(chunk, n_lines - start)
            u = np.searchsorted(ends, np.arange(start, start + n), side="right")
            s = perm[np.searchsorted(cdf, rng.random(n))]
            c = np.minimum(rng.geometric(0.3, size=n), 999)
            rec = np.empty((n, RECORD), np.uint8)
            rec[:, :40] = users[u]
            rec[:, 40] = 9
            rec[:, 41:59] = songs[s]
            rec[:, 59] = 9
            rec[:, 60] = np.where(c >= 100, 48 + c // 100, 32)
            rec[:, 61] = np.where(c >= 10, 48 + (c // 10) % 10, 32)
            rec[:, 62] = 48 + c % 10
            rec[:, 63] = 10
            flat = rec.ravel()
            f.write(flat[flat != 32].tobytes())


BUILD = """
import json, resource, sys, time
from recbench.components import LoadContext
from recbench_builtin.datasets.msd import MSDDataset
t0 = time.perf_counter()
ds = MSDDataset(root=sys.argv[1], subset=sys.argv[2], mismatches="", tags=[],
                cache=False).load(LoadContext(cache_dir=sys.argv[3]))
print(json.dumps({"wall_s": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "n_users": int(ds.n_users), "n_songs": int(ds.n_songs),
                  "nnz": int(ds.counts.nnz),
                  "lines": ds.manifest["triplet_lines_read"]}))
"""


@pytest.fixture(scope="module")
def big_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("msd-big")
    need = LINES * 66
    free = shutil.disk_usage(root).free
    if free < need * 1.1:
        pytest.skip(f"needs {need / 1e9:.1f} GB free in {root}, has {free / 1e9:.1f} GB")
    t0 = time.perf_counter()
    write_triplets(root / "train_triplets.txt", LINES)
    root.joinpath("gen.json").write_text(json.dumps({
        "write_s": time.perf_counter() - t0,
        "bytes": (root / "train_triplets.txt").stat().st_size}))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("subset", ["clean", "authors"])
def test_bench_msd_subset_build_at_full_size(benchmark, big_root, subset, tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")])}
    figures = []

    def build():
        out = subprocess.run([sys.executable, "-c", BUILD, str(big_root), subset,
                              str(tmp_path / "cache")], capture_output=True, text=True,
                             env=env, check=True)
        figures.append(json.loads(out.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(build, rounds=1, iterations=1)
    fig = figures[-1]
    gen = json.loads((big_root / "gen.json").read_text())
    assert fig["lines"] == LINES and fig["n_songs"] == min(10_000, SONGS)
    assert 0 < fig["n_users"] <= 20_000
    benchmark.extra_info.update({"subset": subset, "lines": LINES,
                                 "file_gb": round(gen["bytes"] / 1e9, 2),
                                 "write_s": round(gen["write_s"], 1),
                                 "build_wall_s": round(fig["wall_s"], 1),
                                 "peak_rss_mb": round(fig["peak_rss_mb"], 1),
                                 "nnz": fig["nnz"]})
    with capsys.disabled():
        print(f"\nmsd subset build ({subset}), {LINES:,} lines ({gen['bytes'] / 1e9:.2f} GB, "
              f"written in {gen['write_s']:.0f} s): {fig['wall_s']:.0f} s, peak RSS "
              f"{fig['peak_rss_mb']:.0f} MB, {fig['n_users']} users x {fig['n_songs']} songs, "
              f"{fig['nnz']:,} interactions")
