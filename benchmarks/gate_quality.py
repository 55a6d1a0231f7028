"""Gate quality on REAL timings: the harness's own latency loop (bench.timing.measure, GC paused, warm-up,
at least N iterations AND T seconds) times a small numpy workload, runs become records, and `bench.gate.compare`
judges them exactly as `bench compare` would.

  A/A:      BASE runs vs NEW runs of the same code, PAIRS times → false alarms (should be 0)
  slowdown: NEW's workload carries an injected delay of 10% of its calibrated median
            → detected (should be every comparison)

Each comparison is judged twice from the same runs: one run a side (the first of each), and --base-runs vs
--new-runs runs a side (default 3 vs 3: judged on run medians against the pooled run-to-run noise, as
`nox -s gate` does). Runs are interleaved (base, A, slowed, base, A, slowed, ...) so slow drift of a shared
machine hits all three alike, as it would hit a CI baseline and a CI run taken at different times only
worse. The delay is a calibrated busy-wait by default: time.sleep() overshoots sub-millisecond requests
by tens of microseconds (a 10% sleep would really be 12-15%); `--inject sleep` uses it anyway and the
measured slowdown is printed either way.

    python benchmarks/gate_quality.py [--pairs 20] [--base-runs 3] [--new-runs 3] [--min-time 0.25]
                                      [--inject spin|sleep] [--out results/benchmarks/gate_quality.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bench.cell import Cell
from bench.environment import describe
from bench.gate.change import REGRESSION
from bench.gate.judge import compare
from bench.records import Record
from bench.stats import summarize
from bench.timing import Budget, measure

KEY = "latency_s"


def workloads() -> dict[Cell, callable]:
    """Two cells of a tiny 'matrix': a matmul the size of a small encoder's FFN and a softmax over scores."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((128, 384), dtype=np.float32), rng.standard_normal((384, 1536), dtype=np.float32)
    s = rng.standard_normal((12, 128, 128), dtype=np.float32)

    def ffn():
        return np.maximum(a @ b, 0)

    def attention_softmax():
        e = np.exp(s - s.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    return {Cell("numpy-ffn-128x384x1536", "numpy", "fp32", "dense", "cpu", "latency", 1, 128): ffn,
            Cell("numpy-softmax-12x128x128", "numpy", "fp32", "dense", "cpu", "latency", 1, 128): attention_softmax}


def spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run(cells: dict, budget: Budget, env: dict, delays: dict | None = None, inject: str = "spin") -> list[Record]:
    """One run of the matrix: every cell timed by the harness loop, as a record."""
    out = []
    for cell, fn in cells.items():
        delay = (delays or {}).get(cell, 0.0)
        wait = spin if inject == "spin" else time.sleep
        timed_fn = (lambda fn=fn, d=delay, wait=wait: (fn(), wait(d))) if delay else fn
        samples = measure(timed_fn, budget)
        out.append(Record(cell=cell, status="ok", metrics=summarize(samples), samples={"latency_s": samples},
                          environment=env, finished=time.strftime("%Y-%m-%dT%H:%M:%S")))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=20, help="A/A comparisons, and as many slowdown comparisons")
    parser.add_argument("--base-runs", type=int, default=3, help="BASE runs per comparison")
    parser.add_argument("--new-runs", type=int, default=3, help="NEW runs per comparison (A/A and slowed each)")
    parser.add_argument("--min-time", type=float, default=0.25, help="seconds per cell per run (harness min_time_s)")
    parser.add_argument("--min-iters", type=int, default=30, help="samples per cell per run at least")
    parser.add_argument("--slowdown", type=float, default=0.10, help="injected delay as a share of the median")
    parser.add_argument("--inject", choices=["spin", "sleep"], default="spin")
    parser.add_argument("--out", type=Path, help="write the per-comparison results as JSON")
    args = parser.parse_args()
    budget = Budget(warmup_iters=3, warmup_s=0.1, min_iters=args.min_iters, min_time_s=args.min_time,
                    max_time_s=10.0)
    env = describe()
    cells = workloads()
    started = time.perf_counter()
    modes = {"1 vs 1 run": (1, 1), f"{args.base_runs} vs {args.new_runs} runs": (args.base_runs, args.new_runs)}
    tally = {m: {"false_alarms": 0, "aa_cells": 0, "detected": 0, "flagged": 0, "slow_cells": 0, "floors": []}
             for m in modes}
    pairs, ratios = [], []
    with threadpool_limits(1):  # one BLAS thread, as a cell pinned to its threads; less cross-talk on a busy box
        calibration = run(cells, budget, env)
        delays = {r.cell: args.slowdown * float(np.median(r.samples["latency_s"])) for r in calibration}
        for _ in range(args.pairs):
            base, same, slow = [], [], []
            for i in range(max(args.base_runs, args.new_runs)):
                if i < args.base_runs:
                    base.append(run(cells, budget, env))
                if i < args.new_runs:
                    same.append(run(cells, budget, env))
                    slow.append(run(cells, budget, env, delays, args.inject))
            line, pair = [], {}
            for mode, (k, m) in modes.items():
                aa, sd = compare(base[:k], same[:m]), compare(base[:k], slow[:m])
                t = tally[mode]
                t["false_alarms"] += bool(aa.regressions)
                t["aa_cells"] += len(aa.changes)
                t["detected"] += bool(sd.regressions)
                t["flagged"] += sum(c.verdict == REGRESSION for c in sd.changes)
                t["slow_cells"] += len(sd.changes)
                t["floors"] += [c.floor for c in aa.changes if c.floor is not None]
                if k == m == 1:
                    ratios += [c.ratio for c in sd.changes]
                worst = max(aa.changes, key=lambda c: c.worse)
                line.append(f"{mode}: A/A worst {worst.worse:+.1f}% ({worst.verdict}); slowed "
                            + ", ".join(f"{c.worse:+.1f}% {c.verdict}" for c in sd.changes))
                pair[mode] = {"aa": [_row(c) for c in aa.changes], "slowed": [_row(c) for c in sd.changes]}
            pairs.append(pair)
            print("  " + " | ".join(line), flush=True)
    n = [len(r.samples[KEY]) for r in calibration]
    cv = [r.metrics["cv"] for r in calibration]
    print(f"cells: {', '.join(c.backbone for c in cells)}; medians "
          f"{', '.join(f'{1e3 * np.median(r.samples[KEY]):.2f} ms' for r in calibration)}; "
          f"{min(n)}-{max(n)} samples and CV {100 * min(cv):.1f}-{100 * max(cv):.1f}% per run (calibration)")
    print(f"{100 * args.slowdown:.0f}% injected slowdown ({args.inject}; measured median ratio of single runs "
          f"{np.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f})")
    for mode, t in tally.items():
        floor = f"; run-level floor median {np.median(t['floors']):.1f}%" if t["floors"] else ""
        print(f"{mode}: A/A false alarms in {t['false_alarms']}/{args.pairs} comparisons; slowdown detected in "
              f"{t['detected']}/{args.pairs} comparisons ({t['flagged']}/{t['slow_cells']} cells){floor}")
    print(f"took {time.perf_counter() - started:.0f} s")
    if args.out:
        summary = {m: {k: v for k, v in t.items() if k != "floors"} for m, t in tally.items()}
        args.out.write_text(json.dumps({"command": " ".join(sys.argv), "machine": env.get("machine"),
                                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "summary": summary,
                                        "pairs": pairs}, indent=1))
    final = tally[list(modes)[-1]]
    return 0 if final["false_alarms"] == 0 and final["detected"] == args.pairs else 1


def _row(c) -> dict:
    return {"cell": c.cell.backbone, "verdict": c.verdict, "worse_pct": c.worse, "p": c.p_value,
            "p_runs": c.p_runs, "noise_pct": c.noise, "floor_pct": c.floor}


if __name__ == "__main__":
    sys.exit(main())
