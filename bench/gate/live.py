"""The live A/B gate: two sides measured interleaved in one session, judged on rounds that share their machine
state, so it needs no stored baseline and holds on a fresh machine.

A side is the plan's timed cells run with something changed: `code=DIR` (a checkout of this project whose code
runs the side's workers: two commits), `python=PATH` (another environment of the runtimes: two library
versions), `backbone=NAME|DIR` (another model: a model before and after a change). Every cell of one side is
matched with the same cell of the other. Each side's variants run in several worker processes (`--processes`, all
measured in every round), because a process carries an offset of its own through all its rounds (a 3.4-6.3% sd
between processes of torch INT8 at batch 8 on the Zen 4 host, benchmarks/process_offsets.py): with one process a
side that offset is indistinguishable from a change, and an A/A pair alarms. Per cell, the change is NEW/BASE over
the processes' mean log round medians and the test a two-sample t-test on them (bench.stats.process_ratio: the
offsets are its error term); with one process a side, the change is over the rounds (bench.stats.paired_ratio) and
the test a paired t-test on the per-round log ratios (bench.stats.paired_log_test), which assumes no offset. A
change is a regression when it is significant (p < alpha: slower on the rounds) AND its interval at 1 − alpha
reaches the cell's threshold (bench/gate/rules.py): the rounds show a slowdown and cannot rule out one of the
threshold's size. A gate that asked the point estimate to exceed the threshold would pass a slowdown of exactly the
threshold's size half the time; this one passes a real slowdown only when the rounds show it to be smaller than the
threshold, and false alarms stay at alpha per cell because a significant change is still required.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bench import stats
from bench.cell import Cell
from bench.errors import UsageError
from bench.gate.change import IMPROVED, NOT_SIGNIFICANT, REGRESSION, WITHIN
from bench.gate.rules import Rules
from bench.markdown import markdown_text

SIDE_KEYS = ("code", "python", "backbone")
FAILED = "failed"


@dataclass(frozen=True)
class Side:
    """What one side changes; None keeps this checkout, this interpreter, the plan's backbones."""

    name: str
    code: Path | None = None
    python: str | None = None
    backbone: str | None = None

    def describe(self) -> str:
        parts = [f"{k}={getattr(self, k)}" for k in SIDE_KEYS if getattr(self, k)]
        return ", ".join(parts) or "this checkout"


