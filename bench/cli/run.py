"""`bench list`, `bench where`, `bench prepare` and `bench run`: from a preset to records."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from bench.cli.args import RUNS, _csv, _positive_int, default_out
from bench.errors import UsageError


def add_parsers(sub) -> None:
    ls = sub.add_parser("list", help="backbones, runtimes and presets")
    ls.add_argument("what", nargs="?", default="all", choices=["all", "backbones", "runtimes", "presets"])

    run = sub.add_parser("run", help="run a plan in worker processes (one per variant), records to --out")
    run.add_argument("--preset", default="default", help="preset name or .toml file (default: default)")
    run.add_argument("--backbones", type=_csv(str), help="comma list; catalogue names or local HF dirs")
    run.add_argument("--runtimes", type=_csv(str),
                     help="comma list of runtime names, see `bench list` (default: the preset's "
                     "runtimes that are installed in this environment)")
    run.add_argument("--precisions", type=_csv(str), help="comma list of fp32,fp16,bf16,int8,int8-static")
    run.add_argument("--sparsities", type=_csv(str), help="comma list of dense,pruned80,pruned90")
    run.add_argument("--devices", type=_csv(str), help="comma list of cpu,cuda")
    run.add_argument("--suites", type=_csv(str), help="comma list of params,latency,throughput,parity,glue")
    run.add_argument("--tasks", type=_csv(str), help="GLUE tasks of the glue suite, e.g. mrpc,rte (bench list)")
    run.add_argument("--seq-lens", type=_csv(_positive_int), help="latency sequence lengths, e.g. 32,128,384")
    run.add_argument("--batches", type=_csv(_positive_int), help="throughput batch sizes, e.g. 1,8,32")
    run.add_argument("--threads", type=_positive_int, help="threads per cell (default: physical cores)")
    run.add_argument("--rounds", type=int, metavar="N",
                     help="measure the timed cells of all variants interleaved in N rounds, each round one block "
                     "per cell in a random order (0: each cell alone; default: the preset's [run] rounds)")
    run.add_argument("--python", action="append", metavar="EXTRA=PATH",
                     help="interpreter of another runtime environment, e.g. deepsparse=.nox/bench-family-deepsparse/"
                     "bin/python: its runtimes' cells run there, driven from here (repeatable; also $BENCH_PYTHONS)")
    run.add_argument("--executor", metavar="NAME[=ADDRESS]",
                     help="where cells run: local (default: this machine, one after the other) or ray[=HOST:PORT] "
                     "(the nodes of a Ray cluster: one timed variant per host at a time, training spread over free "
                     "nodes; no address: $RAY_ADDRESS or a local instance); see README 'Ray cluster'")
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

    for parser, handler in ((ls, cmd_list), (run, cmd_run), (prep, cmd_prepare), (where, cmd_where)):
        parser.set_defaults(handler=handler)


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
        print("runtimes (device: precisions; † unmaintained upstream):")
        for r in RUNTIMES.values():
            missing = r.missing_modules()
            state = "installed" if not missing else f"missing {', '.join(missing)} (extra '{r.extra}')"
            caps = "; ".join(f"{d}: {','.join(p)}" for d, p in r.precisions.items())
            name = f"{r.name} †" if r.unmaintained else r.name
            print(f"  {name:15s} {caps:40s} {state}")
            if r.unmaintained:
                print(f"  {'':15s} † unmaintained: {r.unmaintained}")
    if args.what in ("all", "presets"):
        print("presets: " + ", ".join(list_presets()))
    return 0


def cmd_where(args) -> int:
    from bench.plan import load_preset

    load_preset(args.preset)
    print(default_out(args.preset))
    return 0


def cmd_prepare(args) -> int:
    from bench.plan import load_preset
    from bench.preparation import prebuild

    plan = load_preset(args.preset)
    ready, failed = prebuild(plan)
    note = f", {failed} failed: the cells that need them fail with the reason" if failed else ""
    print(f"bench prepare: preset {plan.name}: {ready} ready{note}")
    return 0


def _pythons(items: list[str]) -> dict[str, str]:
    """--python EXTRA=PATH items: each path must be an interpreter that exists; made absolute (not resolved: a
    virtual environment's python is a symlink that must stay one), so a cluster's workers find it too."""
    import os

    from bench.runtimes import parse_pythons

    out = parse_pythons(items, "--python")
    for extra, path in out.items():
        if not Path(path).is_file():
            raise UsageError(f"--python {extra}={path}: {path} is not a file")
    return {extra: os.path.abspath(path) for extra, path in out.items()}


def cmd_run(args) -> int:
    from bench.environment import has_cuda_gpu
    from bench.executor import get_executor, parse_executor
    from bench.plan import load_preset, validate, with_overrides
    from bench.runtimes import get_runtime, interpreter, pythons_from_env

    plan = load_preset(args.preset)
    args.pythons = pythons_from_env() | _pythons(args.python or [])
    cluster = parse_executor(args.executor)[0] != "local"  # its nodes, not this process, say what they can run
    runtimes, absent = args.runtimes, []
    if runtimes is None and not cluster:  # a preset spans environments: run what this one (or a given python) can
        installed = tuple(r for r in plan.matrix.runtimes if interpreter(r, args.pythons))
        absent = [r for r in plan.matrix.runtimes if r not in installed]
        if not installed:
            get_runtime(absent[0]).require()  # one line naming the extra to install
        if absent:  # narrowed, not asked for: a runtime with no cell for a given axis value is no error
            plan = replace(plan, matrix=replace(plan.matrix, runtimes=installed))
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
    if args.rounds is not None:
        if args.rounds < 0:
            raise UsageError(f"--rounds must be >= 0 (0: no interleaving), got {args.rounds}")
        plan = replace(plan, rounds=args.rounds)
    if args.timeout is not None:
        if not args.timeout > 0:
            raise UsageError("--timeout must be > 0 seconds")
        plan = replace(plan, timeout_s=args.timeout)
    validate(plan, strict_axes=())  # shapes and timeouts changed above; axes were checked by with_overrides
    if args.devices and "cuda" in args.devices and not has_cuda_gpu():
        raise UsageError("--devices cuda: no CUDA GPU on this machine (nvidia-smi finds none); use cpu")
    for name in plan.matrix.runtimes:
        if not interpreter(name, args.pythons) and not cluster:
            get_runtime(name).require()
    cells = plan.cells()
    if absent:  # only once the plan is known to be valid: errors stay one line
        print(f"bench: not installed here, skipping runtimes {', '.join(absent)} (their nox environments run "
              "them; pass --runtimes to insist)", file=sys.stderr)
    if args.dry_run:
        for c in cells:
            print(c.label)
        print(f"{len(cells)} cells")
        return 0
    from bench.files import writable_dir

    args.executor = get_executor(args.executor)  # connected before anything is written
    args.out = writable_dir(args.out or default_out(args.preset))
    return _execute(plan, cells, args)


def _execute(plan, cells, args) -> int:
    from rich.console import Console
    from rich.markup import escape
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
            if kind == "round":  # record is (rounds done, rounds) here
                done, total = record
                step = ("loading every variant" if done == 0 else f"interleaved round {done + 1}/{total}") \
                    if done < total else "writing records"
                progress.update(task, description=f"{cell.backbone} timed cells: {step}")
                return
            if kind == "log":  # record is a line here (the Ray executor: which node trains what)
                console.print(f"  {escape(record)}")
                return
            progress.advance(task)
            if kind == "end":
                console.print(_result_line(cell, record))

        summary = runner.run(plan, args.out, force=args.force, on_event=on_event, pythons=args.pythons,
                             executor=args.executor)
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
