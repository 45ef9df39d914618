"""The Jinja2 environment of the board templates (package data of this package)."""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def templates() -> Any:
    """The Jinja2 environment of the board templates (package data: ./templates).
    HTML templates are autoescaped; the Markdown template is plain text."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("recbench.leaderboard", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"),
                                            default_for_string=True, default=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)  # a misspelt field fails instead of rendering ""
    env.filters["markdown_inline"] = markdown_inline
    return env


def markdown_inline(text: str) -> Any:
    """A task's one-paragraph Markdown caption as safe HTML: the text is escaped, then
    **bold**, *italic* and `code` become tags (nothing else is interpreted)."""
    import re

    from markupsafe import Markup, escape

    out = str(escape(text))
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    out = re.sub(r"\*(.+?)\*", r"<em>\1</em>", out)
    return Markup(out)
