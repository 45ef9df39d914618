"""The published-dataset loaders (mssd, music4all, jamendo, deezer-coldstart, melon)
against the DatasetLoader contract, each on its test's fixture in the published layout."""

from __future__ import annotations

import sys
from pathlib import Path

from recbench_builtin.datasets.deezer_coldstart import DeezerColdStartDataset
from recbench_builtin.datasets.jamendo import JamendoDataset
from recbench_builtin.datasets.melon import MelonDataset
from recbench_builtin.datasets.mssd import MSSDDataset
from recbench_builtin.datasets.music4all import Music4AllDataset

from recbench.testing import DatasetLoaderContract

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_loader_deezer_coldstart as deezer  # noqa: E402
import test_loader_jamendo as jamendo  # noqa: E402
import test_loader_melon as melon  # noqa: E402
import test_loader_mssd as mssd  # noqa: E402
import test_loader_music4all as music4all  # noqa: E402


class TestMSSD(DatasetLoaderContract):
    component = MSSDDataset

    def make_loader(self, tmp_path):
        return MSSDDataset(root=str(mssd.write_mssd(tmp_path / "mssd")))


class TestMusic4All(DatasetLoaderContract):
    component = Music4AllDataset

    def make_loader(self, tmp_path):
        root = music4all.write_music4all(tmp_path / "m4a", onion=True)
        return Music4AllDataset(root=str(root), audio_dir="", features=["id_ivec256.tsv"])


class TestJamendo(DatasetLoaderContract):
    component = JamendoDataset

    def make_loader(self, tmp_path):
        root = jamendo.write_jamendo(tmp_path / "jamendo", audio=False)
        return JamendoDataset(root=str(root), official_split="split-0")


class TestDeezerColdStart(DatasetLoaderContract):
    component = DeezerColdStartDataset

    def make_loader(self, tmp_path):
        return DeezerColdStartDataset(root=str(deezer.write_deezer(tmp_path / "deezer")),
                                      user_embeddings=True)


class TestMelon(DatasetLoaderContract):
    component = MelonDataset

    def make_loader(self, tmp_path):
        return MelonDataset(root=str(melon.write_melon(tmp_path / "melon")))
