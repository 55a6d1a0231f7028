"""The baseline store: the runs of each machine fingerprint that `bench compare --baseline` judges NEW against.

Layout: `<baselines>/<machine>/run-NN/records.jsonl`, one directory per run, oldest first (`results/baselines`
holds the published ones). A machine's directory is replaced as a whole, so a reader never sees half a
baseline. What a record is and how it is read and written is bench.records'; this module only files runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.cell import Cell
from bench.errors import UsageError
from bench.files import atomic_write, replacing
from bench.records import RECORDS_FILE, RUN_PREFIX, Record, read

RunRecords = list[Record]  # the records of one run of a matrix

KEEP_RUNS = 5


def latest(records: Sequence[Record]) -> dict[tuple[str | None, Cell], Record]:
    """The latest record of each cell on each machine: a cell measured again supersedes its earlier records."""
    out: dict[tuple[str | None, Cell], Record] = {}
    for r in sorted(records, key=lambda r: r.finished or ""):
        out[((r.environment or {}).get("machine"), r.cell)] = r
    return out


def baseline_dir(baselines: Path, machine: str) -> Path:
    return Path(baselines) / machine


def _stored_runs(machine_dir: Path) -> list[Path]:
    """Run files oldest first; a `records.jsonl` directly in the machine directory is the older one-run layout."""
    legacy = [machine_dir / RECORDS_FILE] if (machine_dir / RECORDS_FILE).is_file() else []
    runs = sorted(machine_dir.glob(f"{RUN_PREFIX}*/{RECORDS_FILE}"), key=lambda p: p.parent.name)
    return legacy + runs


def load_baseline(baselines: Path, machines: list[str | None]) -> list[RunRecords]:
    """The stored baseline runs of each machine NEW ran on."""
    out: list[RunRecords] = []
    for m in machines:
        if not m:
            raise UsageError("NEW records carry no machine fingerprint (environment.machine); give BASE explicitly")
        files = _stored_runs(baseline_dir(baselines, m))
        if not files:
            raise UsageError(f"no baseline for machine {m} ({baseline_dir(baselines, m)} has no runs); store one "
                             f"with `bench baseline RESULTS --baselines {baselines}` or "
                             "`nox -s gate -- --update-baseline`")
        out += [read(f) for f in files]
    return out


def store_baseline(runs: list[RunRecords], baselines: Path, add: bool = False,
                   keep: int = KEEP_RUNS) -> dict[str, tuple[Path, int, int, int]]:
    """File each run under its machine: replace that machine's baseline, or with `add` append to it and keep
    the newest `keep` runs (a rolling baseline spans more of the machine's drift than runs taken back to back).
    Returns per machine the directory, the number of runs now stored, of distinct cells, and of cells that are
    not ok in the newest run (those gate nothing)."""
    if keep < 1:
        raise UsageError(f"--keep must be at least 1, got {keep}")
    by_machine: dict[str, list[RunRecords]] = {}
    for run in runs:
        per: dict[str, RunRecords] = {}
        for (machine, _), r in latest(run).items():
            if not machine:
                raise UsageError("records carry no machine fingerprint (environment.machine): cannot file a "
                                 "baseline")
            per.setdefault(machine, []).append(r)
        for machine, recs in per.items():
            by_machine.setdefault(machine, []).append(recs)
    out = {}
    for machine, new_runs in by_machine.items():
        final = baseline_dir(baselines, machine)
        texts = [f.read_text(encoding="utf-8") for f in _stored_runs(final)] if add else []
        texts = (texts + ["".join(r.to_json() + "\n" for r in recs) for recs in new_runs])[-keep:]
        final.parent.mkdir(parents=True, exist_ok=True)
        with replacing(final) as tmp:
            for i, text in enumerate(texts, start=1):
                (tmp / f"{RUN_PREFIX}{i:02d}").mkdir()
                atomic_write(tmp / f"{RUN_PREFIX}{i:02d}" / RECORDS_FILE, text)
        newest = new_runs[-1]
        cells = {r.cell for f in _stored_runs(final) for r in read(f)}
        out[machine] = (final, len(texts), len(cells), sum(r.status != "ok" for r in newest))
    return out
