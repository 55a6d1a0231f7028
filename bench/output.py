"""Small helpers every writer shares (kept free of pandas so `bench compare` starts fast)."""

from __future__ import annotations

import html
from pathlib import Path


def atomic_write(path: Path, text: str | bytes) -> None:
    """Readers never see a half-written file (a report can be regenerated while being served)."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def markdown_text(value) -> str:
    """Record text made safe for a Markdown table cell: Markdown renders inline HTML (a backbone named
    `<script>` must stay text) and `|` would split the cell."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")
