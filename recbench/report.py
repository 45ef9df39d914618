"""Old path of board rendering (kept for one release): use `recbench.leaderboard.report`
(HTML page, PNG plot) and `recbench.leaderboard.jinja` (the templates)."""

from __future__ import annotations

from .leaderboard.jinja import markdown_inline, templates
from .leaderboard.report import (PALETTE, PLOT_NAME, REFERENCE_COLOUR, html_board,
                                 model_colours, render_html, write_html, write_plots)

__all__ = ["PALETTE", "PLOT_NAME", "REFERENCE_COLOUR", "html_board", "markdown_inline",
           "model_colours", "render_html", "templates", "write_html", "write_plots"]
