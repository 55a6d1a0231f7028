"""The harness's OpenVINO medians vs OpenVINO's own `benchmark_app` on the same file, shapes, threads and precision.

Why: OpenVINO ships the tool its users trust; a harness OpenVINO row is only worth publishing if benchmark_app
agrees with it. For each precision:sparsity given, one harness latency variant (a worker from
bench/rounds_worker.py, by default started anew each round as benchmark_app starts a process: see
deepsparse_vs_cli.HarnessSide) and `benchmark_app -api sync -hint none -nstreams 1 -nthreads T -pin YES
-shape [B,S] -infer_precision P` on the cached file the harness runs are measured
interleaved: in each round every variant's harness block and its benchmark_app run come back to back in a random
order (`-hint latency` resolves to the same settings, but benchmark_app takes -nstreams/-nthreads/-pin only with
`-hint none`, so those are given instead). benchmark_app fills inputs with its own random data; a dense BERT does
the same work for any ids. Prints the per-round ratio harness/benchmark_app (geometric mean, 95% interval); writes
summary.json. Run it in the torch environment (which has openvino) after the exports exist (any `bench run` with
openvino cells made them), e.g.

    BENCH_CACHE=.cache/backbone-bench .nox/bench-family-torch/bin/python benchmarks/openvino_vs_benchmark_app.py \\
        --backbone bert-base-uncased --variants fp32:dense,bf16:dense,int8-static:dense --rounds 5
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

from bench import exports
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.environment import apply_offline_env, machine_fingerprint
from bench.errors import UsageError
from bench.local import default_threads
from bench.pruning import for_sparsity
from bench.runtimes import get_runtime
from bench.stats import paired_ratio

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deepsparse_vs_cli import HarnessSide, add_worker_option, harness_worker  # the same worker protocol

DEFAULT_VARIANTS = "fp32:dense,bf16:dense,int8-static:dense"
AGREE_PCT = 3.0
HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8-static": "f32"}  # as adapters/openvino_runtime.py
MEDIAN = re.compile(r"Median:\s*([0-9.]+)\s*ms")


class ToolFailed(Exception):
    """benchmark_app itself did not run: nothing to compare."""


def app_median(model: Path, precision: str, batch: int, seq_len: int, threads: int, seconds: float,
               sparse_rate: float | None, tmp: Path) -> dict:
    exe = Path(sys.executable).with_name("benchmark_app")
    if not exe.is_file():
        exe = Path(shutil.which("benchmark_app") or "benchmark_app")
    # the harness's compiled model: LATENCY hint, i.e. 1 stream, the run's threads, pinned; benchmark_app only takes
    # -nstreams/-nthreads/-pin with -hint none, so they are spelled out (what the hint resolves to, read back from
    # the harness's compiled model: NUM_STREAMS 1, ENABLE_CPU_PINNING true)
    cmd = [str(exe), "-m", str(model), "-d", "CPU", "-api", "sync", "-hint", "none", "-nstreams", "1",
           "-nthreads", str(threads), "-pin", "YES", "-shape", f"[{batch},{seq_len}]",
           "-infer_precision", HINT[precision], "-t", str(max(1, round(seconds)))]
    if sparse_rate is not None:  # as the harness asks for pruned INT8 (a config file: no flag for it)
        config = tmp / "sparse.json"
        config.write_text(json.dumps({"CPU": {"CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE": str(sparse_rate)}}))
        cmd += ["-load_config", str(config)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 600)
    found = MEDIAN.findall(proc.stdout)
    if proc.returncode != 0 or not found:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return {"status": "failed", "reason": f"exit {proc.returncode}: {tail}", "command": " ".join(cmd)}
    return {"status": "ok", "median_ms": float(found[-1]), "command": " ".join(cmd)}


def main(argv: list[str] | None = None) -> int:
    apply_offline_env()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="bert-base-uncased")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"precision:sparsity,... ({DEFAULT_VARIANTS})")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="threads for both (default: physical cores)")
    p.add_argument("--time", type=float, default=5.0, help="seconds each block runs, per side (default 5)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("bench-results") / "openvino-vs-benchmark-app")
    add_worker_option(p)
    args = p.parse_args(argv)
    threads = args.threads or default_threads()
    from adapters.openvino_runtime import SPARSE_RATE

    try:
        variants = [tuple(v.split(":")) for v in args.variants.split(",")]
        if any(len(v) != 2 for v in variants):
            raise UsageError(f"--variants: each must be precision:sparsity, got {args.variants!r}")
        base = artifact_for(get_backbone(args.backbone))
        rng = np.random.default_rng(args.seed)
        with tempfile.TemporaryDirectory(prefix="ov-vs-app-") as tmp:
            models, workers, blocks = [], [], {v: [] for v in variants}
            for i, (precision, sparsity) in enumerate(variants):
                form = get_runtime("openvino").form(precision)
                if form is None:
                    raise UsageError(f"openvino has no model form for precision {precision!r}")
                models.append(exports.ready_file(for_sparsity(base, sparsity), form))
                workers.append(HarnessSide(partial(harness_worker, base, "openvino", precision, sparsity,
                                                   args.seq_len, threads, Path(tmp), i), args.workers == "fresh"))
            try:
                for r in range(args.rounds):
                    for i in rng.permutation(len(variants)):
                        precision, sparsity = variants[i]
                        rate = SPARSE_RATE if precision == "int8-static" and sparsity != "dense" else None
                        pair = {}
                        for side in rng.permutation(["harness", "app"]):
                            pair[side] = workers[i].block(args.time) if side == "harness" else \
                                app_median(models[i], precision, 1, args.seq_len, threads, args.time, rate,
                                           Path(tmp))
                        if pair["app"]["status"] != "ok" and r == 0:  # a tool that does not run: say so once
                            raise ToolFailed(f"benchmark_app failed for {precision} {sparsity}: {pair['app']['reason']}"
                                             f" (command: {pair['app']['command']})")
                        blocks[variants[i]].append(pair)
                        print(f"round {r + 1}/{args.rounds} openvino {precision} {sparsity}: harness "
                              f"{pair['harness'].get('median_ms', pair['harness'].get('reason'))} ms, benchmark_app "
                              f"{pair['app'].get('median_ms', pair['app'].get('reason'))} ms", flush=True)
            finally:
                for w in workers:
                    w.close()
        rows = []
        for (precision, sparsity), model in zip(variants, models, strict=True):
            ok = [(k, b) for k, b in enumerate(blocks[precision, sparsity])
                  if b["harness"]["status"] == b["app"]["status"] == "ok"]
            paired = paired_ratio({k: b["harness"]["median_ms"] for k, b in ok},
                                  {k: b["app"]["median_ms"] for k, b in ok})
            rows.append({"precision": precision, "sparsity": sparsity, "model": model.name,
                         "rounds": blocks[precision, sparsity],
                         "diff_pct": None if paired is None else 100 * (paired.ratio - 1),
                         "interval_pct": None if paired is None else [100 * (paired.low - 1),
                                                                      100 * (paired.high - 1)]})
    except UsageError as exc:
        print(f"openvino_vs_benchmark_app: error: {exc}", file=sys.stderr)
        return 2
    except ToolFailed as exc:
        print(f"openvino_vs_benchmark_app: {exc}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    import openvino as ov

    summary = {"backbone": args.backbone, "seq_len": args.seq_len, "batch": 1, "threads": threads,
               "seconds": args.time, "rounds": args.rounds, "workers": args.workers, "machine": machine_fingerprint(),
               "openvino": ov.get_version(), "rows": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\n{args.backbone}, batch 1, seq {args.seq_len}, {threads} threads, sync, {args.rounds} interleaved rounds "
          f"of {args.time:g} s a side\n")
    print(f"| precision | sparsity | harness / benchmark_app | 95% interval | within {AGREE_PCT:g}% |")
    print("|---|---|---|---|---|")
    for r in rows:
        d, ci = r["diff_pct"], r["interval_pct"]
        verdict = "–" if d is None else ("yes" if abs(d) <= AGREE_PCT else "NO")
        print(f"| {r['precision']} | {r['sparsity']} | {'–' if d is None else f'{d:+.1f}%'} | "
              f"{'–' if ci is None else f'{ci[0]:+.1f}% … {ci[1]:+.1f}%'} | {verdict} |")
    print(f"\nwrote {args.out / 'summary.json'}")
    return 0 if all(r["diff_pct"] is not None for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
