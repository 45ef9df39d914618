"""The third-party example plugin passes recbench's recommender contract, as a plugin
author's own test suite would check it."""

from recbench_example_plugin import InversePopularity

from recbench.testing import RecommenderContract


class TestInversePopularity(RecommenderContract):
    component = InversePopularity
    expected_auc = 0.5  # cold test songs have no training listeners: all tie at -0
