"""Runner: each cell in its own subprocess with a timeout; one record appended per finished cell.

A crash, abort or hang inside a framework becomes a `failed` record with the reason (signal or exit code and
the last stderr lines) and the run goes on. Re-running the same plan skips cells already recorded `ok` or
`skipped` for the same cell, artifact, harness version and machine, unless `force` is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import __version__, exports
from bench.artifacts import Artifact, ensure
from bench.catalogue import get_backbone
from bench.environment import apply_offline_env, describe, has_cuda_gpu
from bench.glue.prepare import prepare as prepare_glue
from bench.peak import gemm_peak_gflops
from bench.plan import Cell, Plan
from bench.pruning import for_sparsity
from bench.records import RECORDS_FILE, Record, append, read
from bench.runtimes import get_runtime
from bench.worker import now

STDERR_TAIL_LINES = 8


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)


def run_key(cell: Cell, artifact: Artifact, machine: str) -> str:
    ident = [asdict(cell), artifact.content_hash, __version__, machine]
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def default_threads() -> int:
    from bench.environment import cpu_info

    info = cpu_info()
    return max(1, min(info["physical_cores"] or 1, info["affinity_cores"] or 1))


def run(plan: Plan, out_dir: Path, force: bool = False,
        on_event: Callable[[str, Cell, Record | None], None] | None = None) -> RunSummary:
    """Run every cell of `plan`, appending to out_dir/records.jsonl; returns counts by status."""
    apply_offline_env()
    notify = on_event or (lambda *_: None)
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path = out_dir / RECORDS_FILE
    threads = plan.threads or default_threads()
    environment = describe() | {"gemm_peak": gemm_peak_gflops(threads)}
    machine = environment["machine"]
    done = {r.run_key for r in read(records_path) if r.status != "failed"} if records_path.exists() else set()
    settings = plan.settings() | {"threads": threads}
    artifacts = prepare_artifacts(plan.cells(), plan.seed)
    glue = prepare_glue(plan.cells(), plan.seed, threads)  # fine-tuned artifacts, or why a glue cell is skipped
    gpu = has_cuda_gpu()
    summary = RunSummary()
    for cell in plan.cells():
        prepared = glue.get(cell)
        artifact = prepared.artifact if prepared else artifacts[cell.backbone, cell.sparsity]
        key = run_key(cell, artifact, machine)
        if key in done and not force:
            summary.resumed += 1
            notify("resumed", cell, None)
            continue
        notify("start", cell, None)
        started = now()
        if cell.device == "cuda" and not gpu:
            fields = {"status": "skipped", "reason": "device cuda: no CUDA GPU on this machine (nvidia-smi)"}
        elif prepared and prepared.reason:
            fields = {"status": prepared.status, "reason": prepared.reason}
        else:
            fields = _run_in_subprocess(cell, artifact, settings, threads, plan.timeout_s)
        record = Record(cell=cell, artifact=artifact.summary(), settings=settings, environment=environment,
                        harness_version=__version__, run_key=key,
                        **({"started": started, "finished": now()} | fields))
        append(records_path, record)
        summary.add(record.status)
        notify("end", cell, record)
    return summary


def needed_forms(cell: Cell) -> list[str]:
    """Derived files a cell reads: its runtime's model file for the precision, the reference for parity."""
    form = get_runtime(cell.runtime).form(cell.precision)
    return ([form] if form else []) + ([exports.REFERENCE] if cell.suite == "parity" else [])


def prepare_artifacts(cells: list[Cell], seed: int, check: bool = True) -> dict[tuple[str, str], Artifact]:
    """The artifact of every (backbone, sparsity) in the plan: dense ones built or read from the cache, pruned
    twins derived from them (numpy only, any environment). Derived model files a cell needs must be cached
    or buildable here: otherwise the run stops before any cell, naming the environment to run first."""
    cells = [c for c in cells if c.suite != "glue"]  # glue cells run fine-tuned artifacts (bench/glue/prepare.py)
    dense = {name: ensure(get_backbone(name), seed) for name in dict.fromkeys(c.backbone for c in cells)}
    artifacts = {(c.backbone, c.sparsity): None for c in cells}
    for backbone, sparsity in artifacts:
        artifacts[backbone, sparsity] = for_sparsity(dense[backbone], sparsity)
    for cell in cells if check else ():
        if cell.device == "cuda" and not has_cuda_gpu():
            continue  # skipped without running: needs no files
        for form in needed_forms(cell):
            exports.require(artifacts[cell.backbone, cell.sparsity], form)
    return artifacts


def _run_in_subprocess(cell: Cell, artifact: Artifact, settings: dict, threads: int, timeout_s: float) -> dict:
    spec = {"cell": asdict(cell), "artifact": artifact.summary(), "settings": settings, "threads": threads}
    with tempfile.TemporaryDirectory(prefix="bench-cell-") as tmp:
        spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                            "OPENBLAS_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "bench.worker", str(spec_path), str(out_path)]
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout_s or None,
                                  start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            return {"status": "failed", "reason": f"timed out after {timeout_s:g} s" + _tail(exc.stderr)}
        if out_path.is_file():
            return json.loads(out_path.read_text())
        return {"status": "failed", "reason": _death(proc.returncode) + _tail(proc.stderr)}


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
