"""Interoperability with other benchmark tools: records → pytest-benchmark JSON, so `pytest-benchmark compare`
works on harness results. Every timed cell becomes one benchmark whose stats are recomputed from the record's
raw samples (seconds per call: one forward at the cell's batch size), with the samples kept as `data`.

Only one machine per file: pytest-benchmark keeps one machine_info per file and compares across files.
"""

from __future__ import annotations

import json
import statistics
from bisect import bisect_left, bisect_right
from dataclasses import asdict
from pathlib import Path

from bench import __version__
from bench.errors import UsageError
from bench.output import atomic_write
from bench.records import Record

FORMAT_VERSION = "5.1.0"  # the pytest-benchmark JSON layout this follows (unchanged since 3.x)


def quartiles(sorted_data: list[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark computes them (Wikipedia methods 2 and 3), so exported stats match its own."""
    n = len(sorted_data)
    if n == 1:
        return sorted_data[0], sorted_data[0]
    if n % 2:
        k, r = n // 4, n % 4
        if r == 1:
            return (0.25 * sorted_data[k - 1] + 0.75 * sorted_data[k],
                    0.75 * sorted_data[3 * k] + 0.25 * sorted_data[3 * k + 1])
        return (0.75 * sorted_data[k] + 0.25 * sorted_data[k + 1],
                0.25 * sorted_data[3 * k + 1] + 0.75 * sorted_data[3 * k + 2])
    return statistics.median(sorted_data[: n // 2]), statistics.median(sorted_data[n // 2:])


def stats(samples: list[float]) -> dict:
    """pytest-benchmark's Stats fields from raw samples in seconds."""
    data = [float(x) for x in samples]
    s = sorted(data)
    n = len(s)
    mean = statistics.fmean(s)
    std = statistics.stdev(s) if n > 1 else 0.0
    q1, q3 = quartiles(s)
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    std_out = sum(1 for x in s if x < mean - std or x > mean + std)
    iqr_out = sum(1 for x in s if x < lo or x > hi)
    total = sum(s)
    return {
        "min": s[0], "max": s[-1], "mean": mean, "stddev": std, "rounds": n, "median": statistics.median(s),
        "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_out, "stddev_outliers": std_out,
        "outliers": f"{std_out};{iqr_out}",
        "ld15iqr": s[0] if n == 1 else s[bisect_left(s, lo)],
        "hd15iqr": s[-1] if n == 1 else s[bisect_right(s, hi) - 1],
        "ops": n / total if total else 0.0, "total": total, "data": data, "iterations": 1,
    }


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
            "stats": stats(r.samples[key]),
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
