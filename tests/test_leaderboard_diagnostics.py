"""Tasks render their own diagnostics: the core draws whatever table and chart the board's
task returns and never reads a task's private `extra` (review: the leaderboard used to
parse the recommendation task's popularity buckets itself)."""

from __future__ import annotations

import pathlib
from typing import Any

import recbench
from recbench import leaderboard
from recbench.leaderboard import board as board_mod
from recbench.components import DiagnosticsTable, Task


class _Task(Task):
    name = "t"

    def run(self, ctx):  # pragma: no cover - not run
        raise NotImplementedError

    @classmethod
    def diagnostics_table(cls, entries: list[dict[str, Any]]) -> DiagnosticsTable | None:
        return DiagnosticsTable("**Mine.** per-model share.", ["model", "share"],
                                [[e["label"], e["extra"]["share"]] for e in entries])


def _board() -> dict:
    return {"task": "t", "rows": [{"label": "A", "extra": {"share": 0.25}},
                                  {"label": "B", "extra": {"share": None}}]}


def test_a_tasks_diagnostics_table_is_rendered_by_the_core(monkeypatch):
    monkeypatch.setattr(board_mod, "task_class", lambda board: _Task)  # where it is looked up
    header, rows = leaderboard.diagnostics_rows(_board())
    assert header == ["model", "share"]
    assert rows[0] == ["A", "0.2500"] and rows[1][0] == "B"
    assert leaderboard.diagnostics(_board()).caption.startswith("**Mine.**")


def test_counts_render_whole_and_fractions_to_four_places(monkeypatch):
    """A count of 400 users reads 400, not 400.0000; a bool or float is not a count."""
    class _Counts(_Task):
        @classmethod
        def diagnostics_table(cls, entries):
            return DiagnosticsTable("c", ["model", "users", "share", "flag"],
                                    [[e["label"], 400, 2.0, True] for e in entries])

    monkeypatch.setattr(board_mod, "task_class", lambda board: _Counts)
    _, rows = leaderboard.diagnostics_rows(_board())
    assert rows[0] == ["A", "400", "2.0000", "1.0000"]


def test_a_task_without_diagnostics_and_an_uninstalled_task_render_none():
    assert Task.diagnostics_table([{"label": "A", "extra": {"x": 1}}]) is None
    assert leaderboard.diagnostics_rows({"task": "no-such-task", "rows": []}) is None


def test_no_core_module_reads_the_recommendation_tasks_extra():
    root = pathlib.Path(recbench.__file__).parent
    offenders = [str(p) for p in root.rglob("*.py")
                 if "popularity_buckets" in p.read_text() or '"mixed"' in p.read_text()]
    assert offenders == []
