"""The `recbench compare` command: a candidate run against a baseline, and each of the
baseline's parts (recbench.suite.parts) against the candidate's part of that name, printed
as one table per side and judged together (exit 1 when anything regressed anywhere).

A side is an OUT folder (its parts: those saved in its leaderboard_meta.json) or a
leaderboard.json (its parts: the file's "parts" entries, folders relative to the file). A
part of the baseline that the candidate lacks is a regression; a part only the candidate
has is named and not compared.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .compare import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, Change, compare, load_leaderboard, render


def _run_folder(side: Path) -> Path | None:
    """The run folder of a side when it holds cells (per-user values for paired tests)."""
    path = side if side.is_dir() else side.parent
    return path if (path / "cells").is_dir() else None


def part_sides(side: Path, board: dict[str, Any]) -> dict[str, Path]:
    """{part name: its side (a folder)} of one side of the comparison."""
    if side.is_dir():
        from .write import saved_parts

        return {name: side / "parts" / name for name in saved_parts(side)}
    return {p["name"]: side.parent / p["folder"] for p in board.get("parts") or []
            if isinstance(p, dict) and isinstance(p.get("name"), str)
            and isinstance(p.get("folder"), str)}


def run_compare(candidate: str, baseline: str, *, tolerance: float, rel_tolerance: float,
                metrics: list[str] | None, allow_different_data: bool) -> int:
    """Compare, print the tables (stdout) and the verdict (stderr); the exit code."""
    sides = [("", Path(candidate), Path(baseline))]
    changes: list[Change] = []
    tables: list[tuple[str, list[Change]]] = []
    mismatched = False
    i = 0
    while i < len(sides):
        label, cand_side, base_side = sides[i]
        cand, base = load_leaderboard(cand_side), load_leaderboard(base_side)
        if i == 0 and (base_parts := part_sides(base_side, base)):
            cand_parts = {n: p for n, p in part_sides(cand_side, cand).items() if p.is_dir()}
            for name, path in base_parts.items():
                if name in cand_parts:
                    sides.append((f"part {name}", cand_parts[name], path))
                else:
                    changes.append(Change(f"part {name}", "-", "-", None, None, None, None,
                                          True, "part missing from the candidate"))
            for name in sorted(set(cand_parts) - set(base_parts)):
                print(f"part {name}: only in the candidate, not compared", file=sys.stderr)
        got, mismatches = compare(cand, base, tolerance=tolerance, rel_tolerance=rel_tolerance,
                                  metrics=metrics, allow_different_data=allow_different_data,
                                  candidate_dir=_run_folder(cand_side),
                                  baseline_dir=_run_folder(base_side))
        for m in mismatches:
            print(f"{'WARNING' if allow_different_data else 'ERROR'}: "
                  f"{label + ': ' if label else ''}{m}", file=sys.stderr)
        mismatched |= bool(mismatches)
        tables.append((label, got))
        changes += got
        i += 1
    if mismatched and not allow_different_data:
        print("refusing to compare runs on different data (use --allow-different-data)",
              file=sys.stderr)
        return EXIT_USAGE
    if metrics and not [c for c in changes if c.metric != "-"]:
        print(f"no metric named {', '.join(metrics)} in the baseline", file=sys.stderr)
        return EXIT_USAGE
    missing = [c for c in changes if c.metric == "-"]
    for label, got in tables + ([("missing parts", missing)] if missing else []):
        print(f"\n## {label}\n\n{render(got)}" if label else render(got))
    bad = [c for c in changes if c.regressed]
    tol = f"tolerance {tolerance}" + (f" / relative {rel_tolerance}" if rel_tolerance else "")
    if bad:
        print(f"\n{len(bad)} regression(s) beyond {tol}", file=sys.stderr)
        return EXIT_REGRESSION
    print(f"\nno regression beyond {tol}", file=sys.stderr)
    return EXIT_OK
