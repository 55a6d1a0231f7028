"""Regression gate: compare two result sets cell by cell and say whether NEW is worse than BASE.

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

Thresholds come from `Thresholds` defaults, a TOML file (`[default]` plus `[[override]]` tables matched on cell
fields, later overrides winning) and CLI flags (which replace the defaults). Timings from different machines are
not comparable: `compare` refuses them unless told otherwise.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.output import atomic_write, markdown_text, replacing
from bench.plan import Cell
from bench.records import RECORDS_FILE, RUN_PREFIX, Record, read

Run = list[Record]  # the records of one run of a matrix

LATENCY, THROUGHPUT, ACCURACY = "latency", "throughput", "accuracy"
# GLUE metrics (fractions in [0, 1] or [-1, 1], as `evaluate` returns them; shown in points = 100 x fraction).
ACCURACY_METRICS = ("accuracy", "f1", "mcc", "pearson", "spearman")
SAMPLE_KEYS = {LATENCY: "latency_s", THROUGHPUT: "batch_s"}

REGRESSION, FAILED_IN_NEW = "REGRESSION", "failed in NEW"
IMPROVED, WITHIN, NOT_SIGNIFICANT, TOO_FEW = "improved", "within threshold", "not significant", "too few samples"
WITHIN_NOISE = "within run-to-run noise"
NO_SAMPLES, SKIPPED_IN_NEW, FIXED_IN_NEW = "no raw samples", "skipped in NEW", "fixed in NEW"
MISSING_IN_NEW = "missing in NEW"
BAD_VERDICTS = (REGRESSION, FAILED_IN_NEW)
VERDICT_ORDER = (REGRESSION, FAILED_IN_NEW, IMPROVED, WITHIN_NOISE, NOT_SIGNIFICANT, TOO_FEW, NO_SAMPLES,
                 MISSING_IN_NEW, SKIPPED_IN_NEW, FIXED_IN_NEW, WITHIN)
CELL_FIELDS = tuple(f.name for f in fields(Cell))
SHOW_ALL_UP_TO = 40  # rows; larger comparisons print only the rows that are not "within threshold"


@dataclass(frozen=True)
class Thresholds:
    """How much worse counts, per metric kind: latency % slower, throughput % lower, accuracy points lower;
    alpha is the significance level of both two-sided tests (samples, and run medians when there are runs)."""

    latency_pct: float = 5.0
    throughput_pct: float = 5.0
    accuracy_points: float = 1.0
    alpha: float = 0.01

    def for_kind(self, kind: str) -> float:
        return {LATENCY: self.latency_pct, THROUGHPUT: self.throughput_pct, ACCURACY: self.accuracy_points}[kind]


THRESHOLD_KEYS = tuple(f.name for f in fields(Thresholds))


@dataclass(frozen=True)
class Override:
    """Thresholds for the cells whose fields equal every `match` value (e.g. backbone, suite)."""

    match: dict[str, object]
    values: dict[str, float]

    def applies(self, cell: Cell) -> bool:
        return all(getattr(cell, k) == v for k, v in self.match.items())


@dataclass(frozen=True)
class Rules:
    default: Thresholds = field(default_factory=Thresholds)
    overrides: tuple[Override, ...] = ()

    def for_cell(self, cell: Cell) -> Thresholds:
        t = self.default
        for o in self.overrides:
            if o.applies(cell):
                t = replace(t, **o.values)
        return t

    def with_defaults(self, **given: float | None) -> Rules:
        """CLI flags replace the defaults; file overrides (more specific) still apply on top."""
        values = {k: v for k, v in given.items() if v is not None}
        for k, v in values.items():
            _check_threshold(k, v, "command line")
        return replace(self, default=replace(self.default, **values))


def _check_threshold(key: str, value, where: str) -> float:
    if key not in THRESHOLD_KEYS:
        raise UsageError(f"{where}: unknown threshold {key!r}; allowed: {', '.join(THRESHOLD_KEYS)}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise UsageError(f"{where}: {key} must be a finite number >= 0, got {value!r}")
    if key == "alpha" and not 0 < value < 1:
        raise UsageError(f"{where}: alpha must be between 0 and 1, got {value!r}")
    return float(value)


def load_rules(path: Path | None) -> Rules:
    """Rules from a thresholds TOML file (None: the built-in defaults)."""
    if path is None:
        return Rules()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"thresholds file {path} not found") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a valid thresholds TOML file ({exc})") from exc
    unknown = set(data) - {"default", "override"}
    if unknown:
        raise UsageError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: [default], [[override]]")
    default = data.get("default", {})
    if not isinstance(default, dict):
        raise UsageError(f"{path}: [default] must be a table")
    base = Thresholds(**{k: _check_threshold(k, v, f"{path} [default]") for k, v in default.items()})
    overrides = []
    items = data.get("override", [])
    if not isinstance(items, list):
        raise UsageError(f"{path}: overrides must be [[override]] tables")
    for i, item in enumerate(items, start=1):
        where = f"{path} [[override]] #{i}"
        match = {k: v for k, v in item.items() if k in CELL_FIELDS}
        values = {k: _check_threshold(k, v, where) for k, v in item.items() if k not in CELL_FIELDS}
        if not match or not values:
            raise UsageError(f"{where}: needs at least one cell field ({', '.join(CELL_FIELDS)}) and one "
                             f"threshold ({', '.join(THRESHOLD_KEYS)})")
        overrides.append(Override(match, values))
    return Rules(base, tuple(overrides))


@dataclass(frozen=True)
class Change:
    """One metric of one cell, BASE vs NEW. `worse` is positive when NEW is worse: % for timings, points for
    accuracy. `base`/`new` are medians in `unit`."""

    cell: Cell
    machine: str | None
    metric: str
    kind: str
    unit: str
    verdict: str
    base: float | None = None
    new: float | None = None
    n_base: int = 0
    n_new: int = 0
    cv_base: float | None = None  # spread of each side's samples (%): a noisy machine shows here first
    cv_new: float | None = None
    worse: float | None = None
    p_value: float | None = None
    threshold: float = 0.0
    alpha: float = 0.0
    runs_base: int = 1
    runs_new: int = 1
    noise: float | None = None  # run-to-run sd of run medians (%), pooled over cells; None: no repeated runs
    floor: float | None = None  # smallest change (%) the run-level test could call significant here
    p_runs: float | None = None  # two-sided pooled t-test on log run medians

    @property
    def is_regression(self) -> bool:
        return self.verdict in BAD_VERDICTS

    @property
    def ratio(self) -> float | None:
        """NEW median / BASE median."""
        if self.base is None or self.new is None or self.base == 0:
            return None
        return self.new / self.base


@dataclass
class Comparison:
    changes: list[Change]
    only_base: list[Cell]
    only_new: list[Cell]
    base_machines: list[str | None]
    new_machines: list[str | None]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.is_regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.verdict] = out.get(c.verdict, 0) + 1
        return {v: out[v] for v in VERDICT_ORDER if v in out}

    def summary(self) -> str:
        cells = len({(c.machine, c.cell) for c in self.changes})
        verdicts = ", ".join(f"{n} {v}" for v, n in self.counts().items())
        head = "REGRESSION" if self.regressions else "no regression"
        return (f"{head}: {len(self.changes)} metrics in {cells} matched cells ({verdicts}); "
                f"{len(self.only_base)} cells only in BASE, {len(self.only_new)} only in NEW")

    def markdown(self, show_all: bool = True) -> str:
        rows = sorted(self.changes, key=_row_order)
        hidden = 0
        if not show_all:
            shown = [c for c in rows if c.verdict != WITHIN]
            hidden, rows = len(rows) - len(shown), shown
        machines = len({c.machine for c in self.changes}) > 1
        head = ["verdict", *(["machine"] if machines else []), "cell", "metric", "BASE", "NEW", "change", "p",
                "threshold", "n BASE/NEW (runs)", "CV % BASE/NEW"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in rows:
            cols = [f"**{c.verdict}**" if c.is_regression else c.verdict, *([str(c.machine)] if machines else []),
                    _label(c.cell), c.metric, _fmt(c.base, c.unit), _fmt(c.new, c.unit), _change(c), _p(c),
                    _threshold(c), _counts(c),
                    f"{c.cv_base:.1f}/{c.cv_new:.1f}" if c.cv_base is not None else ""]
            lines.append("| " + " | ".join(markdown_text(x) for x in cols) + " |")
        text = [f"**{self.summary()}**", "", *lines]
        if hidden:
            text += ["", f"{hidden} rows within threshold not shown (`--all` shows them)."]
        text += ["", LEGEND]
        return "\n".join(text) + "\n"


LEGEND = ("`change`: NEW median vs BASE median (% for latency/throughput, points for accuracy); `p`: two-sided "
          "Mann-Whitney U on the raw samples; a REGRESSION is worse than `threshold` AND p < alpha; "
          "`too few samples`: even complete separation could not reach alpha with this many samples; with repeated "
          "runs, `p … / runs …` adds a t-test on log run medians, `run noise` is the run-to-run sd of run medians "
          "pooled over all cells and `floor` the smallest change those runs can resolve; a change beyond the "
          "threshold but not beyond the runs' noise is `within run-to-run noise`; `CV`: spread of the samples "
          "(a busy machine shows large CVs: judge timings only from an otherwise idle machine).")


def _row_order(c: Change):
    return VERDICT_ORDER.index(c.verdict), -(c.worse or 0.0), _label(c.cell), c.metric


def _label(cell: Cell) -> str:
    return cell.label if not cell.task or cell.task in cell.label else f"{cell.label} {cell.task}"


def _fmt(value: float | None, unit: str) -> str:
    return "" if value is None else f"{value:.4g} {unit}"


def _change(c: Change) -> str:
    if c.base is None or c.new is None:
        return ""
    if c.kind == ACCURACY:
        return f"{c.new - c.base:+.2f} pts"
    return f"{100 * (c.new / c.base - 1):+.1f}%" if c.base else ""


def _p(c: Change) -> str:
    if c.p_value is None:
        return "n/a" if c.kind == ACCURACY and c.base is not None else ""
    text = f"{c.p_value:.1e}" if c.p_value < 1e-3 else f"{c.p_value:.3f}"
    if c.p_runs is not None:
        text += f" / runs {c.p_runs:.1e}" if c.p_runs < 1e-3 else f" / runs {c.p_runs:.3f}"
    return text


def _threshold(c: Change) -> str:
    if c.kind == ACCURACY:
        return f"{c.threshold:g} pts lower"
    text = f"{c.threshold:g}% {'slower' if c.kind == LATENCY else 'lower'}, alpha {c.alpha:g}"
    if c.noise is not None:
        text += f"; run noise {c.noise:.1f}% → floor {c.floor:.1f}%"
    return text


def _counts(c: Change) -> str:
    if not (c.n_base or c.n_new):
        return ""
    runs = f" ({c.runs_base}/{c.runs_new} runs)" if c.runs_base > 1 or c.runs_new > 1 else ""
    return f"{c.n_base}/{c.n_new}{runs}"


def min_p_value(n1: int, n2: int) -> float:
    """Smallest two-sided Mann-Whitney p-value any data can give with these sample sizes."""
    if n1 < 1 or n2 < 1:
        return 1.0
    try:
        return min(1.0, 2.0 / math.comb(n1 + n2, n1))
    except OverflowError:  # thousands of samples: smaller than any float
        return 0.0


def mann_whitney_p(base: np.ndarray, new: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    if np.ptp(np.concatenate([base, new])) == 0:
        return 1.0  # identical constants: no evidence of any difference
    return float(mannwhitneyu(new, base, alternative="two-sided").pvalue)


def _latest(records: Sequence[Record], with_machine: bool, side: str) -> dict[tuple, Record]:
    """The latest record of each cell (per machine unless cross-machine), like the report's frame()."""
    out: dict[tuple, Record] = {}
    machines: dict[Cell, set] = {}
    for r in sorted(records, key=lambda r: r.finished or ""):
        machine = (r.environment or {}).get("machine")
        machines.setdefault(r.cell, set()).add(machine)
        out[(machine if with_machine else None, r.cell)] = r
    if not with_machine:
        several = [c for c, m in machines.items() if len(m) > 1]
        if several:
            raise UsageError(f"{side}: cell '{_label(several[0])}' was measured on {len(machines[several[0]])} "
                             "machines; with --allow-cross-machine give one machine's results per side")
    return out


