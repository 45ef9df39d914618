"""The driver side: run_suite plans, resumes, dispatches fit units and writes results."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

from .. import results
from ..env import resolve_device
from ..errors import RecbenchError
from ..registry import default_registry
from ..suite import Suite
from .lock import RunLock
from .plan import default_cache_dir, plan_units, resolve_cache_dir
from .prefetch import prefetch_features
from .worker import _one_line, run_fit_unit

log = logging.getLogger("recbench")


@dataclass
class RunSummary:
    """What a run did."""

    ran: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    failures: list[str] = field(default_factory=list)

    def add(self, other: RunSummary) -> RunSummary:
        """The summary of this run and `other` together (a suite and its parts)."""
        return RunSummary(self.ran + other.ran, self.failed + other.failed,
                          self.skipped + other.skipped,
                          self.interrupted or other.interrupted,
                          self.failures + other.failures)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0


def _archive_stale(out: Path, keep: set[str]) -> None:
    cells = out / "cells"
    if not cells.is_dir():
        return
    stale = [p for p in cells.iterdir() if p.suffix in (".json", ".npz") and p.stem not in keep]
    if not stale:
        return
    dest = out / "archive" / _dt.datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    dest.mkdir(parents=True, exist_ok=True)
    for p in stale:
        shutil.move(str(p), dest / p.name)
    log.info("moved %d earlier cell results to %s", len(stale), dest)


def check_output_folder(out: Path) -> None:
    """A RecbenchError (one line) when `out` cannot be a writable output folder."""
    for p in [out, *out.parents]:
        if p.exists():
            if not p.is_dir():
                raise RecbenchError(f"{p}: output path is a file, not a folder"
                                    if p == out else f"{out}: {p} is a file, not a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                raise RecbenchError(f"{out}: cannot write into {p} (read-only or no "
                                    f"permission)")
            return


def run_suite(suite: Suite, out: Path, *, resume: bool = False, device: str | None = None,
              executor_name: str | None = None, executor_params: dict | None = None,
              limit: int | None = None, show_progress: bool = True,
              cache_dir: str | None = None) -> RunSummary:
    """Run every cell of `suite` into `out`, one fit unit (model x seed) at a time through
    the executor; returns a summary (exit code included)."""
    registry = default_registry()
    out = Path(out)
    check_output_folder(out)
    cache_dir = resolve_cache_dir(suite, cache_dir)
    if suite.notice:
        log.warning("\n%s\nNOTICE: %s\n%s", "!" * 78, suite.notice, "!" * 78)
    device = resolve_device(device or suite.run["device"])
    exec_spec = suite.executor
    name = executor_name or exec_spec.name
    params = dict(exec_spec.options if name == exec_spec.name else {})
    params.update(executor_params or {})
    from .. import threads as _threads  # thread policy: [run] threads / reproducible
    params = _threads.executor_params(
        suite.run, params, {p.name for p in registry.get("executor", name).cls.params})
    executor = registry.create("executor", name, **params)
    summary = RunSummary()
    with RunLock(out):
        units = plan_units(suite, device=device, cache_dir=cache_dir, limit=limit,
                           show_progress=show_progress and executor.in_process,
                           out_dir=str(out))
        cells = [c for u in units for c in u.cells]
        ids = {c.cell_id for c in cells}
        done: set[str] = set()
        if resume:
            corrupt: list[Path] = []
            done = results.finished_ids(results.read_cell_files(out, corrupt)) & ids
            for p in corrupt:
                log.warning("%s is corrupt: that cell is recomputed (the file goes to "
                            "archive/)", p)
            bad_npz = {cid for cid in done if not results.per_user_readable(out, cid)}
            for cid in sorted(bad_npz):
                log.warning("%s is corrupt: that cell is recomputed (the files go to "
                            "archive/)", out / "cells" / f"{cid}.npz")
            done -= bad_npz
        _archive_stale(out, done)
        (out / "cells").mkdir(parents=True, exist_ok=True)
        results.rebuild_jsonl(out)  # from here on, each finished cell is appended
        results.atomic_write_text(out / "plan.json", json.dumps({
            "suite": suite.name, "suite_path": suite.path, "cells": [
                {"cell_id": c.cell_id, "task": c.task, "model": c.model, "seed": c.seed}
                for c in cells]}, indent=1))
        # a unit runs only its unfinished cells; one with none left is skipped
        todo = [replace(u, cells=[c for c in u.cells if c.cell_id not in done])
                for u in units]
        todo = [u for u in todo if u.cells]
        summary.skipped = len(cells) - sum(len(u.cells) for u in todo)
        audio_models = any("audio" in registry.get("recommender", m.name).cls.consumes
                           for m in suite.models)
        if todo and audio_models and not executor.in_process:
            # Parallel units would each extract the features: do it once, in parallel.
            try:
                prefetch_features(suite, executor, cache_dir=cache_dir or default_cache_dir(),
                                  limit=limit)
            except RecbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - the units extract for themselves
                log.warning("feature prefetch failed (%s); cells will extract", _one_line(exc))
        if summary.skipped:
            log.info("resuming: %d of %d cells already finished", summary.skipped, len(cells))
        log.info("%d fit units (model x seed) for %d cells", len(todo),
                 len(cells) - summary.skipped)
        bar = None
        complete = False
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(cells), initial=summary.skipped, desc="cells", unit="cell",
                       dynamic_ncols=True)
        try:
            for i, rows in executor.map(run_fit_unit, todo):
                for c, row in zip(todo[i].cells, rows):
                    results.write_cell(out, row)
                    summary.ran += 1
                    if row["status"] != "ok":
                        summary.failed += 1
                        summary.failures.append(
                            f"{c.task}/{c.model}/seed {c.seed}: {row['error']}")
                        log.error("cell %s / %s / seed %s failed: %s", c.task, c.model,
                                  c.seed, row["error"])
                    else:
                        log.info("cell %s / %s / seed %s: %s (%.1fs)", c.task, c.model, c.seed,
                                 ", ".join(f"{k}={v:.4f}" for k, v in row["metrics"].items()),
                                 row["timing"].get("total_s", 0))
                    if bar is not None:
                        bar.update(1)
            complete = True
        except KeyboardInterrupt:
            summary.interrupted = True
            log.warning("interrupted: %d finished cells kept in %s; rerun with --resume",
                        summary.ran + summary.skipped, out)
        finally:
            if bar is not None:
                bar.close()
            executor.close()
            if not complete:  # an interrupt may have come between a cell and its line
                results.rebuild_jsonl(out)
        from ..leaderboard import write_leaderboards

        write_leaderboards(out, references=suite.references,
                           primary_metric=suite.primary_metric, claims=suite.claims)
    return summary
