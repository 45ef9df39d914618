"""write_leaderboards: every board file of a run folder, written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import results
from ..errors import RecbenchError
from .board import build_from_folder, render_markdown
from .csvboard import render_csv
from .report import write_html


def write_leaderboards(out: Path, *, references: list[dict[str, Any]] | None = None,
                       primary_metric: str | None = None,
                       claims: list[dict[str, Any]] | None = None,
                       parts: list[str] | None = None) -> dict[str, Any]:
    """(Re)write OUT/leaderboard.{md,csv,json,html,png} from OUT's results. With
    `references` given, they, `primary_metric` and `claims` replace the folder's saved
    leaderboard settings; without, the saved ones are used. `parts` (names of a suite's
    parts, recbench.suite.parts) replaces the saved list; leaderboard.md then ends with
    each part's board, read from OUT/parts/<name>/leaderboard.md, and leaderboard.json
    names their folders, as leaderboard.html links their pages (the CSV, HTML tables and plot
    are the suite's own rows)."""
    out = Path(out)
    had_meta = (out / "leaderboard_meta.json").exists()
    kept = saved_parts(out) if parts is None else list(parts)
    lb, meta = build_from_folder(out, references=references, primary_metric=primary_metric,
                                 claims=claims)
    if kept:
        meta["parts"] = kept
        lb["parts"] = [{"name": name, "folder": f"parts/{name}"} for name in kept]
    if references is not None or parts is not None or not had_meta:
        results.atomic_write_text(out / "leaderboard_meta.json", json.dumps(meta, indent=1))
    results.atomic_write_text(out / "leaderboard.json", results.dumps(lb, indent=1,
                                                                      sort_keys=True))
    md = render_markdown(lb)
    if kept:  # say so under the title: the parts' boards follow the suite's own
        title, _, rest = md.partition("\n")
        md = (f"{title}\n\nThis suite has parts, run after its own cells; their boards "
              f"follow this suite's: {', '.join(f'`{n}`' for n in kept)}.\n{rest}")
    results.atomic_write_text(out / "leaderboard.md", md + parts_markdown(out, kept))
    results.atomic_write_text(out / "leaderboard.csv", render_csv(lb))
    write_html(out, lb)  # also writes the PNG plot
    return lb


def rerender(out: Path, suite: Any = None) -> None:
    """Rewrite the boards of run folder `out` (results.jsonl rebuilt from the cell files):
    with `suite`'s references, primary metric, claims and part names (its cells must be
    `suite`'s), else with the settings saved when it ran."""
    out = Path(out)
    results.rebuild_jsonl(out)
    if suite is None:
        write_leaderboards(out)
        return
    names = {r.get("suite") for r in results.read_cells(out)}
    if names and names != {suite.name}:
        raise RecbenchError(f"{suite.path}: suite {suite.name!r} did not write {out} "
                            f"(its results are of {', '.join(sorted(map(str, names)))})")
    write_leaderboards(out, references=suite.references,
                       primary_metric=suite.primary_metric, claims=suite.claims,
                       parts=[p.name for p in suite.parts])


def saved_parts(out: Path) -> list[str]:
    """The part names saved in OUT/leaderboard_meta.json by the last run ([] if none)."""
    path = Path(out) / "leaderboard_meta.json"
    if not path.exists():
        return []
    meta = results.read_json_file(path, "leaderboard settings")
    parts = meta.get("parts", []) if isinstance(meta, dict) else None
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise RecbenchError(f"{path}: corrupt leaderboard settings ('parts' is not a list "
                            f"of names); rerun `recbench run SUITE -o OUT --resume`")
    return parts


def parts_markdown(out: Path, names: list[str]) -> str:
    """The parts' boards as Markdown, each under a heading naming its folder; a part not
    run yet is one line saying so."""
    text = ""
    for name in names:
        board = Path(out) / "parts" / name / "leaderboard.md"
        text += f"\n---\n\n# Part {name} (`parts/{name}/`)\n\n"
        if board.exists():
            body = board.read_text(encoding="utf-8")
            text += body.split("\n", 1)[1].lstrip("\n") if body.startswith("# ") else body
        else:
            text += f"Not run yet: no `parts/{name}/leaderboard.md`.\n"
    return text
