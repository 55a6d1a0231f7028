"""Judging: match NEW's cells to BASE's and decide each metric's verdict.

A change is a regression only when it is BOTH beyond its threshold (so a real but negligible shift does not
fail CI) AND significant by a Mann-Whitney U test on the raw samples (so a noisy run does not fail CI). The
size of a change is the ratio of medians; the test uses every sample each record kept. Accuracy (GLUE records,
`suite="glue"`) is deterministic for fixed weights and dev set, so its threshold alone decides.

Either side may hold several runs of the same matrix (a baseline directory with `run-*/records.jsonl`, or
several NEW paths). Samples within one run are not independent: a shared VM drifts by 10-25% between runs
minutes apart while each run looks tight, so a test on samples calls that drift significant. With several
runs the run becomes the unit: a cell's value is the geometric mean of its run medians, and a t-test on log
run medians asks whether NEW's runs sit apart from BASE's, Bonferroni-corrected over the comparison's timed
metrics. Its variance is the machine's run-to-run noise, pooled over every timed cell of both sides (three
runs per cell give too few degrees of freedom on their own; drift is a property of the machine). Each row
shows that noise and the smallest change the runs could resolve (`floor`), so the table says what this
machine can and cannot detect. tests/test_gate.py shows the error rates on synthetic drifting runs.

The tests themselves are in bench.stats; this module picks the records and samples they are given. Timings
from different machines are not comparable: `compare` refuses them unless told otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from bench.cell import Cell
from bench.errors import UsageError
from bench.gate.change import (
    ACCURACY,
    ACCURACY_METRICS,
    FAILED_IN_NEW,
    FIXED_IN_NEW,
    IMPROVED,
    LATENCY,
    MISSING_IN_NEW,
    NO_SAMPLES,
    NOT_SIGNIFICANT,
    REGRESSION,
    SKIPPED_IN_NEW,
    THROUGHPUT,
    TOO_FEW,
    WITHIN,
    WITHIN_NOISE,
    Change,
    Comparison,
)
from bench.gate.render import cell_label
from bench.gate.rules import Rules, Thresholds
from bench.records import Record
from bench.stats import RunMedians, RunNoise, cv_percent, mann_whitney_p, min_p_value, points, pooled_run_noise
from bench.store import RunRecords, latest

SAMPLE_KEYS = {LATENCY: "latency_s", THROUGHPUT: "batch_s"}


def _latest(records: Sequence[Record], with_machine: bool, side: str) -> dict[tuple, Record]:
    """The latest record of each cell (per machine unless cross-machine), like the report's frame()."""
    per_machine = latest(records)
    if with_machine:
        return per_machine
    machines: dict[Cell, set] = {}
    for machine, cell in per_machine:
        machines.setdefault(cell, set()).add(machine)
    several = [c for c, m in machines.items() if len(m) > 1]
    if several:
        raise UsageError(f"{side}: cell '{cell_label(several[0])}' was measured on {len(machines[several[0]])} "
                         "machines; with --allow-cross-machine give one machine's results per side")
    return {(None, cell): r for (_, cell), r in per_machine.items()}


def as_runs(records: Sequence[Record] | Sequence[Sequence[Record]]) -> list[RunRecords]:
    """One run (a list of records) or several (a list of such lists) → a list of runs."""
    if records and isinstance(records[0], Record):
        return [list(records)]
    return [list(run) for run in records if run]


def _by_cell(runs: list[RunRecords], with_machine: bool, side: str) -> dict[tuple, list[Record]]:
    """Each (machine, cell) → its latest record in every run that has it, oldest run first."""
    out: dict[tuple, list[Record]] = {}
    for run in runs:
        for key, r in _latest(run, with_machine, side).items():
            out.setdefault(key, []).append(r)
    return out


def machines_of(records: Sequence[Record] | Sequence[Sequence[Record]]) -> list[str | None]:
    return sorted({(r.environment or {}).get("machine") for run in as_runs(records) for r in run}, key=str)


