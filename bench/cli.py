"""`bench` command line: list, run, report. Bad input exits 2 with one line naming the valid choices."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bench import __version__
from bench.errors import UsageError

DEFAULT_OUT = Path("bench-results")


def _csv(kind):
    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        try:
            return tuple(kind(t) for t in items)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc
    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too; keep it to one line)
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bench", description=__doc__)
    p.add_argument("--version", action="version", version=f"backbone-bench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ls = sub.add_parser("list", help="backbones, runtimes and presets")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "backbones", "runtimes", "presets"])

    run = sub.add_parser("run", help="run a plan: every cell in its own subprocess, records to --out")
    run.add_argument("--preset", default="default", help="preset name or .toml file (default: default)")
    run.add_argument("--backbones", type=_csv(str), help="comma list; catalogue names or local HF dirs")
    run.add_argument("--runtimes", type=_csv(str), help="comma list, e.g. torch")
    run.add_argument("--precisions", type=_csv(str), help="comma list of fp32,fp16,bf16,int8")
    run.add_argument("--sparsities", type=_csv(str), help="comma list, e.g. dense")
    run.add_argument("--devices", type=_csv(str), help="comma list of cpu,cuda")
    run.add_argument("--suites", type=_csv(str), help="comma list of params,latency,throughput")
    run.add_argument("--seq-lens", type=_csv(_positive_int), help="latency sequence lengths, e.g. 32,128,384")
    run.add_argument("--batches", type=_csv(_positive_int), help="throughput batch sizes, e.g. 1,8,32")
    run.add_argument("--threads", type=_positive_int, help="threads per cell (default: physical cores)")
    run.add_argument("--timeout", type=float, help="seconds per cell before it is killed and marked failed")
    run.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"result directory (default: {DEFAULT_OUT})")
    run.add_argument("--force", action="store_true", help="re-run cells already recorded in --out")
    run.add_argument("--no-report", action="store_true", help="do not write report.md/report.csv in --out")
    run.add_argument("--dry-run", action="store_true", help="print the cells and exit")

    rep = sub.add_parser("report", help="tables from one or more result directories or records files")
    rep.add_argument("inputs", nargs="+", type=Path)
    rep.add_argument("--out", type=Path, required=True, help="directory for report.md and report.csv")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return {"list": cmd_list, "run": cmd_run, "report": cmd_report}[args.command](args)
    except UsageError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; finished cells are saved, re-run to resume", file=sys.stderr)
        return 130


def cmd_list(args) -> int:
    from bench.catalogue import get_backbone, list_backbone_names
    from bench.plan import list_presets
    from bench.runtimes import RUNTIMES

    if args.what in ("all", "backbones"):
        print("backbones (name, weights, published params):")
        for name in list_backbone_names():
            b = get_backbone(name)
            weights = "pretrained" if b.pretrained else "random (pretrained: false)"
            print(f"  {name:30s} {weights:28s} {b.published_params_m or '?'}M  {b.hub_id}")
    if args.what in ("all", "runtimes"):
        print("runtimes (device: precisions):")
        for r in RUNTIMES.values():
            missing = r.missing_modules()
            state = "installed" if not missing else f"missing {', '.join(missing)} (extra '{r.extra}')"
            caps = "; ".join(f"{d}: {','.join(p)}" for d, p in r.precisions.items())
            print(f"  {r.name:12s} {caps:40s} {state}")
    if args.what in ("all", "presets"):
        print("presets: " + ", ".join(list_presets()))
    return 0


def cmd_run(args) -> int:
    from bench.environment import has_cuda_gpu
    from bench.plan import load_preset, with_overrides
    from bench.runtimes import get_runtime

    plan = load_preset(args.preset)
    plan = with_overrides(plan, backbones=args.backbones, runtimes=args.runtimes, precisions=args.precisions,
                          sparsities=args.sparsities, devices=args.devices, suites=args.suites)
    if args.seq_lens:
        plan = replace(plan, latency=replace(plan.latency, seq_lens=args.seq_lens))
    if args.batches:
        plan = replace(plan, throughput=replace(plan.throughput, batches=args.batches))
    if args.threads:
        plan = replace(plan, threads=args.threads)
    if args.timeout is not None:
        if not args.timeout > 0:
            raise UsageError("--timeout must be > 0 seconds")
        plan = replace(plan, timeout_s=args.timeout)
    if args.devices and "cuda" in args.devices and not has_cuda_gpu():
        raise UsageError("--devices cuda: no CUDA GPU on this machine (nvidia-smi finds none); use cpu")
    for name in plan.matrix.runtimes:
        get_runtime(name).require()
    cells = plan.cells()
    if args.dry_run:
        for c in cells:
            print(c.label)
        print(f"{len(cells)} cells")
        return 0
    return _execute(plan, cells, args)


def _execute(plan, cells, args) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench import records, report, runner

    console = Console(soft_wrap=True)
    console.print(f"[bold]bench run[/]: preset {plan.name}, {len(cells)} cells → {args.out}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("preparing (machine info, GEMM peak, artifacts)", total=len(cells))

        def on_event(kind, cell, record):
            if kind == "start":
                progress.update(task, description=cell.label)
                return
            progress.advance(task)
            if kind == "end":
                console.print(_result_line(cell, record))

        summary = runner.run(plan, args.out, force=args.force, on_event=on_event)
    console.print(f"done: {summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped, "
                  f"{summary.resumed} already recorded (use --force to re-run)")
    if not args.no_report:
        paths = report.write(records.read(args.out / records.RECORDS_FILE), args.out)
        console.print(f"report: {paths['md']} and {paths['csv']}")
    return 0


def _result_line(cell, record) -> str:
    m = record.metrics
    if record.status != "ok":
        mark = "[yellow]skipped[/]" if record.status == "skipped" else "[red]failed[/]"
        return f"  {mark} {cell.label}: {record.reason}"
    if cell.suite == "params":
        detail = f"{m['total'] / 1e6:.2f}M params, {m['bytes'] / 2**20:.1f} MiB"
    elif cell.suite == "latency":
        detail = f"p50 {m['p50_ms']:.2f} ms (cv {100 * m['cv']:.1f}%, n={m['n']})"
    else:
        detail = f"{m['sequences_per_s']:.1f} seq/s, {m['tokens_per_s']:.0f} tok/s"
    return f"  [green]ok[/] {cell.label}: {detail}"


def cmd_report(args) -> int:
    from bench import records, report

    recs = records.read_many(args.inputs)
    paths = report.write(recs, args.out)
    print(paths["md"].read_text())
    print(f"wrote {paths['md']} and {paths['csv']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
