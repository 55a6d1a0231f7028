"""What the gate says about one metric of one matched cell (`Change`) and about a whole comparison
(`Comparison`), with the verdicts it can reach in the order the table lists them."""

from __future__ import annotations

from dataclasses import dataclass

from bench.cell import Cell

LATENCY, THROUGHPUT, ACCURACY = "latency", "throughput", "accuracy"
# GLUE metrics (fractions in [0, 1] or [-1, 1], as `evaluate` returns them; shown in points = 100 x fraction).
ACCURACY_METRICS = ("accuracy", "f1", "mcc", "pearson", "spearman")

REGRESSION, FAILED_IN_NEW = "REGRESSION", "failed in NEW"
IMPROVED, WITHIN, NOT_SIGNIFICANT, TOO_FEW = "improved", "within threshold", "not significant", "too few samples"
WITHIN_NOISE = "within run-to-run noise"
NO_SAMPLES, SKIPPED_IN_NEW, FIXED_IN_NEW = "no raw samples", "skipped in NEW", "fixed in NEW"
MISSING_IN_NEW = "missing in NEW"
BAD_VERDICTS = (REGRESSION, FAILED_IN_NEW)  # the verdicts that fail the gate (exit 1)
VERDICT_ORDER = (REGRESSION, FAILED_IN_NEW, IMPROVED, WITHIN_NOISE, NOT_SIGNIFICANT, TOO_FEW, NO_SAMPLES,
                 MISSING_IN_NEW, SKIPPED_IN_NEW, FIXED_IN_NEW, WITHIN)


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
