"""Runner: each cell in its own subprocess with a timeout; one record appended per finished cell.

A crash, abort or hang inside a framework becomes a `failed` record with the reason (signal or exit code and
the last stderr lines) and the run goes on. Re-running the same plan skips cells already recorded `ok` or
`skipped` for the same cell, artifact, harness version and machine, unless `force` is set.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import __version__
from bench.artifacts import Artifact, ensure
from bench.catalogue import get_backbone
from bench.environment import apply_offline_env, describe, has_cuda_gpu
from bench.peak import gemm_peak_gflops
from bench.plan import Cell, Plan
from bench.records import RECORDS_FILE, Record, append, read
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
    artifacts = {name: ensure(get_backbone(name), plan.seed) for name in {c.backbone for c in plan.cells()}}
    gpu = has_cuda_gpu()
    summary = RunSummary()
    for cell in plan.cells():
        artifact = artifacts[cell.backbone]
        key = run_key(cell, artifact, machine)
        if key in done and not force:
            summary.resumed += 1
            notify("resumed", cell, None)
            continue
        notify("start", cell, None)
        started = now()
        if cell.device == "cuda" and not gpu:
            fields = {"status": "skipped", "reason": "device cuda: no CUDA GPU on this machine (nvidia-smi)"}
        else:
            fields = _run_in_subprocess(cell, artifact, settings, threads, plan.timeout_s)
        record = Record(cell=cell, artifact=artifact.summary(), settings=settings, environment=environment,
                        harness_version=__version__, run_key=key,
                        **({"started": started, "finished": now()} | fields))
        append(records_path, record)
        summary.add(record.status)
        notify("end", cell, record)
    return summary


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
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with code {code} without a result"


def _tail(stderr: str | bytes | None) -> str:
    if not stderr:
        return ""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    lines = [line for line in stderr.strip().splitlines() if line.strip()][-STDERR_TAIL_LINES:]
    return "; stderr: " + " | ".join(lines) if lines else ""
