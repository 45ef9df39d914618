"""The pretrained-embedding and HEAR backbones against the `recbench.testing` contract."""

from __future__ import annotations

from pathlib import Path

from recbench_builtin.backbones_embedding import EmbeddingBackbone, EmbeddingMLPBackbone
from recbench_builtin.backbones_hear import HearBackbone

from recbench.testing import BackboneContract

TOY = str(Path(__file__).parent.parent / "hear_toy.py")


class _EmbeddingKind:
    def test_reads_a_precomputed_kind(self):
        assert self.component_class().input_kind == "embedding"
        assert self.make_component().input_kind == self.options.get("kind", "embedding")


class TestEmbedding(_EmbeddingKind, BackboneContract):
    component = EmbeddingBackbone


class TestEmbeddingMLP(_EmbeddingKind, BackboneContract):
    component = EmbeddingMLPBackbone
    options = {"hidden": [6], "kind": "hear-emb"}


class TestHearFrozen(BackboneContract):
    component = HearBackbone
    options = {"module": TOY, "input_rate": 16000}


class TestHearFineTuned(BackboneContract):
    component = HearBackbone
    options = {"module": TOY, "input_rate": 16000, "fine_tune": True}
