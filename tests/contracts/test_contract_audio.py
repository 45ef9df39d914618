"""Built-in backbones, losses and samplers against their `recbench.testing` contracts."""

from __future__ import annotations

import math

from recbench_builtin.backbones import (Conv1DBackbone, Conv1DLee2018Backbone, Conv2DBackbone,
                                        MelStatsBackbone, SampleCNNBackbone)
from recbench_builtin.losses import BPRLoss, HingeLoss, InfoNCELoss, MSELoss, SoftmaxLoss
from recbench_builtin.samplers import PopularitySampler, TwoStageSampler, UniformSampler

from recbench.testing import BackboneContract, LossContract, SamplerContract


class TestConv1D(BackboneContract):
    component = Conv1DBackbone
    options = {"channels": [8, 8, 8], "width": 0.5}


class TestConv1DLee2018(BackboneContract):
    component = Conv1DLee2018Backbone
    options = {"width": 0.0625}
    time_steps = (128, 130)  # its four pools need >= 4 * 4 * 4 * 2 steps


class TestConv2D(BackboneContract):
    component = Conv2DBackbone
    options = {"channels": [4, 8]}


class TestSampleCNN(BackboneContract):
    component = SampleCNNBackbone
    options = {"frame_channels": 4, "channels": [4, 8, 8]}


class TestMelStats(BackboneContract):
    component = MelStatsBackbone


class TestHinge(LossContract):
    component = HingeLoss
    zero_when_separated = True
    # margin 0.2: rows 0.1 + 0 and 0.5 + 0 summed over negatives, then averaged
    known_answers = (([0.5, 0.0], [[0.4, 0.1], [0.3, -0.5]], 0.3),)


class TestHingeMean(LossContract):
    component = HingeLoss
    options = {"negatives": "mean", "margin": 0.5}
    zero_when_separated = True
    known_answers = (([0.5], [[0.4, 0.1]], (0.4 + 0.1) / 2),)


class TestSoftmax(LossContract):
    component = SoftmaxLoss
    known_answers = (([0.0], [[0.0, 0.0]], math.log(3)),
                     ([1.0], [[0.0]], math.log(1 + math.exp(-1))))


class TestInfoNCE(LossContract):
    component = InfoNCELoss
    known_answers = (([0.07], [[0.0]], math.log(1 + math.exp(-1))),)


class TestBPR(LossContract):
    component = BPRLoss
    known_answers = (([0.0, 1.0], [[0.0], [0.0]], (math.log(2) + math.log(1 + math.exp(-1))) / 2),)


class TestMSE(LossContract):
    component = MSELoss
    known_answers = (([[1.0, 2.0]], [[0.0, 0.0]], 2.5),)


class TestUniform(SamplerContract):
    component = UniformSampler


class TestUniformExcluding(SamplerContract):
    component = UniformSampler
    options = {"exclude_positives": True}
    excludes_positives = True


class TestPopularitySampler(SamplerContract):
    component = PopularitySampler
    options = {"exclude_positives": True}
    excludes_positives = True


class TestTwoStage(SamplerContract):
    component = TwoStageSampler


class TestTwoStageExcluding(SamplerContract):
    component = TwoStageSampler
    options = {"exclude_positives": True, "pool_size": 12}
    excludes_positives = True
