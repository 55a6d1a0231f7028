"""Does the worker process matter? The same variant loaded in several worker processes, all measured in the same
interleaved rounds (bench/rounds.py), then a two-way ANOVA of the log round medians (processes x rounds,
bench.stats.process_effects): the offset each process carries through all its rounds, beside the round-to-round
spread. A live A/B comparison pairs one process per side, so an offset of this size is a difference its rounds
cannot average away: it bounds what the gate can resolve, and says how many processes a side needs.

    python benchmarks/process_offsets.py [--processes 6] [--rounds 20] [--preset quick] [--precision fp32]
                                         [--env KEY=VALUE ...] [--out results/benchmarks/process_offsets-....json]

Run it on an otherwise idle machine; with the quick preset it takes about a minute.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from bench import rounds as interleaving
from bench import stats
from bench.environment import apply_offline_env, describe, machine_fingerprint
from bench.local import default_threads
from bench.plan import load_preset
from bench.preparation import prepare_artifacts, resolve_forms
from bench.runtimes import interpreter
from suites import get_suite


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--precision", default="fp32", help="which of the preset's variants (first backbone, runtime)")
    ap.add_argument("--threads", type=int, default=0, help="threads per worker (default: the plan's, else cores)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="set in every worker")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.processes < 2 or args.rounds < 2:
        sys.exit("process_offsets: --processes and --rounds must be >= 2")
    apply_offline_env()
    if bad := [item for item in args.env if "=" not in item or item.startswith("=")]:
        sys.exit(f"process_offsets: --env {bad[0]!r}: expected KEY=VALUE")
    extra_env = dict(item.split("=", 1) for item in args.env)
    os.environ.update(extra_env)  # the workers inherit this process's environment (bench/rounds.py)
    plan = load_preset(args.preset)
    timed = [c for c in plan.cells() if get_suite(c.suite).timed and c.device == "cpu"]
    first = timed[0]
    cells = [c for c in timed if (c.backbone, c.runtime, c.sparsity) == (first.backbone, first.runtime, first.sparsity)
             and c.precision == args.precision]
    if not cells:
        sys.exit(f"process_offsets: preset {args.preset} has no timed {args.precision} cells")
    threads = args.threads or plan.threads or default_threads()
    prepared = resolve_forms(prepare_artifacts(cells, plan, threads), cells, plan.criterion)
    artifact = prepared.artifacts[first.backbone, first.sparsity]
    variant = interleaving.Variant(cells, artifact.summary(), interpreter(first.runtime))
    settings = plan.record_settings(threads) | {"rounds": args.rounds}
    budgets = {c: get_suite(c.suite).budget(plan.settings_of(c.suite)) for c in cells}
    began = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    start = time.monotonic()
    outcomes = {}
    for v, c, out in interleaving.interleave([variant] * args.processes, budgets.__getitem__, settings,
                                             args.rounds, plan.seed, plan.timeout_s):
        if out.status != "ok":
            sys.exit(f"process_offsets: process {v}: {cells[c].label}: {out.reason}")
        outcomes[v, c] = out
    result = {"machine": machine_fingerprint(), "cpu": describe().get("cpu", {}), "began": began,
              "seconds": round(time.monotonic() - start, 1), "preset": args.preset, "precision": args.precision,
              "command": " ".join(["python", "benchmarks/process_offsets.py", *sys.argv[1:]]),
              "processes": args.processes, "rounds": args.rounds, "threads": threads, "env": extra_env, "cells": []}
    for c, cell in enumerate(cells):
        medians = [stats.round_medians(outcomes[v, c].samples, outcomes[v, c].rounds) for v in range(args.processes)]
        logs = np.log([[m[r] for r in range(args.rounds)] for m in medians])
        fx = stats.process_effects(logs)
        # one live comparison pairs a process of each side: its offset difference has sd sqrt(2) x between_sd
        row = {"cell": f"{cell.suite} b{cell.batch} s{cell.seq_len}", "between_pct": 100 * fx.between_sd,
               "within_pct": 100 * fx.within_sd, "pair_offset_sd_pct": 100 * math.sqrt(2) * fx.between_sd,
               "f": fx.f, "p": fx.p,
               "process_means_ms": [1e3 * float(np.exp(row.mean())) for row in logs],
               "log_round_medians": logs.round(6).tolist()}
        result["cells"].append(row)
        print(f"{row['cell']}: process offset sd {row['between_pct']:.2f}%, round sd {row['within_pct']:.2f}%, "
              f"F={fx.f:.2f} p={fx.p:.2g}; process means (ms) "
              + " ".join(f"{m:.2f}" for m in row["process_means_ms"]), flush=True)
    print(f"{result['seconds']} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
        old["runs"].append(result)
        args.out.write_text(json.dumps(old, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
