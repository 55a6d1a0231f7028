"""Gate quality on REAL timings: the harness's own latency loop (bench.timing.measure, GC paused, warm-up,
at least N iterations AND T seconds) times a small numpy workload, runs become records, and `bench.gate.compare`
judges them exactly as `bench compare` would.

  A/A:      two runs of the same code, PAIRS times → false alarms (should be 0)
  slowdown: the second run's workload carries an injected delay of 10% of its calibrated median
            → detected (should be every comparison)

Runs are interleaved (A, A', slowed, A, A', slowed, ...) so slow drift of a shared machine hits all three alike,
as it would hit a CI baseline and a CI run taken at different times only worse. The delay is a calibrated
busy-wait by default: time.sleep() overshoots sub-millisecond requests by tens of microseconds (a 10% sleep
would really be 12-15%); `--inject sleep` uses it anyway and the measured slowdown is printed either way.

    python benchmarks/gate_quality.py [--pairs 20] [--min-time 0.25] [--inject spin|sleep]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.environment import describe
from bench.gate import REGRESSION, compare
from bench.plan import Cell
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
    parser.add_argument("--min-time", type=float, default=0.25, help="seconds per cell per run (harness min_time_s)")
    parser.add_argument("--min-iters", type=int, default=30, help="samples per cell per run at least")
    parser.add_argument("--slowdown", type=float, default=0.10, help="injected delay as a share of the median")
    parser.add_argument("--inject", choices=["spin", "sleep"], default="spin")
    args = parser.parse_args()
    budget = Budget(warmup_iters=3, warmup_s=0.1, min_iters=args.min_iters, min_time_s=args.min_time,
                    max_time_s=10.0)
    env = describe()
    cells = workloads()
    started = time.perf_counter()
    with threadpool_limits(1):  # one BLAS thread, as a cell pinned to its threads; less cross-talk on a busy box
        calibration = run(cells, budget, env)
        delays = {r.cell: args.slowdown * float(np.median(r.samples["latency_s"])) for r in calibration}
        false_alarms, aa_cells, detected, slow_cells, flagged, ratios = 0, 0, 0, 0, 0, []
        for _ in range(args.pairs):
            a = run(cells, budget, env)
            a2 = run(cells, budget, env)
            slow = run(cells, budget, env, delays, args.inject)
            aa = compare(a, a2)
            false_alarms += len(aa.regressions)
            aa_cells += len(aa.changes)
            sd = compare(a, slow)
            detected += bool(sd.regressions)
            slow_cells += len(sd.changes)
            flagged += sum(c.verdict == REGRESSION for c in sd.changes)
            ratios += [c.ratio for c in sd.changes]
            worst_aa = max(aa.changes, key=lambda c: c.worse)
            print(f"  pair: A/A worst {worst_aa.worse:+.1f}% p={worst_aa.p_value:.2g} ({worst_aa.verdict}); "
                  f"slowed {', '.join(f'{c.worse:+.1f}% p={c.p_value:.1g} {c.verdict}' for c in sd.changes)}",
                  flush=True)
    n = [len(r.samples[KEY]) for r in calibration]
    cv = [r.metrics["cv"] for r in calibration]
    print(f"cells: {', '.join(c.backbone for c in cells)}; medians "
          f"{', '.join(f'{1e3 * np.median(r.samples[KEY]):.2f} ms' for r in calibration)}; "
          f"{min(n)}-{max(n)} samples and CV {100 * min(cv):.1f}-{100 * max(cv):.1f}% per run (calibration)")
    print(f"A/A: {args.pairs} comparisons ({aa_cells} cell pairs): {false_alarms} false alarms")
    print(f"{100 * args.slowdown:.0f}% injected slowdown ({args.inject}; measured median ratio "
          f"{np.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}): detected in {detected}/{args.pairs} "
          f"comparisons, {flagged}/{slow_cells} cells flagged REGRESSION")
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0 if false_alarms == 0 and detected == args.pairs else 1


if __name__ == "__main__":
    sys.exit(main())
