"""The harness's DeepSparse and ONNX Runtime medians vs `deepsparse.benchmark` on the same ONNX file.

Why: a harness number is only worth publishing if a tool its vendor ships agrees with it. For each
runtime:precision:sparsity given, this runs one harness latency cell (runner: own subprocess, latency suite,
real text, batch 1) and `deepsparse.benchmark -s sync` with the matching engine (`-e deepsparse` or
`-e onnxruntime`) on the same cached file, the same shapes and the same cores, back to back in one session,
and prints both medians and their difference. Run it in the deepsparse environment after the torch
environment has exported the models, e.g.

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
from pathlib import Path

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from bench import exports
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.errors import UsageError
from bench.plan import plan_from_dict
from bench.pruning import for_sparsity
from bench.records import RECORDS_FILE, read
from bench.runner import default_threads, run
from bench.runtimes import get_runtime

DEFAULT_VARIANTS = "deepsparse:fp32:dense,deepsparse:fp32:pruned90,onnxruntime:fp32:dense,onnxruntime:int8:dense"
AGREE_PCT = 5.0


def harness_median(backbone: str, runtime: str, precision: str, sparsity: str, seq_len: int, threads: int,
                   seconds: float, out: Path) -> dict:
    plan = plan_from_dict({
        "matrix": {"backbones": [backbone], "runtimes": [runtime], "precisions": [precision],
                   "sparsities": [sparsity], "suites": ["latency"]},
        "latency": {"seq_lens": [seq_len], "warmup_iters": 3, "warmup_s": 2.0, "min_iters": 10,
                    "min_time_s": seconds, "max_time_s": 4 * seconds + 60},
        "run": {"threads": threads, "timeout_s": 1800}})
    run(plan, out, force=True)
    rec = read(out / RECORDS_FILE)[-1]
    if rec.status != "ok":
        return {"status": rec.status, "reason": rec.reason}
    return {"status": "ok", "median_ms": rec.metrics["p50_ms"], "n": rec.metrics["n"], "cv": rec.metrics["cv"],
            "runtime": rec.runtime}


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


def _ms(result: dict) -> str:
    return f"{result['median_ms']:.1f}" if result["status"] == "ok" else f"{result['status']}: {result['reason']}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="bert-base-uncased")
    p.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"runtime:precision:sparsity,... ({DEFAULT_VARIANTS})")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="cores for both (default: physical cores)")
    p.add_argument("--time", type=float, default=15.0, help="seconds each measurement runs (default 15)")
    p.add_argument("--out", type=Path, default=Path("bench-results") / "deepsparse-vs-cli")
    args = p.parse_args(argv)
    threads = args.threads or default_threads()
    try:
        variants = [tuple(v.split(":")) for v in args.variants.split(",")]
        if any(len(v) != 3 for v in variants):
            raise UsageError(f"--variants: each must be runtime:precision:sparsity, got {args.variants!r}")
        base = artifact_for(get_backbone(args.backbone))
        rows = []
        with tempfile.TemporaryDirectory(prefix="ds-vs-cli-") as tmp:
            for runtime, precision, sparsity in variants:
                form = get_runtime(runtime).form(precision)
                if form is None:
                    raise UsageError(f"{runtime} has no ONNX form for precision {precision!r}")
                model = exports.ready_file(for_sparsity(base, sparsity), form)
                engine = "deepsparse" if runtime == "deepsparse" else "onnxruntime"
                print(f"{runtime} {precision} {sparsity}: {model}", flush=True)
                harness = harness_median(args.backbone, runtime, precision, sparsity, args.seq_len, threads,
                                         args.time, args.out / f"{runtime}-{precision}-{sparsity}")
                cli = cli_median(model, engine, args.seq_len, threads, args.time, Path(tmp))
                diff = (100 * (harness["median_ms"] / cli["median_ms"] - 1)
                        if harness["status"] == cli["status"] == "ok" else None)
                rows.append({"runtime": runtime, "precision": precision, "sparsity": sparsity, "model": model.name,
                             "harness": harness, "cli": cli, "diff_pct": diff})
                print(f"  harness {harness.get('median_ms', harness.get('reason'))} ms, deepsparse.benchmark "
                      f"-e {engine} {cli.get('median_ms', cli.get('reason'))} ms, diff {diff}", flush=True)
    except UsageError as exc:
        print(f"deepsparse_vs_cli: error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"backbone": args.backbone, "seq_len": args.seq_len, "batch": 1, "threads": threads,
               "seconds": args.time, "rows": rows}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(f"\n{args.backbone}, batch 1, seq {args.seq_len}, {threads} cores, -s sync, {args.time:g} s each\n")
    print("| runtime | precision | sparsity | harness p50 ms | deepsparse.benchmark median ms | diff % | within 5% |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        d = r["diff_pct"]
        verdict = "–" if d is None else ("yes" if abs(d) <= AGREE_PCT else "NO")
        print(f"| {r['runtime']} | {r['precision']} | {r['sparsity']} | {_ms(r['harness'])} | {_ms(r['cli'])} | "
              f"{'–' if d is None else f'{d:+.1f}'} | {verdict} |")
    print(f"\nwrote {args.out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