def _describe_machines(runs: list[RunRecords]) -> str:
    seen: dict[str | None, str] = {}
    for r in (r for run in runs for r in run):
        env = r.environment or {}
        cpu = env.get("cpu") or {}
        gpus = ", ".join(g.get("name", "?") for g in env.get("gpus") or [])
        seen.setdefault(env.get("machine"), f"{env.get('machine') or 'unknown'} ({cpu.get('model') or '?'}, "
                        f"{cpu.get('logical_cores') or '?'} logical cores{', ' + gpus if gpus else ''})")
    return "; ".join(seen.values())


def compare(base: Sequence[Record] | Sequence[Sequence[Record]], new: Sequence[Record] | Sequence[Sequence[Record]],
            rules: Rules | None = None, allow_cross_machine: bool = False) -> Comparison:
    """Match cells of NEW to BASE (same cell fields and, unless allowed otherwise, same machine) and judge
    every metric the pair has. Each side is one run or a list of runs. Raises UsageError when nothing can be
    compared."""
    rules = rules or Rules()
    base, new = as_runs(base), as_runs(new)
    base_m, new_m = machines_of(base), machines_of(new)
    if not allow_cross_machine and not set(base_m) & set(new_m):
        raise UsageError(f"BASE was measured on machine {_describe_machines(base)} but NEW on "
                         f"{_describe_machines(new)}: timings from different hardware are not comparable "
                         "(pass --allow-cross-machine to compare anyway)")
    b = _by_cell(base, not allow_cross_machine, "BASE")
    n = _by_cell(new, not allow_cross_machine, "NEW")
    common = [k for k in n if k in b]
    if not common:
        raise UsageError(f"no overlapping cells: none of NEW's {len(n)} cells is in BASE's {len(b)} cells "
                         f"(e.g. NEW has '{cell_label(next(iter(n))[1])}', BASE has "
                         f"'{cell_label(next(iter(b))[1])}')")
    noise = run_noise([(b[k], n[k]) for k in common])
    changes: list[Change] = []
    for key in common:
        changes += judge(b[key], n[key], rules.for_cell(key[1]), noise)
    if not changes:
        raise UsageError(f"{len(common)} overlapping cells but none has a timing or accuracy metric to compare "
                         "(only params cells?)")
    return Comparison(changes, [k[1] for k in b if k not in n], [k[1] for k in n if k not in b], base_m, new_m)


def _kinds(record: Record) -> list[tuple[str, str]]:
    """(kind, metric) pairs a record can be judged on."""
    out = []
    if record.cell.suite == THROUGHPUT:
        out.append((THROUGHPUT, "sequences_per_s"))
    elif record.samples or "p50_ms" in record.metrics:
        out.append((LATENCY, "latency"))
    out += [(ACCURACY, m) for m in ACCURACY_METRICS if isinstance(record.metrics.get(m), int | float)]
    return out


def judge(base: Record | Sequence[Record], new: Record | Sequence[Record], t: Thresholds,
          noise: RunNoise | None = None) -> list[Change]:
    """Changes of one matched cell; each side is its record, or its records from several runs. A failure in
    any NEW run fails the cell; BASE runs that did not pass are left out."""
    base = [base] if isinstance(base, Record) else list(base)
    new = [new] if isinstance(new, Record) else list(new)
    machine = (new[-1].environment or {}).get("machine")
    base_ok, new_ok = [r for r in base if r.status == "ok"], [r for r in new if r.status == "ok"]
    if not base_ok:
        if new_ok:
            return [Change(new[-1].cell, machine, kind_metric[1], kind_metric[0], "", FIXED_IN_NEW)
                    for kind_metric in _kinds(new_ok[-1])[:1]]
        return []
    kinds = _kinds(base_ok[-1])
    if len(new_ok) < len(new):
        verdict = FAILED_IN_NEW if any(r.status == "failed" for r in new) else SKIPPED_IN_NEW
        return [Change(base[-1].cell, machine, m, k, "", verdict, threshold=t.for_kind(k), alpha=t.alpha)
                for k, m in kinds[:1]]
    out = []
    for kind, metric in kinds:
        if kind == ACCURACY:
            out.append(_judge_accuracy(base_ok[-1], new_ok[-1], metric, machine, t))
        else:
            out.append(_judge_timing(base_ok, new_ok, kind, metric, machine, t, noise))
    return out


