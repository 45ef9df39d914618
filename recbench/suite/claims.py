"""`[[claims]]`: what a suite expects one of its rows to show against another.

A claim names two model ids of the suite, a metric column and (with several tasks) the task:

    [[claims]]
    label = "2-stage sampling beats uniform at batch 32"
    model = "cml-2stage-32"
    baseline = "cml-uniform-32"
    metric = "auc"
    expect = "higher"        # optional: the metric's own direction ("better")

The leaderboard judges each claim by a paired bootstrap over the users both rows were
evaluated on (recbench.leaderboard.claims): a claim is stated once and read on every board
of the suite, knobs on or off, so "holds here, not there" is one table per board.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..registry import Registry
from ..registry.params import suggest
from .locate import _Locator
from .model import ComponentSpec, TaskSpec

CLAIM_KEYS = ("label", "model", "baseline", "metric", "task", "expect")
EXPECT = ("higher", "lower", "better")


def validate_claims(raw: Any, registry: Registry, tasks: list[TaskSpec],
                    models: list[ComponentSpec], bootstrap: int, confidence: float,
                    file: str, loc: _Locator) -> list[dict[str, Any]]:
    """The suite's claims, resolved: task id, "higher"/"lower" (from the metric's direction
    when `expect` is "better" or absent), and the suite's bootstrap count and level.

    Every problem is a ConfigError naming the key (``claims[i].model``) and its line."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ConfigError("expected an array of tables ([[claims]])", file=file, key="claims",
                          line=loc.line("claims"))
    ids = [m.id for m in models]
    task_ids = [t.spec.id for t in tasks]
    out = []
    for i, c in enumerate(raw):
        key = f"claims[{i}]"

        def fail(msg: str, sub: str | None = None) -> ConfigError:
            k = f"{key}.{sub}" if sub else key
            return ConfigError(msg, file=file, key=k, line=loc.line(k) or loc.line(key))
        if not isinstance(c, dict):
            raise fail("expected a table with label, model, baseline and metric")
        for k in c:
            if k not in CLAIM_KEYS:
                raise fail(f"unknown key.{suggest(k, CLAIM_KEYS)} Known: "
                           f"{', '.join(CLAIM_KEYS)}", k)
        for k in ("label", "model", "baseline", "metric"):
            if not isinstance(c.get(k), str) or not c[k]:
                what = "a model id" if k in ("model", "baseline") else k
                raise fail(f"expected a non-empty string ({what})", k)
        for k in ("model", "baseline"):
            if c[k] not in ids:
                raise fail(f"names no model of this suite: {c[k]!r}.{suggest(c[k], ids)} "
                           f"Models: {', '.join(ids)}", k)
        if c["model"] == c["baseline"]:
            raise fail("model and baseline are the same row; a claim compares two", "baseline")
        if "task" in c:
            if c["task"] not in task_ids:
                raise fail(f"names no task of this suite: {c['task']!r}."
                           f"{suggest(str(c['task']), task_ids)} Tasks: {', '.join(task_ids)}",
                           "task")
            task = next(t for t in tasks if t.spec.id == c["task"])
        elif len(tasks) == 1:
            task = tasks[0]
        else:
            raise fail(f"the suite has several tasks; say which (task = one of "
                       f"{', '.join(task_ids)})")
        cls = registry.get("task", task.spec.name).cls
        columns = [m.column for m in task.metrics] + [cls.primary_metric]
        registered = registry.metric_direction(c["metric"]) is not None
        if c["metric"] not in columns and (registered or "expect" not in c):
            # a registered metric the task is not asked for, or a task's own column
            # (e.g. skip@10) without the direction that only `expect` can give
            raise fail(f"task {task.spec.id!r} computes no {c['metric']!r}."
                       f"{suggest(c['metric'], columns)} Columns: "
                       f"{', '.join(dict.fromkeys(columns))} (a column the task adds "
                       f"itself needs `expect`)", "metric")
        expect = c.get("expect", "better")
        if expect not in EXPECT:
            raise fail(f"expected one of {', '.join(EXPECT)}, got {expect!r}", "expect")
        if expect == "better":
            metric = next((m for m in task.metrics if m.column == c["metric"]), None)
            hib = registry.metric_direction(metric.name if metric else c["metric"])
            if hib is None:
                raise fail(f"the direction of {c['metric']!r} is unknown; set expect = "
                           f"\"higher\" or \"lower\"", "metric")
            expect = "higher" if hib else "lower"
        out.append({"label": c["label"], "task": task.spec.id, "model": c["model"],
                    "baseline": c["baseline"], "metric": c["metric"], "expect": expect,
                    "bootstrap": bootstrap, "confidence": confidence})
    return out
