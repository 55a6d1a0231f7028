"""Summaries of raw timing samples (kept in every record, so recomputable), comparisons with the reference
configuration and the Pareto front, the stored-baseline gate's tests and pytest-benchmark's statistics."""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def summarize(samples_s: list[float] | np.ndarray) -> dict[str, float]:
    """Percentiles, mean, std and CV of samples in seconds; reported in milliseconds."""
    x = np.asarray(samples_s, dtype=np.float64) * 1e3
    if x.size == 0:
        raise ValueError("no samples")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    q1, q3 = np.percentile(x, [25, 75])
    return {
        "n": int(x.size),
        "p50_ms": float(np.percentile(x, 50)),
        "p90_ms": float(np.percentile(x, 90)),
        "p99_ms": float(np.percentile(x, 99)),
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean > 0 else 0.0,
        "min_ms": float(x.min()),
        "max_ms": float(x.max()),
        "iqr_ms": float(q3 - q1),
    }


# --- comparisons against the reference configuration (bench.runtimes.REFERENCE_CONFIG) and the Pareto front ---
# Arguments are scalars, numpy arrays or Series; the report and the leaderboard pick which reference row each
# value is held against, these say what is computed from the pair.

def speedup(reference, value, higher_is_better: bool = False):
    """Times faster than the reference: reference/value for a latency, value/reference for a throughput."""
    return value / reference if higher_is_better else reference / value


def drop_points(reference, value):
    """Accuracy lost against the reference, in points (negative: higher than the reference)."""
    return reference - value


def change_points(reference, value):
    """Accuracy change from the reference, in points (positive: higher than the reference)."""
    return value - reference


def relative_change_pct(reference, value):
    """The change from the reference as a share of the reference's magnitude (%)."""
    return 100 * (value - reference) / abs(reference)


def relative_drop_pct(reference, value):
    """Accuracy lost as a share of the reference's magnitude (%): what the leaderboard's budget bounds."""
    return 100 * (reference - value) / abs(reference)


def within_budget(drop_pct, budget_pct: float) -> np.ndarray:
    """Which relative drops (%) stay within the budget; a missing (NaN) drop never does."""
    return np.asarray(drop_pct, dtype=np.float64) <= budget_pct + 1e-9  # slack: a drop of exactly the budget


def accuracy_floor(reference, budget_pct: float):
    """The lowest accuracy a relative drop of `budget_pct` (%) from the reference allows."""
    return reference * (1 - budget_pct / 100)


def nonzero_pct(sparsity):
    """Share of nonzero parameters (%) from the share of zeros (a fraction)."""
    return 100 * (1 - sparsity)


def percent_of_peak(gflops, peak_gflops):
    """Achieved GFLOP/s as a share of the machine's GEMM peak (%)."""
    return 100 * gflops / peak_gflops


def pareto_front(x: np.ndarray, y: np.ndarray, y_higher: bool) -> np.ndarray:
    """Indices of points no other point beats on both axes (x: higher is better), ordered by x."""
    good = y if y_higher else -y
    order = np.lexsort((-good, -x))  # by x descending, ties: better y first
    front, best = [], -np.inf
    for i in order:
        value = good[i]
        if value > best:
            front.append(i)
            best = value
    return np.array(sorted(front, key=lambda i: x[i]), dtype=int)


# --- the regression gate's tests (bench.gate): is NEW's timing apart from BASE's, given this machine's noise ---
# scipy.stats is imported inside the functions that use it: every cell's worker imports this module for
# `summarize` alone, and scipy.stats takes about a second to import.

def min_p_value(n1: int, n2: int) -> float:
    """Smallest two-sided Mann-Whitney p any samples of these sizes can give: below alpha or never significant."""
    if n1 < 1 or n2 < 1:
        return 1.0
    try:
        return min(1.0, 2.0 / math.comb(n1 + n2, n1))
    except OverflowError:  # thousands of samples: smaller than any float
        return 0.0


