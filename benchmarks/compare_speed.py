"""Speed targets of the gate and the report, end to end through the CLI (interpreter start and imports included):

  `bench compare` on two result sets of 500 cells each  ≤ 5 s
  `bench report` (report + leaderboard + plot) on 5,000 records  ≤ 10 s

Records are synthetic but shaped like real ones (tests/synthetic.py): 30-100 raw samples per timed cell,
the full environment block, params and GLUE accuracy records beside the timings.

    python benchmarks/compare_speed.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.cell import Cell
from bench.records import RECORDS_FILE, Record
from bench.synthetic import (
    BACKBONES,
    PRECISIONS,
    RUNTIMES,
    SPARSITIES,
    glue,
    lognormal,
    params,
    result_set,
    timed,
)

ROOT = Path(__file__).resolve().parent.parent
TARGET_COMPARE_S, TARGET_REPORT_S = 5.0, 10.0


def write(directory: Path, records: list[Record]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RECORDS_FILE).write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    return directory


def five_thousand(seed: int = 0, n: int = 5000) -> list[Record]:
    """A big published result set: per configuration params, latency at 3 lengths, throughput at 3 batches and
    GLUE accuracy on 2 tasks (9 records)."""
    rng = np.random.default_rng(seed)
    out: list[Record] = []
    for b, r, p, s, d in itertools.product(BACKBONES, RUNTIMES, PRECISIONS, SPARSITIES, ("cpu", "cuda")):
        cell = Cell(b, r, p, s, d, "latency", 1, 128)
        base = rng.uniform(0.002, 0.05)
        out.append(params(cell))
        for seq in (32, 128, 384):
            out.append(timed(Cell(b, r, p, s, d, "latency", 1, seq),
                             lognormal(rng, base * seq / 128, 0.07, int(rng.integers(30, 101)))))
        for batch in (1, 8, 32):
            out.append(timed(Cell(b, r, p, s, d, "throughput", batch, 128),
                             lognormal(rng, base * batch * 0.6, 0.07, int(rng.integers(30, 101)))))
        drop = {"fp32": 0.0, "bf16": 0.002, "int8": 0.008}[p] + {"dense": 0, "pruned80": 0.01, "pruned90": 0.03}[s]
        out.append(glue(cell, "sst2", accuracy=0.91 - drop))
        out.append(glue(cell, "cola", mcc=0.55 - 2 * drop))
        if len(out) >= n:
            return out[:n]
    return out


def timed_run(argv: list[str], repeat: int, expect: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system of the child) of each run. On a shared machine the wall
    time includes waiting for a core; the CPU time is what the command itself costs."""
    wall, cpu = [], []
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "bench.cli", *argv], capture_output=True, text=True, env=env)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != expect:
            raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base = write(tmp / "base", result_set(seed=1, n_cells=500))
        new = write(tmp / "new", result_set(seed=2, n_cells=500, slowdown=1.10))
        big = write(tmp / "big", five_thousand())
        samples = sum(len(v) for r in result_set(seed=1, n_cells=500) for v in r.samples.values())
        cmp_wall, cmp_cpu = timed_run(["compare", str(base), str(new)], args.repeat, expect=1)
        rep_wall, rep_cpu = timed_run(["report", str(big), "--out", str(tmp / "report")], args.repeat, expect=0)
        html_kib = (tmp / "report" / "leaderboard.html").stat().st_size / 1024
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} (wall time > CPU time means waiting for a core)")
    ok_cmp, ok_rep = min(cmp_wall) <= TARGET_COMPARE_S, min(rep_wall) <= TARGET_REPORT_S
    print(f"bench compare, 500 vs 500 cells ({samples} raw samples per side): wall best {min(cmp_wall):.2f} s, "
          f"median {np.median(cmp_wall):.2f} s; CPU best {min(cmp_cpu):.2f} s; {args.repeat} runs "
          f"(target ≤ {TARGET_COMPARE_S:g} s: {'met' if ok_cmp else 'MISSED'})")
    print(f"bench report, 5000 records (report + leaderboard md/csv/html {html_kib:.0f} KiB + Pareto png/svg): "
          f"wall best {min(rep_wall):.2f} s, median {np.median(rep_wall):.2f} s; CPU best {min(rep_cpu):.2f} s; "
          f"{args.repeat} runs (target ≤ {TARGET_REPORT_S:g} s: {'met' if ok_rep else 'MISSED'})")
    return 0 if ok_cmp and ok_rep else 1


if __name__ == "__main__":
    sys.exit(main())
