"""Regression gate: compare two result sets cell by cell and say whether NEW is worse than BASE.

A change is a regression only when it is BOTH beyond its threshold (so a real but negligible shift does not
fail CI) AND significant by a Mann-Whitney U test on the raw samples (so a noisy run does not fail CI). The
size of a change is the ratio of medians; the test uses every sample each record kept. Accuracy (GLUE records,
`suite="glue"`) is deterministic for fixed weights and dev set, so its threshold alone decides.

Thresholds come from `Thresholds` defaults, a TOML file (`[default]` plus `[[override]]` tables matched on cell
fields, later overrides winning) and CLI flags (which replace the defaults). Timings from different machines are
not comparable: `compare` refuses them unless told otherwise.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from bench.errors import UsageError
from bench.output import atomic_write, markdown_text
from bench.plan import Cell
from bench.records import RECORDS_FILE, Record, read_many

LATENCY, THROUGHPUT, ACCURACY = "latency", "throughput", "accuracy"
# GLUE metrics (fractions in [0, 1] or [-1, 1], as `evaluate` returns them; shown in points = 100 x fraction).
ACCURACY_METRICS = ("accuracy", "f1", "mcc", "pearson", "spearman")
SAMPLE_KEYS = {LATENCY: "latency_s", THROUGHPUT: "batch_s"}

REGRESSION, FAILED_IN_NEW = "REGRESSION", "failed in NEW"
IMPROVED, WITHIN, NOT_SIGNIFICANT, TOO_FEW = "improved", "within threshold", "not significant", "too few samples"
NO_SAMPLES, SKIPPED_IN_NEW, FIXED_IN_NEW = "no raw samples", "skipped in NEW", "fixed in NEW"
MISSING_IN_NEW = "missing in NEW"
BAD_VERDICTS = (REGRESSION, FAILED_IN_NEW)
VERDICT_ORDER = (REGRESSION, FAILED_IN_NEW, IMPROVED, NOT_SIGNIFICANT, TOO_FEW, NO_SAMPLES, MISSING_IN_NEW,
                 SKIPPED_IN_NEW, FIXED_IN_NEW, WITHIN)
CELL_FIELDS = tuple(f.name for f in fields(Cell))
SHOW_ALL_UP_TO = 40  # rows; larger comparisons print only the rows that are not "within threshold"


@dataclass(frozen=True)
class Thresholds:
    """How much worse counts, per metric kind: latency % slower, throughput % lower, accuracy points lower;
    alpha is the significance level of the two-sided Mann-Whitney U test."""

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
                "threshold", "n BASE/NEW", "CV % BASE/NEW"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for c in rows:
            cols = [f"**{c.verdict}**" if c.is_regression else c.verdict, *([str(c.machine)] if machines else []),
                    _label(c.cell), c.metric, _fmt(c.base, c.unit), _fmt(c.new, c.unit), _change(c), _p(c),
                    _threshold(c), f"{c.n_base}/{c.n_new}" if c.n_base or c.n_new else "",
                    f"{c.cv_base:.1f}/{c.cv_new:.1f}" if c.cv_base is not None else ""]
            lines.append("| " + " | ".join(markdown_text(x) for x in cols) + " |")
        text = [f"**{self.summary()}**", "", *lines]
        if hidden:
            text += ["", f"{hidden} rows within threshold not shown (`--all` shows them)."]
        text += ["", LEGEND]
        return "\n".join(text) + "\n"


LEGEND = ("`change`: NEW median vs BASE median (% for latency/throughput, points for accuracy); `p`: two-sided "
          "Mann-Whitney U on the raw samples; a REGRESSION is worse than `threshold` AND p < alpha; "
          "`too few samples`: even complete separation could not reach alpha with this many samples; `CV`: spread "
          "of the samples (a busy machine shows large CVs: judge timings only from an otherwise idle machine).")


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
    return f"{c.p_value:.1e}" if c.p_value < 1e-3 else f"{c.p_value:.3f}"


def _threshold(c: Change) -> str:
    if c.kind == ACCURACY:
        return f"{c.threshold:g} pts lower"
    return f"{c.threshold:g}% {'slower' if c.kind == LATENCY else 'lower'}, alpha {c.alpha:g}"


def min_p_value(n1: int, n2: int) -> float:
    """Smallest two-sided Mann-Whitney p-value any data can give with these sample sizes."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def mann_whitney_p(base: np.ndarray, new: np.ndarray) -> float:
    from scipy.stats import mannwhitneyu

    if np.ptp(np.concatenate([base, new])) == 0:
        return 1.0  # identical constants: no evidence of any difference
    return float(mannwhitneyu(new, base, alternative="two-sided").pvalue)


def _latest(records: list[Record], with_machine: bool, side: str) -> dict[tuple, Record]:
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


def machines_of(records: list[Record]) -> list[str | None]:
    return sorted({(r.environment or {}).get("machine") for r in records}, key=str)


def _describe_machines(records: list[Record]) -> str:
    seen: dict[str | None, str] = {}
    for r in records:
        env = r.environment or {}
        cpu = env.get("cpu") or {}
        gpus = ", ".join(g.get("name", "?") for g in env.get("gpus") or [])
        seen.setdefault(env.get("machine"), f"{env.get('machine') or 'unknown'} ({cpu.get('model') or '?'}, "
                        f"{cpu.get('logical_cores') or '?'} logical cores{', ' + gpus if gpus else ''})")
    return "; ".join(seen.values())