def as_runs(records: Sequence[Record] | Sequence[Sequence[Record]]) -> list[Run]:
    """One run (a list of records) or several (a list of such lists) → a list of runs."""
    if records and isinstance(records[0], Record):
        return [list(records)]
    return [list(run) for run in records if run]


def _by_cell(runs: list[Run], with_machine: bool, side: str) -> dict[tuple, list[Record]]:
    """Each (machine, cell) → its latest record in every run that has it, oldest run first."""
    out: dict[tuple, list[Record]] = {}
    for run in runs:
        for key, r in _latest(run, with_machine, side).items():
            out.setdefault(key, []).append(r)
    return out


def machines_of(records: Sequence[Record] | Sequence[Sequence[Record]]) -> list[str | None]:
    return sorted({(r.environment or {}).get("machine") for run in as_runs(records) for r in run}, key=str)


def _describe_machines(runs: list[Run]) -> str:
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
                         f"(e.g. NEW has '{_label(next(iter(n))[1])}', BASE has '{_label(next(iter(b))[1])}')")
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


class Runs:
    """One side of one timed cell: every sample, each run's log median and (computed only when a run-level
    test needs it) the sampling variance of that log median: (1.2533 x robust sd of log samples)^2 / n."""

    def __init__(self, records: list[Record], kind: str):
        per_run = [x for x in (_samples(r, kind) for r in records) if x.size]
        self.samples = np.concatenate(per_run) if per_run else np.empty(0)
        self._logs = [np.log(x[x > 0]) if (x > 0).any() else np.zeros(1) for x in per_run]
        self.logs = np.array([np.median(v) for v in self._logs])

    @cached_property
    def sampling_var(self) -> np.ndarray:
        from scipy.stats import median_abs_deviation

        return np.array([(1.2533 * median_abs_deviation(v, scale="normal")) ** 2 / v.size for v in self._logs])


