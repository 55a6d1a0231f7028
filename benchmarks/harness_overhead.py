"""Harness overhead: the latency suite's median vs a bare `model(**inputs)` loop, same process, same
inputs, interleaved in blocks so machine noise hits both alike. Target: ratio <= 1.02 (MiniLM, s128, b1).

    python benchmarks/harness_overhead.py [--backbone minilm-l6-h384] [--rounds 15] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from adapters.base import Numerics, Options
from adapters.torch_hf.adapter import TorchHFAdapter
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.cell import Cell
from bench.environment import apply_offline_env, describe
from bench.local import default_threads
from bench.timing import Budget, measure
from bench.tokenizer import filled_text
from suites.latency import forward_inputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbone", default="minilm-l6-h384")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--block", type=int, default=20, help="iterations per block")
    ap.add_argument("--out", help="write raw samples and the ratio as JSON")
    args = ap.parse_args()
    apply_offline_env()
    threads = default_threads()
    adapter = TorchHFAdapter()
    adapter.load(artifact_for(get_backbone(args.backbone)), Numerics(), "cpu", Options(threads=threads))
    cell = Cell(args.backbone, "torch", "fp32", "dense", "cpu", "latency", 1, args.seq_len)
    budget = Budget(0, 0.0, args.block, 0.0, 60.0)
    inputs = adapter.encode([filled_text()], max_length=args.seq_len).native
    model = adapter.model

    def bare_block() -> list[float]:
        out = []
        for _ in range(args.block):
            t0 = time.perf_counter()
            with torch.inference_mode():
                model(**inputs)
            out.append(time.perf_counter() - t0)
        return out

    forward, _ = forward_inputs(adapter, cell)  # the harness's timed call, as the latency suite builds it

    def harness_block() -> list[float]:
        return measure(forward, budget)

    measure(forward, Budget(5, 1.0, 5, 0.0, 60.0))  # warm-up both paths
    bare_block()
    harness, bare = [], []
    for r in range(args.rounds):
        for fn in ((harness_block, bare_block) if r % 2 == 0 else (bare_block, harness_block)):
            (harness if fn is harness_block else bare).extend(fn())
    h, b = np.median(harness) * 1e3, np.median(bare) * 1e3
    rng = np.random.default_rng(0)
    boot = [np.median(rng.choice(harness, len(harness))) / np.median(rng.choice(bare, len(bare)))
            for _ in range(2000)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    print(f"{args.backbone} s{args.seq_len} b1, {threads} threads, {args.rounds} interleaved rounds of "
          f"{args.block}: harness p50 {h:.3f} ms (n={len(harness)}), bare p50 {b:.3f} ms (n={len(bare)}), "
          f"ratio {h / b:.4f} (95% bootstrap CI {lo:.4f}-{hi:.4f}); target <= 1.02")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"ratio": h / b, "ci95": [lo, hi], "harness_s": harness, "bare_s": bare,
                       "environment": describe()}, f)


if __name__ == "__main__":
    main()