def mann_whitney_p(base: np.ndarray, new: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value of NEW's timing samples against BASE's: do they come from one machine state."""
    from scipy.stats import mannwhitneyu

    if np.ptp(np.concatenate([base, new])) == 0:
        return 1.0  # identical constants: no evidence of any difference
    return float(mannwhitneyu(new, base, alternative="two-sided").pvalue)


def cv_percent(x: np.ndarray) -> float:
    """Coefficient of variation of timing samples (%): a busy machine shows a large one before anything else."""
    return float(100 * x.std(ddof=1) / x.mean()) if x.size > 1 and x.mean() > 0 else 0.0


def points(value: float) -> float:
    """A GLUE metric stored as a fraction (scikit-learn's) in points, the unit it is shown and thresholded in."""
    return 100 * value


class RunMedians:
    """One side of one timed cell over its runs: every sample, each run's log median and (computed only when a
    run-level test needs it) the sampling variance of that log median: (1.2533 x robust sd of log samples)^2 / n
    (1.2533 = sqrt(pi/2), the median's standard error over the mean's for normal data)."""

    def __init__(self, runs: Sequence[np.ndarray]):
        per_run = [x for x in runs if x.size]
        self.samples = np.concatenate(per_run) if per_run else np.empty(0)
        self._logs = [np.log(x[x > 0]) if (x > 0).any() else np.zeros(1) for x in per_run]
        self.logs = np.array([np.median(v) for v in self._logs])

    @cached_property
    def sampling_var(self) -> np.ndarray:
        """Each run's sampling variance of its log median: the part of the runs' spread that is not drift."""
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
        """The per-test significance level: alpha Bonferroni-corrected over the comparison's timed metrics."""
        return alpha / max(self.tests, 1)

    def _se(self, base: RunMedians, new: RunMedians) -> float:
        drift = self.sd**2
        return math.sqrt((drift + base.sampling_var.mean()) / base.logs.size
                         + (drift + new.sampling_var.mean()) / new.logs.size)

    def floor(self, base: RunMedians, new: RunMedians, alpha: float) -> float:
        """Smallest |log ratio| this cell's runs can call significant."""
        from scipy.stats import t

        return float(t.ppf(1 - self.level(alpha) / 2, self.df) * self._se(base, new))

    def p_value(self, base: RunMedians, new: RunMedians) -> float:
        """Two-sided t-test p-value of NEW's mean log run median against BASE's, under drift plus sampling error."""
        from scipy.stats import t

        diff, se = abs(float(new.logs.mean() - base.logs.mean())), self._se(base, new)
        if se == 0:
            return 0.0 if diff else 1.0
        return float(2 * t.sf(diff / se, self.df))


def pooled_run_noise(sides: Iterable[RunMedians], tests: int) -> RunNoise | None:
    """The machine's run-to-run drift pooled over every cell side with two or more runs; None when none has."""
    excess, df = 0.0, 0
    for runs in sides:
        if runs.logs.size > 1:
            excess += float(((runs.logs - runs.logs.mean()) ** 2).sum())
            excess -= (runs.logs.size - 1) * float(runs.sampling_var.mean())
            df += runs.logs.size - 1
    return RunNoise(math.sqrt(max(excess, 0.0) / df), df, tests) if df else None


# --- pytest-benchmark's statistics (bench.pytest_benchmark): its own definitions, so `pytest-benchmark compare`
# shows the same figures for exported harness runs as for its own saved runs ---

def quartiles(sorted_data: list[float]) -> tuple[float, float]:
    """Q1 and Q3 as pytest-benchmark computes them (Wikipedia methods 2 and 3), so exported stats match its own."""
    n = len(sorted_data)
    if n == 1:
        return sorted_data[0], sorted_data[0]
    if n % 2:
        k, r = n // 4, n % 4
        if r == 1:
            return (0.25 * sorted_data[k - 1] + 0.75 * sorted_data[k],
                    0.75 * sorted_data[3 * k] + 0.25 * sorted_data[3 * k + 1])
        return (0.75 * sorted_data[k] + 0.25 * sorted_data[k + 1],
                0.25 * sorted_data[3 * k + 1] + 0.75 * sorted_data[3 * k + 2])
    return statistics.median(sorted_data[: n // 2]), statistics.median(sorted_data[n // 2:])


def pytest_benchmark_stats(samples: list[float]) -> dict:
    """pytest-benchmark's Stats fields (min, quartiles, outliers, ops, ...) from raw samples in seconds."""
    data = [float(x) for x in samples]
    s = sorted(data)
    n = len(s)
    mean = statistics.fmean(s)
    std = statistics.stdev(s) if n > 1 else 0.0
    q1, q3 = quartiles(s)
    iqr = q3 - q1
    lo, hi = q1 - 1.5 * iqr, q3 + 1.5 * iqr
    std_out = sum(1 for x in s if x < mean - std or x > mean + std)
    iqr_out = sum(1 for x in s if x < lo or x > hi)
    total = sum(s)
    return {
        "min": s[0], "max": s[-1], "mean": mean, "stddev": std, "rounds": n, "median": statistics.median(s),
        "iqr": iqr, "q1": q1, "q3": q3, "iqr_outliers": iqr_out, "stddev_outliers": std_out,
        "outliers": f"{std_out};{iqr_out}",
        "ld15iqr": s[0] if n == 1 else s[bisect_left(s, lo)],
        "hd15iqr": s[-1] if n == 1 else s[bisect_right(s, hi) - 1],
        "ops": n / total if total else 0.0, "total": total, "data": data, "iterations": 1,
    }
