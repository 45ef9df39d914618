"""The new-release task against `recbench.testing.TaskContract` (the scripted model ranks
every held-out listener first, so each song's AUC and nDCG are 1)."""

from __future__ import annotations

from recbench.testing import TaskContract
from recbench_builtin.tasks.new_release import NewReleaseTask


class TestNewRelease(TaskContract):
    component = NewReleaseTask
    metrics = (("auc", "auc", None), ("ndcg@5", "ndcg", 5), ("recall@10", "recall", 10))
    known_metrics = {"auc": 1.0, "ndcg@5": 1.0}
