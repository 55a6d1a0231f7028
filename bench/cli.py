"""`bench` command line: list, prepare, run, report, compare, baseline, export, data.

Exit codes: 0 done (every cell ok or skipped); 1 done, but some cell failed (`run`, `report --check`) or a
regression was found (`compare`); 2 bad input (one line naming the valid choices, nothing written)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from bench import __version__
from bench.errors import UsageError

RUNS = Path("runs")  # a user's own runs: runs/<machine>/<preset>, apart from the published sets under results/
DEFAULT_BASELINES = Path("results") / "baselines"  # relative to the working directory (nox runs in the repo)


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

    run = sub.add_parser("run", help="run a plan in worker processes (one per variant), records to --out")
    run.add_argument("--preset", default="default", help="preset name or .toml file (default: default)")
    run.add_argument("--backbones", type=_csv(str), help="comma list; catalogue names or local HF dirs")
    run.add_argument("--runtimes", type=_csv(str),
                     help="comma list of torch,onnxruntime,deepsparse,mxnet,mxnet-deploy (default: the preset's "
                     "runtimes that are installed in this environment)")
    run.add_argument("--precisions", type=_csv(str), help="comma list of fp32,fp16,bf16,int8,int8-static")
    run.add_argument("--sparsities", type=_csv(str), help="comma list of dense,pruned80,pruned90")
    run.add_argument("--devices", type=_csv(str), help="comma list of cpu,cuda")
    run.add_argument("--suites", type=_csv(str), help="comma list of params,latency,throughput,parity,glue")
    run.add_argument("--tasks", type=_csv(str), help="GLUE tasks of the glue suite, e.g. mrpc,rte (bench list)")
    run.add_argument("--seq-lens", type=_csv(_positive_int), help="latency sequence lengths, e.g. 32,128,384")
    run.add_argument("--batches", type=_csv(_positive_int), help="throughput batch sizes, e.g. 1,8,32")
    run.add_argument("--threads", type=_positive_int, help="threads per cell (default: physical cores)")
    run.add_argument("--timeout", type=float, help="seconds per cell before it is killed and marked failed")
    run.add_argument("--out", type=Path, help=f"result directory (default: {RUNS}/<machine>/<preset>: this machine's "
                     "own, never mixed with another machine's records)")
    run.add_argument("--isolate", choices=["variant", "cell"],
                     help="worker process per variant (default: loaded once for all its suites) or per cell")
    run.add_argument("--no-train", action="store_true",
                     help="never fine-tune: glue cells whose checkpoint is not cached are skipped with the reason")
    run.add_argument("--force", action="store_true", help="re-run cells already recorded in --out")
    run.add_argument("--fresh-eval", action="store_true",
                     help="evaluate glue cells again instead of reusing a cached evaluation of the same computation")
    run.add_argument("--no-report", action="store_true", help="do not write report.md/report.csv in --out")
    run.add_argument("--dry-run", action="store_true", help="print the cells and exit")

    prep = sub.add_parser("prepare", help="build the artifacts and derived files (ONNX, INT8, torch reference) a "
                          "preset needs, for every runtime of it (run where torch is installed)")
    prep.add_argument("--preset", default="default", help="preset name or .toml file (default: default)")
    where = sub.add_parser("where", help="print the default result directory of a preset on this machine")
    where.add_argument("--preset", default="default")

    rep = sub.add_parser("report", help="tables from one or more result directories or records files")
    rep.add_argument("inputs", nargs="+", type=Path)
    rep.add_argument("--out", type=Path, required=True,
                     help="directory for report.md/.csv, leaderboard.md/.csv/.html and pareto.png/.svg")
    rep.add_argument("--check", action="store_true",
                     help="exit 1 if any cell's latest record failed (after writing the report)")
    rep.add_argument("--budget", type=_percent, default=1.0,
                     help="accuracy budget of the recommendation: max relative drop in %% (default 1)")

    cmp = sub.add_parser("compare", help="regression gate: NEW vs BASE; exit 0 ok, 1 regression, 2 bad input",
                         description="Match cells of NEW to BASE (same cell and machine), compare medians and "
                         "test the raw samples (Mann-Whitney U); a regression is beyond its threshold AND "
                         "significant AND, when BASE holds several runs, beyond noise_factor x their run-to-run "
                         "spread. Exit 0: no regression, 1: regression, 2: usage or data error.")
    cmp.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                     help="BASE then NEW: result directories or records files; a directory's run-*/ "
                     "subdirectories are separate runs (with --baseline: NEW only, one or more runs)")
    cmp.add_argument("--baseline", action="store_true",
                     help="BASE is the stored baseline of the machine(s) NEW ran on (see `bench baseline`)")
    cmp.add_argument("--baselines", type=Path, default=DEFAULT_BASELINES,
                     help=f"baseline store (default: {DEFAULT_BASELINES})")
    cmp.add_argument("--thresholds", type=Path,
                     help="TOML: [default] and [[override]] tables (see bench/gate/rules.py)")
    cmp.add_argument("--latency-threshold", type=_percent, metavar="PCT", help="%% slower that counts (default 5)")
    cmp.add_argument("--throughput-threshold", type=_percent, metavar="PCT",
                     help="%% lower throughput that counts (default 5)")
    cmp.add_argument("--accuracy-threshold", type=_percent, metavar="POINTS",
                     help="accuracy points lower that count (default 1)")
    cmp.add_argument("--alpha", type=float, help="significance level of the Mann-Whitney U test (default 0.01)")
    cmp.add_argument("--allow-cross-machine", action="store_true",
                     help="compare results from different machines (timings are then not comparable)")
    cmp.add_argument("--all", action="store_true", help="print every row, also those within threshold")
    cmp.add_argument("--markdown", type=Path, help="also write the full diff table to this file")

    base = sub.add_parser("baseline", help="store results as this machine's baseline for `bench compare --baseline`")
    base.add_argument("inputs", nargs="+", type=Path,
                      help="runs: result directories or records files; a directory's run-*/ subdirectories are "
                      "separate runs")
    base.add_argument("--baselines", type=Path, default=DEFAULT_BASELINES,
                      help=f"baseline store (default: {DEFAULT_BASELINES}); <machine>/run-NN/records.jsonl")
    base.add_argument("--add", action="store_true",
                      help="append these runs to the stored ones instead of replacing them (a rolling baseline)")
    base.add_argument("--keep", type=int, default=5, help="runs kept per machine, newest first (default 5)")

    from bench.glue.cli import add_data_parser

    add_data_parser(sub)

    exp = sub.add_parser("export", help="records in another tool's format (pytest-benchmark JSON)")
    exp.add_argument("inputs", nargs="+", type=Path)
    exp.add_argument("--format", choices=["pytest-benchmark"], default="pytest-benchmark")
    exp.add_argument("--out", type=Path, required=True, help="JSON file to write")
    exp.add_argument("--machine", help="export only this machine's records (required when inputs mix machines)")
    return p


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress lines reach nox/CI logs as they happen
    try:
        args = build_parser().parse_args(argv)
        return {"list": cmd_list, "prepare": cmd_prepare, "where": cmd_where, "run": cmd_run, "report": cmd_report,
                "compare": cmd_compare, "baseline": cmd_baseline, "export": cmd_export,
                "data": cmd_data}[args.command](args)
    except UsageError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; finished cells are saved, re-run to resume", file=sys.stderr)
        return 130


def cmd_data(args) -> int:
    from bench.glue.cli import cmd_data as run_data

    return run_data(args)


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


def default_out(preset: str) -> Path:
    from bench.environment import machine_fingerprint

    return RUNS / machine_fingerprint() / Path(preset).stem


def cmd_where(args) -> int:
    from bench.plan import load_preset

    load_preset(args.preset)
    print(default_out(args.preset))
    return 0


def cmd_prepare(args) -> int:
    from bench.environment import apply_offline_env
    from bench.plan import load_preset
    from bench.preparation import prebuild

    apply_offline_env()
    plan = load_preset(args.preset)
    ready, failed = prebuild(plan)
    note = f", {failed} failed: the cells that need them fail with the reason" if failed else ""
    print(f"bench prepare: preset {plan.name}: {ready} ready{note}")
    return 0


def cmd_run(args) -> int:
    from bench.environment import has_cuda_gpu
    from bench.plan import load_preset, validate, with_overrides
    from bench.runtimes import get_runtime

    plan = load_preset(args.preset)
    runtimes = args.runtimes
    if runtimes is None:  # a preset spans environments: run the part this one can run
        installed = tuple(r for r in plan.matrix.runtimes if not get_runtime(r).missing_modules())
        absent = [r for r in plan.matrix.runtimes if r not in installed]
        if not installed:
            get_runtime(absent[0]).require()  # one line naming the extra to install
        if absent:
            runtimes = installed
    plan = with_overrides(plan, backbones=args.backbones, runtimes=runtimes, precisions=args.precisions,
                          sparsities=args.sparsities, devices=args.devices, suites=args.suites, tasks=args.tasks)
    if args.seq_lens:
        plan = plan.with_settings("latency", seq_lens=args.seq_lens)
    if args.batches:
        plan = plan.with_settings("throughput", batches=args.batches)
    if args.threads:
        plan = replace(plan, threads=args.threads)
    if args.isolate:
        plan = replace(plan, isolate=args.isolate)
    if args.no_train:
        plan = plan.with_settings("glue", train=False)
    if args.fresh_eval:
        plan = plan.with_settings("glue", reuse=False)
    if args.timeout is not None:
        if not args.timeout > 0:
            raise UsageError("--timeout must be > 0 seconds")
        plan = replace(plan, timeout_s=args.timeout)
    validate(plan, strict_axes=())  # shapes and timeouts changed above; axes were checked by with_overrides
    if args.devices and "cuda" in args.devices and not has_cuda_gpu():
        raise UsageError("--devices cuda: no CUDA GPU on this machine (nvidia-smi finds none); use cpu")
    for name in plan.matrix.runtimes:
        get_runtime(name).require()
    cells = plan.cells()
    if args.runtimes is None and runtimes:  # only once the plan is known to be valid: errors stay one line
        print(f"bench: not installed here, skipping runtimes {', '.join(absent)} (their nox environments run "
              "them; pass --runtimes to insist)", file=sys.stderr)
    if args.dry_run:
        for c in cells:
            print(c.label)
        print(f"{len(cells)} cells")
        return 0
    from bench.output import writable_dir

    args.out = writable_dir(args.out or default_out(args.preset))
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
    return 1 if summary.failed else 0


def _result_line(cell, record) -> str:
    """One rich-markup line; record text is escaped (a reason naming `[glue] train` is not a style tag)."""
    from rich.markup import escape

    from suites import get_suite

    label = escape(cell.label)
    if record.status != "ok":
        mark = "[yellow]skipped[/]" if record.status == "skipped" else "[red]failed[/]"
        return f"  {mark} {label}: {escape(str(record.reason))}"
    detail = get_suite(cell.suite).summary(cell, record.metrics, record.runtime or {})
    return f"  [green]ok[/] {label}: {escape(detail)}"


def cmd_report(args) -> int:
    from bench import records, report
    from bench.output import writable_dir

    recs = records.read_many(args.inputs)
    writable_dir(args.out)
    df = report.frame(recs)
    paths = report.write(recs, args.out, df=df)
    board = report.write_leaderboard(recs, args.out, budget_pct=args.budget, df=df)
    print(paths["md"].read_text())
    print(f"wrote {paths['md']} and {paths['csv']}")
    print(f"wrote {board.md}, {board.csv}, {board.html}, {board.png} and {board.svg}")
    failed = int((df.status == "failed").sum()) if not df.empty else 0
    if args.check and failed:
        print(f"bench report: {failed} cell{'s' if failed > 1 else ''} failed (listed first in the report)",
              file=sys.stderr)
        return 1
    return 0


def cmd_compare(args) -> int:
    from bench import gate, records
    from bench.gate.render import markdown

    if not args.baseline and len(args.paths) != 2:
        raise UsageError(f"compare takes BASE and NEW (got {len(args.paths)} paths); or --baseline NEW")
    if args.alpha is not None and not 0 < args.alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {args.alpha}")
    rules = gate.load_rules(args.thresholds).with_defaults(
        latency_pct=args.latency_threshold, throughput_pct=args.throughput_threshold,
        accuracy_points=args.accuracy_threshold, alpha=args.alpha)
    new = records.read_runs(args.paths if args.baseline else args.paths[1:])
    if args.baseline:
        base = gate.load_baseline(args.baselines, gate.machines_of(new))
    else:
        base = records.read_runs(args.paths[:1])
    result = gate.compare(base, new, rules, allow_cross_machine=args.allow_cross_machine)
    show_all = args.all or len(result.changes) <= gate.SHOW_ALL_UP_TO
    print(markdown(result, show_all=show_all), end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result, show_all=True), encoding="utf-8")
    return result.exit_code


def cmd_baseline(args) -> int:
    from bench import gate, records

    stored = gate.store_baseline(records.read_runs(args.inputs), args.baselines, add=args.add, keep=args.keep)
    for machine, (path, runs, cells, not_ok) in stored.items():
        note = f" ({not_ok} not ok in the newest run: they gate nothing until they pass)" if not_ok else ""
        print(f"baseline for machine {machine}: {runs} run{'s' if runs > 1 else ''} of {cells} cells{note} → {path}")
    return 0


def cmd_export(args) -> int:
    from bench import pytest_benchmark as interop
    from bench import records

    recs = records.read_many(args.inputs)
    if args.machine:
        recs = [r for r in recs if (r.environment or {}).get("machine") == args.machine]
        if not recs:
            raise UsageError(f"no records from machine {args.machine!r} in the inputs")
    n = interop.write_pytest_benchmark(recs, args.out)
    print(f"wrote {n} benchmarks to {args.out}; view with: pytest-benchmark compare {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