def parse_side(name: str, text: str) -> Side:
    """`KEY=VALUE[,KEY=VALUE]` with keys code, python, backbone; each path must exist."""
    values = {}
    for item in filter(None, (t.strip() for t in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in SIDE_KEYS or not value:
            raise UsageError(f"--{name} {text!r}: expected KEY=VALUE with KEY one of {', '.join(SIDE_KEYS)}")
        values[key] = value
    if "code" in values:
        code = Path(values["code"]).resolve()
        if not (code / "bench" / "rounds_worker.py").is_file():
            raise UsageError(f"--{name} code={values['code']}: not a checkout of this project with interleaved "
                             "rounds (no bench/rounds_worker.py)")
        values["code"] = code
    if "python" in values and not Path(values["python"]).is_file():
        raise UsageError(f"--{name} python={values['python']}: not a file")
    return Side(name, **values)


def side_cell(cell: Cell, side: Side) -> Cell:
    return replace(cell, backbone=side.backbone) if side.backbone else cell


@dataclass(frozen=True)
class LiveChange:
    """One matched cell: NEW/BASE time ratio over the rounds, its interval at 1 − alpha (the one the verdict reads),
    the paired test and the verdict."""

    cell: Cell
    kind: str  # latency / throughput
    ratio: float | None
    low: float | None
    high: float | None
    rounds: int
    p: float | None
    threshold_pct: float
    verdict: str
    reason: str = ""
    processes: int = 1  # worker processes a side

    @property
    def change_pct(self) -> float | None:
        return None if self.ratio is None else 100 * (self.ratio - 1)


def judge(cell: Cell, kind: str, base: list[dict[int, float]] | None, new: list[dict[int, float]] | None,
          rules: Rules, why: str = "") -> LiveChange:
    """Verdict for one matched cell from the per-round medians of each side's worker processes (None: that side
    failed): the process-level test with two or more processes a side, the paired rounds test with one."""
    t = rules.for_cell(cell)
    threshold = t.latency_pct if kind == "latency" else t.throughput_pct
    if base is None or new is None:
        return LiveChange(cell, kind, None, None, None, 0, None, threshold, FAILED, why)
    processes = min(len(base), len(new))
    if processes >= 2:
        found = stats.process_ratio(new, base, confidence=1 - t.alpha)
        paired, p = found if found else (None, None)
    else:
        paired = stats.paired_ratio(new[0], base[0], confidence=1 - t.alpha)
        p = stats.paired_log_test(base[0], new[0]) if paired else None
    if paired is None or paired.rounds < 2:
        return LiveChange(cell, kind, None, None, None, 0, None, threshold, FAILED, "fewer than 2 shared rounds",
                          processes)
    verdict = verdict_of(100 * (paired.ratio - 1), 100 * (paired.low - 1), 100 * (paired.high - 1), p, threshold,
                         t.alpha)
    return LiveChange(cell, kind, paired.ratio, paired.low, paired.high, paired.rounds, p, threshold, verdict,
                      processes=processes)


def verdict_of(change: float, low: float, high: float, p: float, threshold: float, alpha: float) -> str:
    """The live rule on a change in % of time (> 0 slower) with its interval at 1 − alpha: significant and reaching
    the threshold in its direction → REGRESSION / IMPROVED; significant but shown smaller than the threshold, or
    not significant and within it → WITHIN; not significant beyond it → NOT_SIGNIFICANT (the rounds cannot tell)."""
    if p < alpha and change > 0 and high >= threshold:
        return REGRESSION
    if p < alpha and change < 0 and low <= -threshold:
        return IMPROVED
    return WITHIN if p < alpha or abs(change) <= threshold else NOT_SIGNIFICANT


def markdown(changes: list[LiveChange], base: Side, new: Side, rounds: int) -> str:
    bad = [c for c in changes if c.verdict in (REGRESSION, FAILED)]
    head = "REGRESSION" if any(c.verdict == REGRESSION for c in changes) else (
        "FAILED" if bad else "no regression")
    processes = max((c.processes for c in changes), default=1)
    lines = [f"{head}: live A/B over {rounds} interleaved rounds, {len(changes)} cells, {processes} worker "
             f"process{'es' if processes > 1 else ''} a side; BASE = {base.describe()}, NEW = {new.describe()}", "",
             "| cell | change (NEW/BASE time) | interval (1 − alpha) | rounds | p | threshold | verdict |",
             "|---|---:|---:|---:|---:|---:|---|"]
    order = {REGRESSION: 0, FAILED: 1, IMPROVED: 2, NOT_SIGNIFICANT: 3, WITHIN: 4}
    for c in sorted(changes, key=lambda c: (order.get(c.verdict, 5), -abs(c.change_pct or 0))):
        label = markdown_text(f"{c.cell.backbone} {c.cell.runtime} {c.cell.precision} {c.cell.sparsity} "
                              f"{c.cell.suite} b{c.cell.batch} s{c.cell.seq_len}")
        if c.ratio is None:
            lines.append(f"| {label} | | | | | {c.threshold_pct:g}% | {c.verdict}: {markdown_text(c.reason)} |")
            continue
        lines.append(f"| {label} | {c.change_pct:+.2f}% | {100 * (c.low - 1):+.2f}% … {100 * (c.high - 1):+.2f}% "
                     f"| {c.rounds} | {c.p:.2g} | {c.threshold_pct:g}% | {c.verdict} |")
    how = ("NEW's geometric mean time over its processes and rounds / BASE's (time: positive is slower); `p`: "
           "two-sample t-test on the processes' mean log times" if processes > 1 else
           "geometric mean over rounds of NEW's round median / BASE's (time: positive is slower); `p`: paired t-test "
           "on the per-round log ratios (one process a side: a process's own offset counts as a change)")
    lines += ["", f"`change`: {how}; a REGRESSION is significant (p < alpha) AND its interval reaches `threshold` "
              "(a slowdown the measurements cannot show to be smaller than the threshold)."]
    return "\n".join(lines) + "\n"
