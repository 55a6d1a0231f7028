"""Units on this machine: a variant's cells in one worker process (bench/worker.py) with a timeout per cell, a
session of interleaved rounds (bench/rounds.py), what this machine is as a node (fingerprint, description, GEMM
peaks), and the `local` executor that runs a run's units here one after the other.

A crash, abort or hang inside a framework becomes a `failed` record for the cell it hit, with the reason
(signal or exit code and the last stderr lines); the variant's other cells go on in a fresh process, and the
run goes on.
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
from pathlib import Path

from bench import rounds, worker
from bench.artifacts import Artifact
from bench.cell import Cell
from bench.environment import describe, has_cuda_gpu, machine_fingerprint
from bench.errors import UsageError
from bench.executor import Event, Node, Spec, TrainJob, Unit
from bench.peak import gemm_peak_gflops
from bench.plan import Plan
from bench.runtimes import get_runtime, interpreter
from bench.worker import now
from suites import get_suite

STDERR_TAIL_LINES = 8


POLL_S = 0.2  # how often the runner looks for a finished cell (it sleeps in between)


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


def this_node(plan: Plan, pythons: dict | None, name: str = "local", threads: int = 0) -> Node:
    """This machine as the place cells run: its fingerprint, description and GEMM peaks (measured here, with the
    threads its cells get: the plan's, else `threads`, else one per physical core), the runtimes it can run."""
    threads = plan.threads or threads or default_threads()
    # an interpreter given for another environment counts only where it exists (a cluster node may lack it)
    runtimes = tuple(r for r in plan.matrix.runtimes if (python := interpreter(r, pythons)) and Path(python).is_file())
    environment = describe() | {"gemm_peak": gemm_peak_gflops(threads),
                                "gemm_peaks": precision_peaks(plan.matrix.runtimes, threads)}
    return Node(name, machine_fingerprint(), environment, threads, plan.record_settings(threads), host=_host(),
                gpu=has_cuda_gpu(), runtimes=runtimes)


def _host() -> str:
    """The physical host (boot id + hostname): nodes of one local cluster share it, two machines never do."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{os.uname().nodename}/{boot}"


def execute_unit(unit: Unit, settings: dict, spec: Spec,
                 on_round: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, int, dict]]:
    """(variant index, cell index, record fields) of every cell of `unit`, run on this machine: a variant's
    cells in one worker (as each finishes), or a session's in interleaved rounds (all at the end)."""
    if not unit.session:
        cells, artifact = [row[0] for row in unit.variants[0]], unit.variants[0][0][1]
        for i, fields in _run_variant(cells, artifact, settings, spec.timeout_s,
                                      interpreter(cells[0].runtime, spec.pythons)):
            yield 0, i, fields
        return
    groups = [([row[0] for row in v], v[0][1], interpreter(v[0][0].runtime, spec.pythons)) for v in unit.variants]
    yield from rounds.measure_timed(groups, settings, spec.rounds, spec.seed, spec.timeout_s,
                                    lambda c: get_suite(c.suite), lambda c: spec.budgets[c], on_round=on_round)


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



class LocalExecutor:
    """This machine, one unit after the other (the default). Suites train on demand in their own `prepare`."""

    name = "local"
    trains = False  # training is not spread: a suite's prepare trains what it needs, here

    def nodes(self, plan, pythons: dict) -> list[Node]:
        return [this_node(plan, pythons)]

    def train(self, jobs: list[TrainJob], nodes: list[Node], log: Callable[[str], None]) -> dict[TrainJob, str]:
        return {}

    def unavailable(self, cell: Cell, nodes: list[Node], pythons: dict) -> dict | None:
        """Record fields of a cell no node here can run (its runtime's environment is missing), or None."""
        if interpreter(cell.runtime, pythons) is not None:
            return None
        return {"status": "failed", "reason": f"runtime {cell.runtime} is not installed here and no interpreter "
                f"was given for it (--python {get_runtime(cell.runtime).extra}=PATH)"}

    def execute(self, units: list[Unit], nodes: list[Node], spec: Spec,
                on_start: Callable[[int], None], on_round: Callable[[int, int, int], None]) -> Iterator[Event]:
        node = nodes[0]
        for u, unit in enumerate(units):
            on_start(u)
            for v, c, fields in execute_unit(unit, node.settings, spec,
                                             on_round=lambda k, m, u=u: on_round(u, k, m)):
                yield u, v, c, fields, node

    def close(self) -> None:
        pass


def make(address: str | None = None) -> LocalExecutor:
    if address:
        raise UsageError("--executor local takes no address")
    return LocalExecutor()