def compare(base: list[Record], new: list[Record], rules: Rules | None = None,
            allow_cross_machine: bool = False) -> Comparison:
    """Match cells of NEW to BASE (same cell fields and, unless allowed otherwise, same machine) and judge
    every metric the pair has. Raises UsageError when nothing can be compared."""
    rules = rules or Rules()
    base_m, new_m = machines_of(base), machines_of(new)
    if not allow_cross_machine and not set(base_m) & set(new_m):
        raise UsageError(f"BASE was measured on machine {_describe_machines(base)} but NEW on "
                         f"{_describe_machines(new)}: timings from different hardware are not comparable "
                         "(pass --allow-cross-machine to compare anyway)")
    b = _latest(base, not allow_cross_machine, "BASE")
    n = _latest(new, not allow_cross_machine, "NEW")
    common = [k for k in n if k in b]
    if not common:
        raise UsageError(f"no overlapping cells: none of NEW's {len(n)} cells is in BASE's {len(b)} cells "
                         f"(e.g. NEW has '{_label(next(iter(n))[1])}', BASE has '{_label(next(iter(b))[1])}')")
    changes: list[Change] = []
    for key in common:
        changes += judge(b[key], n[key], rules.for_cell(key[1]))
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


def judge(base: Record, new: Record, t: Thresholds) -> list[Change]:
    """Changes of one matched cell."""
    machine = (new.environment or {}).get("machine")
    if base.status != "ok":
        if new.status == "ok":
            return [Change(new.cell, machine, kind_metric[1], kind_metric[0], "", FIXED_IN_NEW)
                    for kind_metric in _kinds(new)[:1]]
        return []
    kinds = _kinds(base)
    if new.status != "ok":
        verdict = FAILED_IN_NEW if new.status == "failed" else SKIPPED_IN_NEW
        return [Change(base.cell, machine, m, k, "", verdict, threshold=t.for_kind(k), alpha=t.alpha)
                for k, m in kinds[:1]]
    out = []
    for kind, metric in kinds:
        if kind == ACCURACY:
            out.append(_judge_accuracy(base, new, metric, machine, t))
        else:
            out.append(_judge_timing(base, new, kind, metric, machine, t))
    return out


def _samples(record: Record, kind: str) -> np.ndarray:
    s = record.samples or {}
    values = s.get(SAMPLE_KEYS[kind]) or next((v for v in s.values() if v), [])
    return np.asarray(values, dtype=np.float64)


def _judge_timing(base: Record, new: Record, kind: str, metric: str, machine, t: Thresholds) -> Change:
    xb, xn = _samples(base, kind), _samples(new, kind)
    threshold = t.for_kind(kind)
    common = {"cell": new.cell, "machine": machine, "metric": metric, "kind": kind, "threshold": threshold,
              "alpha": t.alpha}
    if not xb.size or not xn.size:
        return Change(**common, unit="", verdict=NO_SAMPLES)
    mb, mn = float(np.median(xb)), float(np.median(xn))
    if kind == LATENCY:
        unit, shown_b, shown_n = "ms", mb * 1e3, mn * 1e3
        worse = 100 * (mn / mb - 1)
    else:  # samples are seconds per batch; throughput is batch / median time
        per = new.cell.batch or 1
        unit, shown_b, shown_n = ("seq/s" if new.cell.batch else "/s"), per / mb, per / mn
        worse = 100 * (1 - mb / mn)
    p = mann_whitney_p(xb, xn)
    if abs(worse) <= threshold:
        verdict = WITHIN
    elif min_p_value(xb.size, xn.size) >= t.alpha:
        verdict = TOO_FEW
    elif p >= t.alpha:
        verdict = NOT_SIGNIFICANT
    else:
        verdict = REGRESSION if worse > 0 else IMPROVED
    return Change(**common, unit=unit, verdict=verdict, base=shown_b, new=shown_n, n_base=int(xb.size),
                  n_new=int(xn.size), worse=worse, p_value=p, cv_base=_cv(xb), cv_new=_cv(xn))


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


# --- baselines: one records file per machine fingerprint -------------------------------------------------

def baseline_path(baselines: Path, machine: str) -> Path:
    return Path(baselines) / machine / RECORDS_FILE


def load_baseline(baselines: Path, machines: list[str | None]) -> list[Record]:
    """The stored baseline records of each machine NEW ran on."""
    out: list[Record] = []
    for m in machines:
        if not m:
            raise UsageError("NEW records carry no machine fingerprint (environment.machine); give BASE explicitly")
        path = baseline_path(baselines, m)
        if not path.is_file():
            raise UsageError(f"no baseline for machine {m} ({path} missing); store one with `bench baseline "
                             f"RESULTS --baselines {baselines}` or `nox -s gate -- --update-baseline`")
        out += read_many([path])
    return out


def store_baseline(records: list[Record], baselines: Path) -> dict[str, tuple[Path, int, int]]:
    """Replace each machine's baseline with the latest record of every cell it ran; returns the path, the
    number of cells and how many of them are not ok (those cannot gate anything)."""
    by_machine: dict[str, list[Record]] = {}
    for key, r in _latest(records, True, "RESULTS").items():
        if not key[0]:
            raise UsageError("records carry no machine fingerprint (environment.machine): cannot file a baseline")
        by_machine.setdefault(key[0], []).append(r)
    out = {}
    for machine, recs in by_machine.items():
        path = baseline_path(baselines, machine)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, "".join(r.to_json() + "\n" for r in recs))
        out[machine] = (path, len(recs), sum(r.status != "ok" for r in recs))
    return out
