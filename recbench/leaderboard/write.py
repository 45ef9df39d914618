"""write_leaderboards: every board file of a run folder, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import results
from .board import build_from_folder, render_markdown
from .csvboard import render_csv
from .report import write_html


def write_leaderboards(out: Path, *, references: list[dict[str, Any]] | None = None,
                       primary_metric: str | None = None,
                       claims: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """(Re)write OUT/leaderboard.{md,csv,json,html,png} from OUT's results. With
    `references` given, they, `primary_metric` and `claims` replace the folder's saved
    leaderboard settings; without, the saved ones are used."""
    out = Path(out)
    had_meta = (out / "leaderboard_meta.json").exists()
    lb, meta = build_from_folder(out, references=references, primary_metric=primary_metric,
                                 claims=claims)
    if references is not None or not had_meta:
        results.atomic_write_text(out / "leaderboard_meta.json", json.dumps(meta, indent=1))
    results.atomic_write_text(out / "leaderboard.json", results.dumps(lb, indent=1,
                                                                      sort_keys=True))
    results.atomic_write_text(out / "leaderboard.md", render_markdown(lb))
    results.atomic_write_text(out / "leaderboard.csv", render_csv(lb))
    write_html(out, lb)  # also writes the PNG plot
    return lb
