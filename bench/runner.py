"""Runner: the cells of each variant in their own subprocess (bench/worker.py), a timeout per cell, one
record appended as each cell finishes.

A crash, abort or hang inside a framework becomes a `failed` record for the cell it hit, with the reason
(signal or exit code and the last stderr lines); the variant's other cells go on in a fresh process, and the
run goes on. Re-running the same plan skips cells already recorded `ok` or
`skipped` for the same cell, artifact, harness version and machine, unless `force` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from itertools import groupby
from pathlib import Path

from bench import __version__, rounds, worker
from bench.artifacts import Artifact
from bench.cell import Cell
from bench.environment import apply_offline_env, describe, has_cuda_gpu, machine_fingerprint
from bench.errors import UsageError
from bench.keys import digest
from bench.peak import gemm_peak_gflops
from bench.plan import Plan
from bench.preparation import prepare_artifacts, resolve_forms
from bench.records import RECORDS_FILE, Record, append, read
from bench.runtimes import get_runtime, interpreter, is_reference
from bench.worker import now
from suites import get_suite
from suites.base import Context, Ready

STDERR_TAIL_LINES = 8
POLL_S = 0.2  # how often the runner looks for a finished cell (it sleeps in between)


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)


def run_key(cell: Cell, artifact: Artifact | None, machine: str) -> str:
    return digest([asdict(cell), artifact.content_hash if artifact else None, __version__, machine], 20)


def precision_peaks(runtimes: tuple[str, ...], threads: int) -> dict:
    """GEMM peaks per precision from every installed runtime that measures them (torch: bf16/fp16/int8;
    ONNX Runtime: fp32/int8), the best of them per precision, each naming what measured it (`by`). A library
    may not know a new CPU and run slower kernels (numpy's fp32 `gemm_peak` is kept beside them); a failure to
    measure leaves a precision out with the reason, it never stops the run."""
    best: dict = {}
    errors = []
    for name in runtimes:
        rt = get_runtime(name)
        if not rt.peaks or rt.missing_modules():
            continue
        try:
            found = rt.measure_peaks(threads)
        except Exception as exc:  # a framework error in a yardstick: the rows lose their % column only
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            continue
        for precision, entry in found.items():
            if precision == "skipped":
                best.setdefault("skipped", {}).update({f"{name} {k}": v for k, v in entry.items()})
            elif entry.get("gflops", 0) > best.get(precision, {}).get("gflops", 0):
                best[precision] = entry | {"by": name}
    return best | ({"error": "; ".join(errors)} if errors else {})


def default_threads() -> int:
    from bench.environment import cpu_info

    info = cpu_info()
    return max(1, min(info["physical_cores"] or 1, info["affinity_cores"] or 1))


def run(plan: Plan, out_dir: Path, force: bool = False,
        on_event: Callable[[str, Cell, Record | tuple | None], None] | None = None,
        pythons: dict[str, str] | None = None) -> RunSummary:
    """Run every cell of `plan`, appending to out_dir/records.jsonl; returns counts by status. Runtimes not
    installed here run in the interpreter `pythons` gives for their extra (bench.runtimes.interpreter)."""
    apply_offline_env()
    notify = on_event or (lambda *_: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path = out_dir / RECORDS_FILE
    threads = plan.threads or default_threads()
    machine = machine_fingerprint()
    existing = read(records_path) if records_path.exists() else []
    others = sorted({m for r in existing if (m := (r.environment or {}).get("machine")) and m != machine})
    if others:  # a published set, or another machine's run: this machine's numbers go in a directory of their own
        raise UsageError(f"{records_path} holds records of machine {', '.join(others)}, and this is machine "
                         f"{machine}: a run appends only to its own machine's records; choose another --out "
                         f"(the default, runs/{machine}/<preset>, is this machine's own)")
    done = {r.run_key for r in existing if r.status != "failed"}
    environment = describe() | {"gemm_peak": gemm_peak_gflops(threads),
                                "gemm_peaks": precision_peaks(plan.matrix.runtimes, threads)}
    settings = plan.record_settings(threads)
    cells = plan.cells()
    prepared = prepare_artifacts(cells, plan.seed)  # a failed artifact or file fails its cells, not the run
    resolve_forms(prepared, cells, plan.criterion)
    ready = _suites_prepare(plan, cells, Context(plan.seed, threads, machine, settings, plan.criterion))
    gpu = has_cuda_gpu()
    summary = RunSummary()
    todo: list[tuple[Cell, Artifact | None, str, dict | None]] = []  # (cell, artifact, run key, fields if not run)
    for cell in cells:
        own = ready.get(cell)
        artifact = own.artifact if own else prepared.artifacts.get((cell.backbone, cell.sparsity))
        key = run_key(cell, artifact, machine)
        if key in done and not force:
            summary.resumed += 1
            notify("resumed", cell, None)
            continue
        fields = None
        why = None if own else prepared.reason(cell)
        if cell.device == "cuda" and not gpu:
            fields = {"status": "skipped", "reason": "device cuda: no CUDA GPU on this machine (nvidia-smi)"}
        elif why:
            fields = {"status": "failed", "reason": why}
        elif own and own.reason:
            fields = {"status": own.status, "reason": own.reason}
        elif own:
            fields = get_suite(cell.suite).recall(own.reuse_key, plan.settings_of(cell.suite))
        if fields is None and interpreter(cell.runtime, pythons) is None:
            fields = {"status": "failed", "reason": f"runtime {cell.runtime} is not installed here and no interpreter "
                      f"was given for it (--python {get_runtime(cell.runtime).extra}=PATH)"}
        todo.append((cell, artifact, key, fields))

    def record(cell: Cell, artifact: Artifact, key: str, fields: dict) -> None:
        libraries = fields.pop("_libraries", None)  # a worker of another environment: its own libraries
        rec = Record(cell=cell, artifact=artifact.summary() if artifact else {}, settings=settings,
                     environment=environment | ({"libraries": libraries} if libraries else {}),
                     harness_version=__version__, run_key=key, **fields)
        append(records_path, rec)
        summary.add(rec.status)
        notify("end", cell, rec)

    # consecutive cells of one variant share a worker process (one load) unless isolate = "cell"; cells
    # decided without running form their own group
    shared = plan.isolate == "variant"
    timed: list[list[tuple]] = []  # with rounds: the timed cells of each variant, measured interleaved at the end
    for _, same in groupby(todo, key=lambda t: _variant(t[0], t[1]) if shared and t[3] is None else id(t)):
        group = list(same)
        if group[0][3] is not None:
            (cell, artifact, key, fields), = group
            notify("start", cell, None)
            record(cell, artifact, key, {"started": now(), "finished": now()} | fields)
            continue
        if plan.rounds:
            timed += [[t for t in group if get_suite(t[0].suite).timed]]
            group = [t for t in group if not get_suite(t[0].suite).timed]
            if not group:
                continue
        cells, artifact = [t[0] for t in group], group[0][1]
        notify("start", cells[0], None)
        python = interpreter(cells[0].runtime, pythons)
        for i, fields in _run_variant(cells, artifact, settings, plan.timeout_s, python):
            record(cells[i], artifact, group[i][2], fields)
            if cells[i] in ready:
                get_suite(cells[i].suite).remember(ready[cells[i]].reuse_key, fields)
            if i + 1 < len(cells):
                notify("start", cells[i + 1], None)
    # sessions of rounds per backbone (speed-ups compare rows of one backbone), at most plan.live_workers variants
    # loaded at once; the reference variant is in every session so each row's speed-up stays paired, and is
    # recorded from the first
    for backbone in dict.fromkeys(g[0][0].backbone for g in timed if g):
        same = [g for g in timed if g and g[0][0].backbone == backbone]
        for n, session in enumerate(rounds.sessions(same, plan.live_workers, lambda g: _is_reference(g[0][0]))):
            groups = [([t[0] for t in g], g[0][1], interpreter(g[0][0].runtime, pythons)) for g in session]
            first = session[0][0][0]
            measured = rounds.measure_timed(groups, settings, plan.rounds, plan.seed, plan.timeout_s,
                                            lambda c: get_suite(c.suite),
                                            lambda c: get_suite(c.suite).budget(plan.settings_of(c.suite)),
                                            on_round=lambda k, m, first=first: notify("round", first, (k, m)))
            for v, c, fields in measured:
                cell, artifact, key, _ = session[v][c]
                if n == 0 or not _is_reference(cell):
                    record(cell, artifact, key, fields)
    return summary


def _is_reference(cell: Cell) -> bool:
    return is_reference(cell.runtime, cell.precision, cell.sparsity)


def _suites_prepare(plan: Plan, cells: list[Cell], context: Context) -> dict[Cell, Ready]:
    """What each suite decided for its own cells before any runs (fine-tuned artifacts, reuse keys)."""
    ready: dict[Cell, Ready] = {}
    for name in dict.fromkeys(c.suite for c in cells):
        ready |= get_suite(name).prepare([c for c in cells if c.suite == name], plan.settings_of(name), context)
    return ready


def _variant(cell: Cell, artifact: Artifact) -> tuple:
    """Cells that can share one loaded adapter: same model file, same runtime, precision and device."""
    return cell.backbone, cell.runtime, cell.precision, cell.sparsity, cell.device, artifact.content_hash


def _run_variant(cells: list[Cell], artifact: Artifact, settings: dict, timeout_s: float,
                 python: str | None = None) -> Iterator[tuple[int, dict]]:
    """(index, record fields) for every cell, in order, as each finishes. One worker process runs them all;
    if it dies or hangs, the cell it was on fails with the reason (every remaining cell if it never finished
    loading: the load is the same for all) and the rest go to a fresh worker. `timeout_s` applies per cell
    (the first one's includes the load)."""
    pending = list(range(len(cells)))
    while pending:
        spec = {"cells": [asdict(cells[i]) for i in pending], "artifact": artifact.summary(), "settings": settings,
                "python": python or sys.executable}
        started = now()
        finished = 0
        end: WorkerEnd | None = None
        for local, fields in _one_worker(spec, timeout_s):
            if isinstance(fields, WorkerEnd):
                end = fields
                break
            yield pending[local], fields
            finished, started = local + 1, now()
        pending = pending[finished:]
        if not pending or end is None or end.restart:
            continue  # a framework exception: its cell is recorded, the rest get a fresh process
        failed = {"status": "failed", "started": started, "finished": now(), "reason": end.reason}
        hit = pending if not end.loaded else pending[:1]
        for i in hit:
            yield i, failed
        pending = pending[len(hit):]


@dataclass
class WorkerEnd:
    """How a worker ended without finishing its cells: asked for a restart, or died/hung (reason)."""

    restart: bool
    loaded: bool
    reason: str = ""


def _one_worker(spec: dict, timeout_s: float) -> Iterator[tuple[int, dict | WorkerEnd]]:
    """Start one worker and yield (index, fields) as its result files appear; a last (-1, WorkerEnd) if it
    stopped short of the last cell."""
    n = len(spec["cells"])
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        spec_path, out_dir, err_path = Path(tmp) / "spec.json", Path(tmp) / "out", Path(tmp) / "stderr.txt"
        out_dir.mkdir()
        spec_path.write_text(json.dumps(spec))
        threads = str(spec["settings"]["threads"])  # the pools that read the environment, before any import
        env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
                            "PYTHONUNBUFFERED": "1"}
        cmd = [spec["python"], "-m", "bench.worker", str(spec_path), str(out_dir)]
        with err_path.open("wb") as err:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        next_i, deadline = 0, time.monotonic() + (timeout_s or float("inf"))
        try:
            while next_i < n:
                try:
                    code = proc.wait(timeout=POLL_S)
                except subprocess.TimeoutExpired:
                    code = None
                while next_i < n and (out_dir / f"{next_i}.json").is_file():
                    fields = json.loads((out_dir / f"{next_i}.json").read_text())
                    if spec["python"] != sys.executable:  # another environment: record its own libraries
                        fields["_libraries"] = _libraries(out_dir / worker.LOADED)
                    yield next_i, fields
                    next_i, deadline = next_i + 1, time.monotonic() + (timeout_s or float("inf"))
                if next_i == n:
                    break
                loaded = (out_dir / worker.LOADED).exists()
                if code is not None:
                    reason = "" if code == worker.RESTART else _death(code) + _tail(err_path.read_bytes())
                    yield -1, WorkerEnd(code == worker.RESTART, loaded, reason)
                    return
                if time.monotonic() > deadline:
                    _kill(proc)
                    yield -1, WorkerEnd(False, loaded, f"timed out after {timeout_s:g} s"
                                        + ("" if loaded else " (while loading)") + _tail(err_path.read_bytes()))
                    return
        finally:
            _kill(proc)


def _libraries(loaded: Path) -> dict | None:
    try:
        return json.loads(loaded.read_text()).get("libraries")
    except (OSError, ValueError, AttributeError):
        return None


def _kill(proc: subprocess.Popen) -> None:
    """The worker and anything it started (its own session), if still running."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _death(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory, or killed from outside)" if -code == signal.SIGKILL else ""
        return f"worker killed by {name}{hint}"
    return f"worker exited with code {code} without a result"


def _tail(stderr: str | bytes | None) -> str:
    if not stderr:
        return ""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    # a native crash (DeepSparse's planner assertion) prints frames and hex dumps after the message that
    # matters: drop that noise and put the first assertion/fatal line first
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip() and not _NOISE.match(line)]
    key = [line for line in lines if _KEY.search(line)][:1]
    lines = key + [line for line in lines[-STDERR_TAIL_LINES:] if line not in key]
    return "; stderr: " + " | ".join(lines) if lines else ""


_NOISE = re.compile(r"^\s*(\d+# |\[[0-9a-f]{16,}\]$)")
_KEY = re.compile(r"Assertion at|Assertion `|Fatal|Segmentation fault|terminate called")
