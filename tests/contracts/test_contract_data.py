"""Built-in dataset loaders and splits against their `recbench.testing` contracts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from recbench_builtin.datasets.folder import FolderDataset
from recbench_builtin.datasets.msd import MSDDataset
from recbench_builtin.datasets.synth_msd import SynthMSD
from recbench_builtin.datasets.tiny import TinyDataset
from recbench_builtin.splits import ColdItemSplit, ColdUserSplit, WarmSplit

from recbench.testing import DatasetLoaderContract, SplitterContract

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fixtures_msd  # noqa: E402  (the tests' fake Million Song Dataset folder)


class TestTiny(DatasetLoaderContract):
    component = TinyDataset


class TestSynthMSD(DatasetLoaderContract):
    component = SynthMSD
    options = {"preset": "tiny"}


class TestFolder(DatasetLoaderContract):
    component = FolderDataset

    def make_loader(self, tmp_path):
        rows = ["user\tsong\tcount", "u1\ts1\t3", "u1\ts2\t1", "u2\ts2\t2", "u2\ts2\t1",
                "u3\ts1\t0", "a malformed line", "u3\ts3\t5"]
        (tmp_path / "interactions.tsv").write_text("\n".join(rows) + "\n")
        return FolderDataset(root=str(tmp_path))


class TestMSD(DatasetLoaderContract):
    component = MSDDataset

    def make_loader(self, tmp_path):
        root = fixtures_msd.write_msd(tmp_path / "msd", tags="db", audio=False)
        return MSDDataset(root=str(root), n_songs=6, n_users=4, tags=["lastfm_tags.db"])


def test_folder_counts_what_it_repaired(tmp_path):
    """The folder loader's manifest counts the malformed, duplicate and zero-count lines."""
    from recbench.components import LoadContext

    loader = TestFolder().make_loader(tmp_path)
    ds = loader.load(LoadContext(cache_dir=str(tmp_path / "cache"), suite_dir=str(tmp_path)))
    np.testing.assert_array_equal(ds.counts.toarray(), [[3, 1, 0], [0, 3, 0], [0, 0, 5]])
    assert ds.manifest["dropped"] == {"malformed_lines": 1, "non_positive_counts": 1}
    assert ds.manifest["repaired"] == {"duplicate_rows": 1}


class TestColdItem(SplitterContract):
    component = ColdItemSplit


class TestWarm(SplitterContract):
    component = WarmSplit


class TestColdUser(SplitterContract):
    component = ColdUserSplit