def _samples(record: Record, kind: str) -> np.ndarray:
    s = record.samples or {}
    values = s.get(SAMPLE_KEYS[kind]) or next((v for v in s.values() if v), [])
    return np.asarray(values, dtype=np.float64)


def _run_medians(records: list[Record], kind: str) -> RunMedians:
    """One side of one timed cell: the samples of each of its runs."""
    return RunMedians([_samples(r, kind) for r in records])


def run_noise(pairs: list[tuple[list[Record], list[Record]]]) -> RunNoise | None:
    """`pairs`: every matched cell's (BASE records, NEW records). Pooled over every timed cell of either side
    that has two or more runs; None when none has."""
    sides, tests = [], 0
    for base, new in pairs:
        kinds = [k for k, _ in _kinds(base[-1]) if k != ACCURACY]
        tests += len(kinds)
        for records in (base, new):
            ok = [r for r in records if r.status == "ok"]
            sides += [_run_medians(ok, kind) for kind in kinds] if len(ok) > 1 else []
    return pooled_run_noise(sides, tests)


def _judge_timing(base: list[Record], new: list[Record], kind: str, metric: str, machine,
                  t: Thresholds, noise: RunNoise | None = None) -> Change:
    rb, rn = _run_medians(base, kind), _run_medians(new, kind)
    xb, xn, logs_b, logs_n = rb.samples, rn.samples, rb.logs, rn.logs
    threshold = t.for_kind(kind)
    common = {"cell": new[-1].cell, "machine": machine, "metric": metric, "kind": kind, "threshold": threshold,
              "alpha": t.alpha, "runs_base": len(logs_b), "runs_new": len(logs_n)}
    if not xb.size or not xn.size:
        return Change(**common, unit="", verdict=NO_SAMPLES)
    mb, mn = float(np.exp(logs_b.mean())), float(np.exp(logs_n.mean()))  # one run: its median
    if kind == LATENCY:
        unit, shown_b, shown_n = "ms", mb * 1e3, mn * 1e3
        worse = 100 * (mn / mb - 1)
    else:  # samples are seconds per batch; throughput is batch / median time
        per = new[-1].cell.batch or 1
        unit, shown_b, shown_n = ("seq/s" if new[-1].cell.batch else "/s"), per / mb, per / mn
        worse = 100 * (1 - mb / mn)
    p = mann_whitney_p(xb, xn)
    runs = {}
    if noise is not None:
        floor = noise.floor(rb, rn, t.alpha)
        runs = {"noise": 100 * noise.sd, "p_runs": noise.p_value(rb, rn),
                "floor": 100 * (math.exp(floor) - 1) if kind == LATENCY else 100 * (1 - math.exp(-floor))}
    if abs(worse) <= threshold:
        verdict = WITHIN
    elif runs and runs["p_runs"] >= noise.level(t.alpha):
        verdict = WITHIN_NOISE
    elif min_p_value(xb.size, xn.size) >= t.alpha:
        verdict = TOO_FEW
    elif p >= t.alpha:
        verdict = NOT_SIGNIFICANT
    else:
        verdict = REGRESSION if worse > 0 else IMPROVED
    return Change(**common, unit=unit, verdict=verdict, base=shown_b, new=shown_n, n_base=int(xb.size),
                  n_new=int(xn.size), worse=worse, p_value=p, cv_base=cv_percent(xb), cv_new=cv_percent(xn),
                  **runs)


def _judge_accuracy(base: Record, new: Record, metric: str, machine, t: Thresholds) -> Change:
    threshold = t.accuracy_points
    common = {"cell": new.cell, "machine": machine, "metric": metric, "kind": ACCURACY, "unit": "pts",
              "threshold": threshold, "alpha": t.alpha}
    if not isinstance(new.metrics.get(metric), int | float):
        return Change(**common, verdict=MISSING_IN_NEW)
    vb, vn = points(base.metrics[metric]), points(new.metrics[metric])
    worse = vb - vn
    verdict = WITHIN if abs(worse) <= threshold else (REGRESSION if worse > 0 else IMPROVED)
    return Change(**common, verdict=verdict, base=vb, new=vn, worse=worse)
