"""Records → pytest-benchmark JSON, so `pytest-benchmark compare` works on harness results. Every timed cell
becomes one benchmark whose stats are recomputed from the record's raw samples (seconds per call: one forward
at the cell's batch size) by pytest-benchmark's own definitions (bench.stats), with the samples kept as `data`.

Only one machine per file: pytest-benchmark keeps one machine_info per file and compares across files.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bench import __version__
from bench.errors import UsageError
from bench.files import atomic_write
from bench.records import Record
from bench.stats import pytest_benchmark_stats

FORMAT_VERSION = "5.1.0"  # the pytest-benchmark JSON layout this follows (unchanged since 3.x)


def benchmark_name(r: Record) -> str:
    c = r.cell
    shape = f"[b{c.batch}-s{c.seq_len}{'-' + c.task if c.task else ''}]"
    return f"{c.suite}::{c.backbone}/{c.runtime}/{c.precision}/{c.sparsity}/{c.device}{shape}"


def to_pytest_benchmark(records: list[Record]) -> dict:
    """One pytest-benchmark JSON document for records of one machine (latest record of each cell)."""
    machines = sorted({str((r.environment or {}).get("machine")) for r in records})
    if len(machines) > 1:
        raise UsageError(f"records from {len(machines)} machines ({', '.join(machines)}): pytest-benchmark files "
                         "hold one machine each; export one machine at a time with --machine ID")
    latest: dict = {}
    for r in sorted(records, key=lambda r: r.finished or ""):
        latest[r.cell] = r
    timed = [r for r in latest.values() if r.status == "ok" and any(r.samples.values())]
    if not timed:
        raise UsageError("no timed cell with raw samples to export (params-only or failed cells)")
    env = timed[-1].environment or {}
    cpu, git = env.get("cpu") or {}, env.get("git") or {}
    python = env.get("python") or ""
    machine_info = {
        "node": env.get("hostname"), "processor": cpu.get("model"), "machine": cpu.get("arch"),
        "python_compiler": "", "python_implementation": "CPython", "python_implementation_version": python,
        "python_version": python, "python_build": [], "release": env.get("os"), "system": env.get("os"),
        "cpu": {"brand_raw": cpu.get("model"), "count": cpu.get("logical_cores"), "arch": cpu.get("arch"),
                "flags": cpu.get("flags", [])},
        "backbone_bench": {"machine": env.get("machine"), "gpus": env.get("gpus", []),
                           "libraries": env.get("libraries", {}), "gemm_peak": env.get("gemm_peak")},
    }
    commit_info = {"id": git.get("commit") or "unversioned", "time": None, "author_time": None,
                   "dirty": bool(git.get("dirty")), "project": "backbone-bench", "branch": "(unknown)"}
    benchmarks = []
    for r in sorted(timed, key=benchmark_name):
        key = "latency_s" if "latency_s" in r.samples else "batch_s" if "batch_s" in r.samples else next(
            k for k, v in r.samples.items() if v)
        c = r.cell
        benchmarks.append({
            "group": f"{c.suite} b{c.batch} s{c.seq_len}" + (f" {c.task}" if c.task else ""),
            "name": benchmark_name(r).split("::", 1)[1], "fullname": benchmark_name(r),
            "params": asdict(c), "param": f"{c.runtime}-{c.precision}-{c.sparsity}-{c.device}",
            "extra_info": {"samples": key, "unit": "seconds per forward call", "status": r.status,
                           "run_key": r.run_key, "finished": r.finished} | {
                k: v for k, v in r.metrics.items() if k in ("sequences_per_s", "tokens_per_s", "gflops_per_s")},
            "options": {"disable_gc": True, "timer": "perf_counter", "min_rounds": len(r.samples[key]),
                        "max_time": None, "min_time": None, "warmup": True},
            "stats": pytest_benchmark_stats(r.samples[key]),
        })
    return {"machine_info": machine_info, "commit_info": commit_info, "benchmarks": benchmarks,
            "datetime": max((r.finished or "") for r in timed) or None,
            "version": FORMAT_VERSION, "exported_by": f"backbone-bench {__version__}"}


def write_pytest_benchmark(records: list[Record], path: Path) -> int:
    """Write the JSON file; returns the number of benchmarks."""
    doc = to_pytest_benchmark(records)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(doc, indent=2, allow_nan=False))
    return len(doc["benchmarks"])
