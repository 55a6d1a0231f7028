"""Small helpers every writer shares (kept free of pandas so `bench compare` starts fast)."""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def atomic_write(path: Path, text: str | bytes) -> None:
    """Readers never see a half-written file (a report can be regenerated while being served)."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@contextmanager
def replacing(final: Path) -> Iterator[Path]:
    """A fresh temporary directory beside `final` to write a new version of it in; when the block ends it
    takes `final`'s place (the old version is removed), and if the block raises it is removed and `final` is
    left as it was. Readers see the old or the new directory, never a mix."""
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if final.exists():
            final.rename(old)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def markdown_text(value) -> str:
    """Record text made safe for a Markdown table cell: Markdown renders inline HTML (a backbone named
    `<script>` must stay text) and `|` would split the cell."""
    return html.escape(str(value), quote=False).replace("|", "\\|").replace("\n", " ")
