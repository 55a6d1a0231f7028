"""Record text inside Markdown tables (report.md, leaderboard.md, the gate's diff table)."""

from __future__ import annotations

import html


def markdown_text(value) -> str:
    """Record text made safe for a Markdown table cell: Markdown renders inline HTML (a backbone named
    `<script>` must stay text) and `|` would split the cell."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")
