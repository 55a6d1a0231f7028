"""MXNet GluonNLP fp32 / INT8 vs the other runtimes on the same artifact, batch 1, interleaved.

Targets: MXNet fp32 within 1.5x of the fastest fp32 runtime on this machine; MXNet INT8 faster than
MXNet fp32 on the same shape. Runs in the mxnet environment; the other runtimes run in their own environments'
Python as subprocesses that time forward() themselves (no pipe traffic inside a timing), and every engine
takes its turn each round in a rotating order, so a noisy neighbour hits all of them alike. Same artifact, same
shared tokenizer path, same real-text input as the latency suite.

    python benchmarks/mxnet_vs_torch.py --peer torch:fp32@/tmp/dev/bin/python \\
        [--peer onnxruntime:fp32@/tmp/dev/bin/python] [--backbone bert-base-uncased] [--rounds 6] [--iters 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("BENCH_CACHE", str(ROOT / ".cache" / "backbone-bench"))
os.environ.setdefault("MXNET_HOME", str(ROOT / ".cache" / "mxnet"))

from adapters.base import Numerics, Options  # noqa: E402
from bench.artifacts import artifact_for  # noqa: E402
from bench.catalogue import get_backbone  # noqa: E402
from bench.environment import apply_offline_env, cpu_info  # noqa: E402
from bench.runtimes import get_runtime  # noqa: E402
from bench.tokenizer import filled_text  # noqa: E402


def load(runtime: str, precision: str, backbone: str, threads: int):
    artifact = artifact_for(get_backbone(backbone))
    adapter = get_runtime(runtime).load_adapter_class()()
    adapter.load(artifact, Numerics(precision), "cpu", Options(threads=threads))
    return adapter


def timed(adapter, batch, n: int) -> list[tuple[float, float]]:
    """(wall, process CPU) seconds per forward: CPU time shows the work done, whatever the neighbours do
    (with several threads it also counts their spin-waiting)."""
    out = []
    for _ in range(n):
        cpu, start = time.process_time(), time.perf_counter()
        adapter.forward(batch)
        out.append((time.perf_counter() - start, time.process_time() - cpu))
    return out


def serve(args) -> None:
    """Peer mode: load one runtime, then answer each line 'N' on stdin with N timed forwards as JSON."""
    apply_offline_env()
    runtime, precision = args.serve.split(":")
    adapter = load(runtime, precision, args.backbone, args.threads)
    batch = adapter.encode([filled_text()] * args.batch, max_length=args.seq)
    timed(adapter, batch, args.warmup)
    print(json.dumps({"ready": True, "info": adapter.info()}, default=str), flush=True)
    for line in sys.stdin:
        print(json.dumps({"samples": timed(adapter, batch, int(line))}), flush=True)


@dataclass
class Engine:
    label: str
    samples: list[tuple[float, float]] = field(default_factory=list)
    adapter: object = None
    batch: object = None
    proc: subprocess.Popen | None = None
    info: dict = field(default_factory=dict)

    def run(self, n: int) -> None:
        if self.proc is None:
            self.samples += timed(self.adapter, self.batch, n)
            return
        self.proc.stdin.write(f"{n}\n")
        self.proc.stdin.flush()
        self.samples += json.loads(self.proc.stdout.readline())["samples"]


def peer(spec: str, args) -> Engine:
    what, python = spec.split("@")
    cmd = [python, __file__, "--serve", what, "--backbone", args.backbone, "--seq", str(args.seq),
           "--batch", str(args.batch), "--threads", str(args.threads), "--warmup", str(args.warmup)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    hello = proc.stdout.readline()
    if not hello:
        raise SystemExit(f"peer {spec} failed to start (see its stderr above)")
    return Engine(what, proc=proc, info=json.loads(hello)["info"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="bert-base-uncased")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--iters", type=int, default=10, help="forwards per engine per round")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--precisions", default="fp32,int8-static", help="MXNet precisions, in this process")
    p.add_argument("--runtimes", default="mxnet", help="mxnet and/or mxnet-deploy")
    p.add_argument("--peer", action="append", default=[],
                   help="RUNTIME:PRECISION@PYTHON, e.g. torch:fp32@/tmp/dev/bin/python")
    p.add_argument("--out", type=Path, help="write the summary as JSON here (e.g. results/mxnet/...json)")
    p.add_argument("--serve", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args)
        return 0
    apply_offline_env()
    load_before = os.getloadavg()
    engines = [peer(spec, args) for spec in args.peer]  # peers first: mxnet's OpenMP threads then idle
    for runtime in args.runtimes.split(","):
        for precision in args.precisions.split(","):
            adapter = load(runtime, precision, args.backbone, args.threads)
            batch = adapter.encode([filled_text()] * args.batch, max_length=args.seq)
            timed(adapter, batch, args.warmup)
            engines.append(Engine(f"{runtime}:{precision}", adapter=adapter, batch=batch, info=adapter.info()))
    for r in range(args.rounds):
        order = engines[r % len(engines):] + engines[:r % len(engines)]
        for engine in order:
            engine.run(args.iters)
    load_after = os.getloadavg()
    for e in engines:
        if e.proc:
            e.proc.stdin.close()
            e.proc.wait(timeout=60)

    rows = {}
    for e in engines:
        ms, cpu = (np.asarray(e.samples) * 1e3).T
        rows[e.label] = {"n": len(ms), "median_ms": float(np.median(ms)), "p10_ms": float(np.percentile(ms, 10)),
                         "p90_ms": float(np.percentile(ms, 90)), "min_ms": float(ms.min()),
                         "cpu_median_ms": float(np.median(cpu))}
    fp32 = {k: v["median_ms"] for k, v in rows.items() if ":fp32" in k}
    fastest = min(fp32, key=fp32.get)
    checks = {}
    for runtime in args.runtimes.split(","):
        mx32, mx8 = rows.get(f"{runtime}:fp32"), rows.get(f"{runtime}:int8-static")
        if mx32:
            ratio = mx32["median_ms"] / fp32[fastest]
            checks[f"{runtime} fp32 / fastest fp32 ({fastest})"] = {"ratio": ratio, "target": "<= 1.5",
                                                                   "met": ratio <= 1.5}
        if mx32 and mx8:
            speedup = mx32["median_ms"] / mx8["median_ms"]
            checks[f"{runtime} int8-static speed-up over its fp32"] = {"ratio": speedup, "target": "> 1",
                                                                      "met": speedup > 1}
    summary = {"backbone": args.backbone, "shape": f"b{args.batch} s{args.seq}", "threads": args.threads,
               "rounds": args.rounds, "iters_per_round": args.iters, "cpu": cpu_info()["model"],
               "loadavg_before": load_before, "loadavg_after": load_after, "results": rows, "checks": checks,
               "engines": {e.label: e.info for e in engines}}
    print(f"{args.backbone} b{args.batch} s{args.seq}, {args.threads} threads, {args.rounds} rounds x {args.iters}, "
          f"load average before {load_before[0]:.2f} / after {load_after[0]:.2f}")
    print(f"{'engine':30} {'median':>9} {'p10':>9} {'p90':>9} {'min':>9} {'cpu/fwd':>9}  (ms)")
    for label, row in rows.items():
        print(f"{label:30} {row['median_ms']:9.1f} {row['p10_ms']:9.1f} {row['p90_ms']:9.1f} {row['min_ms']:9.1f} "
              f"{row['cpu_median_ms']:9.1f}")
    for name, check in checks.items():
        print(f"{name}: {check['ratio']:.2f} (target {check['target']}: {'met' if check['met'] else 'NOT met'})")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
