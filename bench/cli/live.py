"""`bench live`: the live A/B gate, two sides of the plan's timed cells measured interleaved in one session."""

from __future__ import annotations

import sys
from itertools import groupby
from pathlib import Path

from bench.cli.args import RUNS, _percent
from bench.errors import UsageError

DEFAULT_ROUNDS = 20
# worker processes a side: a process's own offset (benchmarks/process_offsets.py) is then the test's error term
# rather than a change; 4 a side gives the two-sample test 6 degrees of freedom at 4 model loads per variant
DEFAULT_PROCESSES = 4


def add_parsers(sub) -> None:
    live = sub.add_parser(
        "live", help="live A/B gate: BASE and NEW measured interleaved now; exit 0 ok, 1 regression, 2 bad input",
        description="Measure the preset's timed cells for two sides in the same interleaved rounds and judge each "
        "matched cell on its per-round ratios (paired t-test on log ratios). A side is KEY=VALUE[,...] with code=DIR "
        "(a checkout of this project: two commits), python=PATH (another environment: two library versions) or "
        "backbone=NAME|DIR (another model). No stored baseline is needed.")
    live.add_argument("--base", required=True, metavar="SIDE", help="e.g. code=/tmp/merge-base-worktree")
    live.add_argument("--new", required=True, metavar="SIDE", help="e.g. code=. (the working tree)")
    live.add_argument("--preset", default="gate", help="preset whose timed cells are compared (default: gate)")
    live.add_argument("--rounds", type=int, default=None,
                      help=f"interleaved rounds (default: the preset's [run] rounds, else {DEFAULT_ROUNDS})")
    live.add_argument("--processes", type=int, default=DEFAULT_PROCESSES,
                      help=f"worker processes per side and variant, all measured in every round (default "
                      f"{DEFAULT_PROCESSES}; 1: the paired rounds test, which takes a process's own offset for a "
                      "change)")
    live.add_argument("--thresholds", type=Path, help="TOML thresholds, as for `bench compare`")
    live.add_argument("--latency-threshold", type=_percent, metavar="PCT", help="%% slower that counts (default 5)")
    live.add_argument("--alpha", type=float, help="significance level of the paired test (default 0.01)")
    live.add_argument("--markdown", type=Path, help="also write the table to this file")
    live.add_argument("--out", type=Path, help=f"records of both sides (default: {RUNS}/<machine>/live-<preset>)")
    live.set_defaults(handler=cmd_live)


def cmd_live(args) -> int:
    from bench import rounds as interleaving
    from bench.environment import apply_offline_env, describe, machine_fingerprint
    from bench.files import writable_dir
    from bench.gate.change import REGRESSION
    from bench.gate.live import FAILED, judge, markdown, parse_side, side_cell
    from bench.gate.rules import load_rules
    from bench.local import default_threads
    from bench.plan import load_preset
    from bench.preparation import prepare_artifacts, resolve_forms
    from bench.records import RECORDS_FILE, Record, append
    from bench.runtimes import interpreter
    from bench.stats import round_medians
    from suites import get_suite

    apply_offline_env()
    base, new = parse_side("base", args.base), parse_side("new", args.new)
    if args.alpha is not None and not 0 < args.alpha < 1:
        raise UsageError(f"--alpha must be between 0 and 1, got {args.alpha}")
    plan = load_preset(args.preset)
    rounds = args.rounds if args.rounds is not None else (plan.rounds or DEFAULT_ROUNDS)
    if rounds < 2:
        raise UsageError(f"--rounds must be >= 2 (the paired test needs two rounds), got {rounds}")
    if args.processes < 1:
        raise UsageError(f"--processes must be >= 1, got {args.processes}")
    rules = load_rules(args.thresholds).with_defaults(latency_pct=args.latency_threshold, alpha=args.alpha)
    cells = [c for c in plan.cells() if get_suite(c.suite).timed and c.device == "cpu"]
    if not cells:
        raise UsageError(f"preset {plan.name} has no timed cpu cells (latency, throughput) to compare")
    out = writable_dir(args.out or RUNS / machine_fingerprint() / f"live-{Path(args.preset).stem}")
    threads = plan.threads or default_threads()
    settings = plan.record_settings(threads) | {"rounds": rounds}
    variants, index = [], []  # index: (side, cells of the variant in plan order, artifact, process)
    for side in (base, new):
        own = [side_cell(c, side) for c in cells]
        prepared = resolve_forms(prepare_artifacts(own, plan, threads), own, plan.criterion)
        for cell in own:
            why = prepared.reason(cell)
            python = side.python or interpreter(cell.runtime)
            if why or python is None:
                raise UsageError(f"--{side.name}: {cell.label}: {why or 'runtime not installed here'}")
        for _, group in groupby(own, key=lambda c: (c.backbone, c.runtime, c.precision, c.sparsity, c.device)):
            group = list(group)
            artifact = prepared.artifacts[group[0].backbone, group[0].sparsity]
            for process in range(args.processes):
                variants.append(interleaving.Variant(group, artifact.summary(), side.python or interpreter(
                    group[0].runtime), side.code))
                index.append((side, group, artifact, process))
    print(f"bench live: {len(cells)} cells x 2 sides x {args.processes} worker processes in {rounds} interleaved "
          f"rounds → {out}; loading {len(variants)} workers first, one after the other", file=sys.stderr)
    budgets = {_key(c): get_suite(c.suite).budget(plan.settings_of(c.suite)) for c in cells}
    outcomes = {}
    for v, c, outcome in interleaving.interleave(
            variants, lambda cell: budgets[_key(cell)], settings, rounds, plan.seed, plan.timeout_s,
            lambda k, n: print(f"  round {k}/{n}", file=sys.stderr), together=_key):  # a pair back to back
        if not outcome.loaded:
            raise UsageError(f"--{index[v][0].name}: {variants[v].cells[c].label} did not load: {outcome.reason}")
        outcomes[v, c] = outcome
    environment = describe()
    medians, failed = {}, set()  # medians: (side, cell key) -> per-process round medians
    for (v, c), outcome in sorted(outcomes.items()):
        side, group, artifact, process = index[v]
        cell = group[c]
        fields = {"status": outcome.status, "reason": outcome.reason,
                  "runtime": outcome.runtime | {"live_process": process},
                  "samples": {"round": outcome.rounds, "kept_s": outcome.samples}}
        if outcome.status == "ok" and outcome.samples:
            result = get_suite(cell.suite).from_samples(cell, outcome.samples, outcome.extra)
            fields |= {"metrics": result.metrics | {"rounds": rounds},
                       "samples": result.samples | {"round": outcome.rounds}}
            medians.setdefault((side.name, _key(cell)), []).append(round_medians(outcome.samples, outcome.rounds))
        else:
            failed.add((side.name, _key(cell)))
        append(out / side.name / RECORDS_FILE, Record(cell=cell, settings=settings, environment=environment,
                                                      harness_version="live", **fields))
    changes = []
    for cell in cells:
        b, n = (None if (name, _key(cell)) in failed else medians.get((name, _key(cell))) for name in ("base", "new"))
        why = "" if b is not None and n is not None else "a side's worker failed mid-run (see its records)"
        changes.append(judge(cell, cell.suite, b, n, rules, why))
    table = markdown(changes, base, new, rounds)
    print(table, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
    return 1 if any(c.verdict in (REGRESSION, FAILED) for c in changes) else 0


def _key(cell) -> tuple:
    """A cell without its backbone: how the two sides' cells are matched (a side may swap the model)."""
    return cell.runtime, cell.precision, cell.sparsity, cell.device, cell.suite, cell.batch, cell.seq_len
