"""The harness's DeepSparse and ONNX Runtime medians vs `deepsparse.benchmark` on the same ONNX file.

Why: a harness number is only worth publishing if a tool its vendor ships agrees with it. For each
runtime:precision:sparsity given, this runs one harness latency cell (runner: own subprocess, latency suite,
real text, batch 1) and `deepsparse.benchmark -s sync` with the matching engine (`-e deepsparse` or
`-e onnxruntime`) on the same cached file, the same shapes and the same cores, interleaved: in each of
--rounds rounds every variant's harness block (by default a worker process started for the round, as the CLI
starts one: see HarnessSide) and its `deepsparse.benchmark` run come back to back in a random order, so both see
the same machine. It prints the per-round ratio harness/CLI (geometric mean, 95% interval). Run it in the
deepsparse environment after the torch environment has exported the models, e.g.

    NM_DISABLE_ANALYTICS=1 ORT_DISABLE_TELEMETRY=1 BENCH_CACHE=.cache/backbone-bench \\
        .nox/bench-family-deepsparse/bin/python benchmarks/deepsparse_vs_cli.py --backbone bert-base-uncased

`deepsparse.benchmark -shapes` rewrites the file it is given in place, so it gets a private copy (the
bytes the harness runs, with the input shapes fixed) and the cache stays intact.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from bench import exports
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.environment import machine_fingerprint
from bench.errors import CellError, UsageError
from bench.local import default_threads
from bench.pruning import for_sparsity
from bench.runtimes import get_runtime
from bench.stats import paired_ratio

DEFAULT_VARIANTS = "deepsparse:fp32:dense,deepsparse:fp32:pruned90,onnxruntime:fp32:dense,onnxruntime:int8:dense"
AGREE_PCT = 3.0


def harness_worker(base, runtime: str, precision: str, sparsity: str, seq_len: int, threads: int, tmp: Path, i: int):
    """A live worker of the harness for one variant (bench/rounds_worker.py): loaded once, timed in blocks."""
    from bench.cell import Cell
    from bench.rounds import LiveWorker, Variant

    cell = Cell(base.backbone, runtime, precision, sparsity, "cpu", "latency", 1, seq_len)
    variant = Variant([cell], for_sparsity(base, sparsity).summary(), sys.executable)
    worker = LiveWorker(variant, {"threads": threads}, tmp, i)
    answer = worker.ask(None, 900)
    if "error" in answer:
        worker.close()
        raise UsageError(f"{runtime} {precision} {sparsity}: {answer['error']}")
    return worker


def add_worker_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", choices=["fresh", "live"], default="fresh",
                   help="harness side: a new worker process every round, as the vendor tool starts one (fresh, "
                        "default), or one live worker for all rounds (live)")


class HarnessSide:
    """The harness side of one variant. A vendor tool starts a process per run, so by default (`fresh`) the
    harness too starts a new worker for every round (loaded before its block, never inside it): a worker process
    carries an offset of its own (sd 3.4-6.3% for ONNX Runtime INT8 on the Zen 4 host,
    results/benchmarks/process_offsets-*.json) that one live worker would add to every round of its side alone,
    while the tool's side averages it out. `live` keeps one worker for every round, as `bench run` rounds do."""

    def __init__(self, start, fresh: bool):
        self.start, self.fresh = start, fresh
        self.worker, self.used = start(), False  # started once up front: a variant that cannot load fails first

    def block(self, seconds: float) -> dict:
        if self.fresh and self.used:
            self.close()
            try:
                self.worker = self.start()
            except UsageError as exc:  # this round's worker did not load: the round fails, the next tries again
                return {"status": "failed", "reason": str(exc)}
        first, self.used = self.fresh or not self.used, True
        return harness_block(self.worker, seconds, first)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()
            self.worker = None


