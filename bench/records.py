"""Records: one JSON line per cell, appended and flushed as each cell ends, so a killed run loses nothing.

Schema history (readers accept every listed version):
  1: first version.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.cell import Cell
from bench.errors import UsageError

SCHEMA_VERSION = 1
SUPPORTED_SCHEMAS = (1,)
STATUSES = ("ok", "failed", "skipped")
RECORDS_FILE = "records.jsonl"
RUN_PREFIX = "run-"  # repeated runs of one matrix: DIR/run-<id>/records.jsonl (a gate baseline, `nox -s gate`)


@dataclass
class Record:
    cell: Cell
    status: str
    reason: str | None = None
    metrics: dict = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)  # raw samples, seconds
    artifact: dict = field(default_factory=dict)  # hash, pretrained, source, path
    settings: dict = field(default_factory=dict)  # threads, timing budget
    runtime: dict = field(default_factory=dict)  # what the adapter reports (versions, threads, options)
    environment: dict = field(default_factory=dict)
    started: str | None = None
    finished: str | None = None
    harness_version: str = ""
    run_key: str = ""
    schema: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, allow_nan=False, default=_jsonable)

    @classmethod
    def from_dict(cls, obj: dict) -> Record:
        obj = upgrade(obj)
        known = {k: v for k, v in obj.items() if k in cls.__dataclass_fields__}
        cell = known.pop("cell")
        if not isinstance(cell, dict):
            raise ValueError("cell must be an object")
        status = known.get("status")
        if status not in STATUSES:
            raise ValueError(f"status {status!r} not one of {STATUSES}")
        return cls(cell=Cell(**cell), **known)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def upgrade(obj: dict) -> dict:
    """Bring an older record to the current schema; reject versions this reader does not know."""
    if not isinstance(obj, dict):
        raise ValueError("record is not a JSON object")
    version = obj.get("schema")
    if version not in SUPPORTED_SCHEMAS:
        raise ValueError(f"schema version {version!r} not supported (this reader knows {SUPPORTED_SCHEMAS})")
    return obj


def append(path: Path, record: Record) -> None:
    """One complete line per call, flushed and fsynced: a crash after this returns cannot lose it."""
    line = record.to_json() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        if f.tell() > 0 and not _ends_with_newline(path):
            f.write("\n")  # a torn line from a killed writer stays on its own line
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def read(path: Path) -> list[Record]:
    """Records of one file. A torn last line (killed writer) is skipped with a warning; any other bad line
    is an error naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"{path}: no such result file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: unreadable ({exc})") from exc
    records = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if _looks_torn(line):
                warnings.warn(f"{path}:{number}: ignoring a torn line (interrupted run)", stacklevel=2)
                continue
            raise UsageError(f"{path}:{number}: corrupt record (not JSON: {exc})") from exc
        try:
            records.append(Record.from_dict(obj))
        except (ValueError, TypeError, KeyError) as exc:
            raise UsageError(f"{path}:{number}: invalid record ({exc})") from exc
    return records


def _looks_torn(line: str) -> bool:
    """A prefix of a record line, left by a killed writer: starts like one and never closes."""
    return line.startswith('{"') and not line.rstrip().endswith("}")


def read_many(paths: list[Path]) -> list[Record]:
    """Records from files or result directories (their records.jsonl)."""
    out: list[Record] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files = sorted(p.rglob(RECORDS_FILE))
            if not files:
                raise UsageError(f"{p}: no {RECORDS_FILE} found")
            for f in files:
                out += read(f)
        else:
            out += read(p)
    if not out:
        raise UsageError(f"no records in {', '.join(map(str, paths))}")
    return out


def read_runs(paths: list[Path]) -> list[list[Record]]:
    """Records grouped by run: each path is one run, except that the records files under a directory named
    `run-*` form a run of their own (repeated runs of one matrix, as `nox -s gate` and baselines store them)."""
    runs: list[list[Record]] = []
    for p in map(Path, paths):
        if not p.is_dir():
            runs.append(read_many([p]))
            continue
        groups: dict[Path | None, list[Record]] = {}
        files = sorted(p.rglob(RECORDS_FILE))
        if not files:
            raise UsageError(f"{p}: no {RECORDS_FILE} found")
        for f in files:
            run_dir = next((a for a in f.relative_to(p).parents if a.name.startswith(RUN_PREFIX)), None)
            groups.setdefault(run_dir, []).extend(read(f))
        runs += [recs for recs in groups.values() if recs]
    if not any(runs):
        raise UsageError(f"no records in {', '.join(map(str, paths))}")
    return runs