@dataclass(frozen=True)
class RunNoise:
    """The machine's run-to-run drift: the variance of log run medians around each side's cell mean, pooled
    over cells, less what the cells' own sampling error explains. A cell's run median then varies by drift
    plus that cell's sampling error, and the run-level t-test uses both. It is Bonferroni-corrected over the
    comparison's `tests` timed metrics: a gate judges a whole matrix at once, and alpha per cell over dozens
    of cells would alarm on most A/A pairs."""

    sd: float  # drift, in log units (≈ relative sd)
    df: int
    tests: int = 1

    def level(self, alpha: float) -> float:
        return alpha / max(self.tests, 1)

    def _se(self, base: Runs, new: Runs) -> float:
        drift = self.sd**2
        return math.sqrt((drift + base.sampling_var.mean()) / base.logs.size
                         + (drift + new.sampling_var.mean()) / new.logs.size)

    def floor(self, base: Runs, new: Runs, alpha: float) -> float:
        """Smallest |log ratio| this cell's runs can call significant."""
        from scipy.stats import t

        return float(t.ppf(1 - self.level(alpha) / 2, self.df) * self._se(base, new))

    def p_value(self, base: Runs, new: Runs) -> float:
        from scipy.stats import t

        diff, se = abs(float(new.logs.mean() - base.logs.mean())), self._se(base, new)
        if se == 0:
            return 0.0 if diff else 1.0
        return float(2 * t.sf(diff / se, self.df))


