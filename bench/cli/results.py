"""`bench report`, `bench compare`, `bench baseline` and `bench export`: from records to tables and verdicts."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.cli.args import DEFAULT_BASELINES, _percent
from bench.errors import UsageError


def add_parsers(sub) -> None:
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

    exp = sub.add_parser("export", help="records in another tool's format (pytest-benchmark JSON)")
    exp.add_argument("inputs", nargs="+", type=Path)
    exp.add_argument("--format", choices=["pytest-benchmark"], default="pytest-benchmark")
    exp.add_argument("--out", type=Path, required=True, help="JSON file to write")
    exp.add_argument("--machine", help="export only this machine's records (required when inputs mix machines)")
    for parser, handler in ((rep, cmd_report), (cmp, cmd_compare), (base, cmd_baseline), (exp, cmd_export)):
        parser.set_defaults(handler=handler)


def cmd_report(args) -> int:
    from bench import records, report
    from bench.files import writable_dir

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
    from bench import records
    from bench.gate.judge import compare, machines_of
    from bench.gate.render import SHOW_ALL_UP_TO, markdown
    from bench.gate.rules import load_rules
    from bench.store import load_baseline

    if not args.baseline and len(args.paths) != 2:
        raise UsageError(f"compare takes BASE and NEW (got {len(args.paths)} paths); or --baseline NEW")
    if args.alpha is not None and not 0 < args.alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {args.alpha}")
    rules = load_rules(args.thresholds).with_defaults(
        latency_pct=args.latency_threshold, throughput_pct=args.throughput_threshold,
        accuracy_points=args.accuracy_threshold, alpha=args.alpha)
    new = records.read_runs(args.paths if args.baseline else args.paths[1:])
    base = load_baseline(args.baselines, machines_of(new)) if args.baseline else records.read_runs(args.paths[:1])
    result = compare(base, new, rules, allow_cross_machine=args.allow_cross_machine)
    show_all = args.all or len(result.changes) <= SHOW_ALL_UP_TO
    print(markdown(result, show_all=show_all), end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown(result, show_all=True), encoding="utf-8")
    return result.exit_code


def cmd_baseline(args) -> int:
    from bench import records
    from bench.store import store_baseline

    stored = store_baseline(records.read_runs(args.inputs), args.baselines, add=args.add, keep=args.keep)
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
