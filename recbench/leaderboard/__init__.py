"""The leaderboard stage: boards from a run folder's results (`board`: aggregation,
Markdown and CSV), the HTML page and PNG plot (`report`, Jinja2 templates in `jinja` and
./templates), `write_leaderboards` (`write`; with a suite's parts, recbench.suite.parts)
and `recbench compare` (`compare`; the command, parts included, in `gate`).

One board per task. Rows aggregate the seeds of a model: the mean of each metric, the
standard deviation over seeds, and the confidence interval (bootstrap over users; with
several seeds, the mean of the per-seed bounds). Cold-start rows are ranked by the primary
metric; rows of models that used held-out interactions sit in a separate, unranked
"oracle / upper bound" section; published numbers listed in the suite's `[[references]]`
appear as reference rows. Rows whose dataset or split fingerprint differs from the
board's are refused (listed as excluded), never mixed in.

`recbench.leaderboard` keeps the names of the old module of that name.
"""

from __future__ import annotations

from .board import (SECTION_COLD, SECTION_ORACLE, SECTION_REFERENCE, _clean, board_context,
                    build, build_from_folder, ci_label, commit_text, diagnostics,
                    diagnostics_rows, render_markdown, table_rows, task_class, title)
from .csvboard import render_csv
from .write import parts_markdown, rerender, saved_parts, write_leaderboards

__all__ = ["SECTION_COLD", "SECTION_ORACLE", "SECTION_REFERENCE", "board_context", "build",
           "build_from_folder", "ci_label", "commit_text", "diagnostics", "diagnostics_rows",
           "parts_markdown", "render_csv", "render_markdown", "rerender", "saved_parts",
           "table_rows", "task_class", "title", "write_leaderboards"]