def run_noise(pairs: list[tuple[list[Record], list[Record]]]) -> RunNoise | None:
    """`pairs`: every matched cell's (BASE records, NEW records). Pooled over every timed cell of either side
    that has two or more runs; None when none has."""
    excess, df, tests = 0.0, 0, 0
    for base, new in pairs:
        kinds = [k for k, _ in _kinds(base[-1]) if k != ACCURACY]
        tests += len(kinds)
        for records in (base, new):
            ok = [r for r in records if r.status == "ok"]
            for kind in kinds if len(ok) > 1 else ():
                runs = Runs(ok, kind)
                if runs.logs.size > 1:
                    excess += float(((runs.logs - runs.logs.mean()) ** 2).sum())
                    excess -= (runs.logs.size - 1) * float(runs.sampling_var.mean())
                    df += runs.logs.size - 1
    return RunNoise(math.sqrt(max(excess, 0.0) / df), df, tests) if df else None


def _judge_timing(base: list[Record], new: list[Record], kind: str, metric: str, machine,
                  t: Thresholds, noise: RunNoise | None = None) -> Change:
    rb, rn = Runs(base, kind), Runs(new, kind)
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
                  n_new=int(xn.size), worse=worse, p_value=p, cv_base=_cv(xb), cv_new=_cv(xn), **runs)


