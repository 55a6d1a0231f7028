"""Writing results safely: output directories checked up front, files replaced atomically, directories built
beside their final place and renamed in (kept free of pandas so `bench compare` starts fast)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def writable_dir(path: Path, what: str = "--out") -> Path:
    """`path` as a directory this process can write into, created if needed; one-line UsageError otherwise
    (a path under a file, no permission), before any work is done."""
    from bench.errors import UsageError

    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from exc
    return path


def atomic_write(path: Path, text: str | bytes) -> None:
    """Readers never see a half-written file (a report can be regenerated while being served)."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(text, bytes):
        tmp.write_bytes(text)
    else:
        tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


@contextmanager
def _beside(final: Path) -> Iterator[Path]:
    """A fresh hidden temporary directory next to `final`, removed if the block raises."""
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def building(final: Path) -> Iterator[Path]:
    """A fresh temporary directory beside `final` to build a cached directory in; renamed to `final` when the
    block ends, removed if it raises, so readers never see half a build. If another process renamed its own
    build into place first, ours is dropped: builds are keyed by recipe, so both hold the same content."""
    with _beside(final) as tmp:
        yield tmp
        if final.exists():
            shutil.rmtree(tmp)
        else:
            tmp.rename(final)


@contextmanager
def replacing(final: Path) -> Iterator[Path]:
    """A fresh temporary directory beside `final` to write a new version of it in; when the block ends it
    takes `final`'s place (the old version is removed), and if the block raises it is removed and `final` is
    left as it was. Readers see the old or the new directory, never a mix."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    with _beside(final) as tmp:
        yield tmp
        if final.exists():
            final.rename(old)
        tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