def harness_block(worker, seconds: float, first: bool) -> dict:
    budget = {"warmup_iters": 3 if first else 1, "warmup_s": 2.0 if first else 0.0, "min_iters": 10,
              "min_time_s": seconds, "max_time_s": 4 * seconds + 60}
    answer = worker.ask({"op": "block", "cell": 0, "budget": budget}, 8 * seconds + 300)
    if "error" in answer:
        return {"status": "failed", "reason": answer["error"]}
    samples = sorted(answer["samples"])
    return {"status": "ok", "median_ms": 1e3 * samples[len(samples) // 2], "n": len(samples)}


def cli_median(model: Path, engine: str, seq_len: int, threads: int, seconds: float, tmp: Path) -> dict:
    import onnx

    exe = Path(sys.executable).with_name("deepsparse.benchmark")
    if not exe.is_file():
        exe = Path(shutil.which("deepsparse.benchmark") or "deepsparse.benchmark")
    copy = tmp / f"{engine}-{model.name}"
    shutil.copy2(model, copy)
    graph = onnx.load(str(copy), load_external_data=False).graph
    inits = {t.name for t in graph.initializer}
    n_inputs = sum(1 for i in graph.input if i.name not in inits)
    shapes = ",".join([f"[1,{seq_len}]"] * n_inputs)
    result = tmp / f"{engine}-{model.stem}.json"
    cmd = [str(exe), str(copy), "-b", "1", "-shapes", shapes, "-s", "sync", "-ncores", str(threads),
           "-t", str(max(1, round(seconds))), "-w", "2", "-e", engine, "-x", str(result), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 600)
    if proc.returncode != 0 or not result.is_file():
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return {"status": "failed", "reason": f"exit {proc.returncode}: {tail}", "command": cmd}
    bench = json.loads(result.read_text())["benchmark_result"]
    return {"status": "ok", "median_ms": bench["median"], "mean_ms": bench["mean"],
            "iterations": int(bench["iterations"]), "command": " ".join(cmd)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="bert-base-uncased")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"runtime:precision:sparsity,... ({DEFAULT_VARIANTS})")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="cores for both (default: physical cores)")
    p.add_argument("--time", type=float, default=5.0, help="seconds each block runs, per side (default 5)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random orders")
    p.add_argument("--out", type=Path, default=Path("bench-results") / "deepsparse-vs-cli")
    add_worker_option(p)
    args = p.parse_args(argv)
    threads = args.threads or default_threads()
    try:
        variants = [tuple(v.split(":")) for v in args.variants.split(",")]
        if any(len(v) != 3 for v in variants):
            raise UsageError(f"--variants: each must be runtime:precision:sparsity, got {args.variants!r}")
        base = artifact_for(get_backbone(args.backbone))
        rng = np.random.default_rng(args.seed)
        with tempfile.TemporaryDirectory(prefix="ds-vs-cli-") as tmp:
            models, workers, blocks = [], [], {v: [] for v in variants}
            for i, (runtime, precision, sparsity) in enumerate(variants):
                form = get_runtime(runtime).form(precision)
                if form is None:
                    raise UsageError(f"{runtime} has no ONNX form for precision {precision!r}")
                models.append(exports.ready_file(for_sparsity(base, sparsity), form))
                workers.append(HarnessSide(partial(harness_worker, base, runtime, precision, sparsity, args.seq_len,
                                                   threads, Path(tmp), i), args.workers == "fresh"))
            try:
                for r in range(args.rounds):
                    for i in rng.permutation(len(variants)):
                        runtime, precision, sparsity = variants[i]
                        engine = "deepsparse" if runtime == "deepsparse" else "onnxruntime"
                        pair = {}
                        for side in rng.permutation(["harness", "cli"]):
                            pair[side] = workers[i].block(args.time) if side == "harness" else \
                                cli_median(models[i], engine, args.seq_len, threads, args.time, Path(tmp))
                        blocks[variants[i]].append(pair)
                        print(f"round {r + 1}/{args.rounds} {runtime} {precision} {sparsity}: harness "
                              f"{pair['harness'].get('median_ms', pair['harness'].get('reason'))} ms, CLI "
                              f"{pair['cli'].get('median_ms', pair['cli'].get('reason'))} ms", flush=True)
            finally:
                for w in workers:
                    w.close()
        rows = []
        for (runtime, precision, sparsity), model in zip(variants, models, strict=True):
            ok = [(k, b) for k, b in enumerate(blocks[runtime, precision, sparsity])
                  if b["harness"]["status"] == b["cli"]["status"] == "ok"]
            paired = paired_ratio({k: b["harness"]["median_ms"] for k, b in ok},
                                  {k: b["cli"]["median_ms"] for k, b in ok})
            rows.append({"runtime": runtime, "precision": precision, "sparsity": sparsity, "model": model.name,
                         "rounds": blocks[runtime, precision, sparsity],
                         "diff_pct": None if paired is None else 100 * (paired.ratio - 1),
                         "interval_pct": None if paired is None else [100 * (paired.low - 1),
                                                                      100 * (paired.high - 1)]})
    except (UsageError, CellError) as exc:  # a bad argument, or a cached file missing or modified
        print(f"deepsparse_vs_cli: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"machine": machine_fingerprint(), "backbone": args.backbone, "seq_len": args.seq_len, "batch": 1,
               "threads": threads, "seconds": args.time, "rounds": args.rounds, "workers": args.workers,
               "command": " ".join(sys.argv), "rows": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\n{args.backbone}, batch 1, seq {args.seq_len}, {threads} cores, -s sync, {args.rounds} interleaved rounds "
          f"of {args.time:g} s a side, harness workers {args.workers}\n")
    print(f"| runtime | precision | sparsity | harness / deepsparse.benchmark | 95% interval | within {AGREE_PCT:g}% |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        d, ci = r["diff_pct"], r["interval_pct"]
        verdict = "–" if d is None else ("yes" if abs(d) <= AGREE_PCT else "NO")
        print(f"| {r['runtime']} | {r['precision']} | {r['sparsity']} | {'–' if d is None else f'{d:+.1f}%'} | "
              f"{'–' if ci is None else f'{ci[0]:+.1f}% … {ci[1]:+.1f}%'} | {verdict} |")
    print(f"\nwrote {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