def _cv(x: np.ndarray) -> float:
    return float(100 * x.std(ddof=1) / x.mean()) if x.size > 1 and x.mean() > 0 else 0.0


def points(value: float) -> float:
    """GLUE metrics are stored as fractions (scikit-learn's); shown and thresholded in points."""
    return 100 * value


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


# --- baselines: the runs of each machine fingerprint, <machine>/run-NN/records.jsonl -------------------

KEEP_RUNS = 5


def baseline_dir(baselines: Path, machine: str) -> Path:
    return Path(baselines) / machine


def _stored_runs(machine_dir: Path) -> list[Path]:
    """Run files oldest first; a `records.jsonl` directly in the machine directory is the older one-run layout."""
    legacy = [machine_dir / RECORDS_FILE] if (machine_dir / RECORDS_FILE).is_file() else []
    runs = sorted(machine_dir.glob(f"{RUN_PREFIX}*/{RECORDS_FILE}"), key=lambda p: p.parent.name)
    return legacy + runs


def load_baseline(baselines: Path, machines: list[str | None]) -> list[Run]:
    """The stored baseline runs of each machine NEW ran on."""
    out: list[Run] = []
    for m in machines:
        if not m:
            raise UsageError("NEW records carry no machine fingerprint (environment.machine); give BASE explicitly")
        files = _stored_runs(baseline_dir(baselines, m))
        if not files:
            raise UsageError(f"no baseline for machine {m} ({baseline_dir(baselines, m)} has no runs); store one "
                             f"with `bench baseline RESULTS --baselines {baselines}` or "
                             "`nox -s gate -- --update-baseline`")
        out += [read(f) for f in files]
    return out


def store_baseline(runs: list[Run], baselines: Path, add: bool = False,
                   keep: int = KEEP_RUNS) -> dict[str, tuple[Path, int, int, int]]:
    """File each run under its machine: replace that machine's baseline, or with `add` append to it and keep
    the newest `keep` runs (a rolling baseline spans more of the machine's drift than runs taken back to back).
    Returns per machine the directory, the number of runs now stored, of distinct cells, and of cells that are
    not ok in the newest run (those gate nothing)."""
    if keep < 1:
        raise UsageError(f"--keep must be at least 1, got {keep}")
    by_machine: dict[str, list[Run]] = {}
    for run in runs:
        per: dict[str, Run] = {}
        for (machine, _), r in _latest(run, True, "RESULTS").items():
            if not machine:
                raise UsageError("records carry no machine fingerprint (environment.machine): cannot file a "
                                 "baseline")
            per.setdefault(machine, []).append(r)
        for machine, recs in per.items():
            by_machine.setdefault(machine, []).append(recs)
    out = {}
    for machine, new_runs in by_machine.items():
        final = baseline_dir(baselines, machine)
        texts = [f.read_text(encoding="utf-8") for f in _stored_runs(final)] if add else []
        texts = (texts + ["".join(r.to_json() + "\n" for r in recs) for recs in new_runs])[-keep:]
        final.parent.mkdir(parents=True, exist_ok=True)
        with replacing(final) as tmp:
            for i, text in enumerate(texts, start=1):
                (tmp / f"{RUN_PREFIX}{i:02d}").mkdir()
                atomic_write(tmp / f"{RUN_PREFIX}{i:02d}" / RECORDS_FILE, text)
        newest = new_runs[-1]
        cells = {r.cell for f in _stored_runs(final) for r in read(f)}
        out[machine] = (final, len(texts), len(cells), sum(r.status != "ok" for r in newest))
    return out
