"""The one statistics module: summaries of raw timing samples (kept in every record, so recomputable),
comparisons with the reference configuration, the regression gate's tests and pytest-benchmark's statistics.
numpy and scipy only, no I/O: callers pick the records and pass arrays."""

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


# --- interleaved rounds (bench/rounds.py): ratios between rows measured in the same minutes ---

@dataclass(frozen=True)
class RatioInterval:
    """A paired ratio over rounds: `ratio` is the geometric mean of the per-round ratios, [low, high] its
    confidence interval (t-interval on the log ratios), `rounds` how many rounds both sides completed."""

    ratio: float
    low: float
    high: float
    rounds: int

    def overlaps(self, other: RatioInterval) -> bool:
        return self.low <= other.high and other.low <= self.high


def round_medians(samples: Sequence[float], rounds: Sequence[int]) -> dict[int, float]:
    """Median of each round's samples of one cell (a round is one block: a few consecutive iterations)."""
    values, index = np.asarray(samples, dtype=float), np.asarray(rounds)
    return {int(r): float(np.median(values[index == r])) for r in np.unique(index)}


def paired_ratio(numerator: dict[int, float], denominator: dict[int, float],
                 confidence: float = 0.95) -> RatioInterval | None:
    """numerator / denominator over the rounds both have (e.g. reference latency / row latency = the row's
    speed-up): each round's ratio shares that round's machine state, so drift between rounds cancels. None when
    no round is shared; a single round gives its ratio with an unbounded interval."""
    from scipy import stats

    common = sorted(set(numerator) & set(denominator))
    if not common:
        return None
    logs = np.log([numerator[r] / denominator[r] for r in common])
    centre = float(np.exp(logs.mean()))
    if len(logs) < 2:
        return RatioInterval(centre, 0.0, math.inf, len(logs))
    half = float(stats.t.ppf(0.5 + confidence / 2, len(logs) - 1) * logs.std(ddof=1) / math.sqrt(len(logs)))
    return RatioInterval(centre, float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half)), len(logs))


def paired_log_test(base: dict[int, float], new: dict[int, float]) -> float:
    """Two-sided one-sample t-test p-value of the per-round log ratios new/base against 0: do the two sides
    differ, judged on rounds that share their machine state (the live A/B gate's test)."""
    from scipy import stats

    common = sorted(set(base) & set(new))
    logs = np.log([new[r] / base[r] for r in common])
    if len(logs) < 2 or np.ptp(logs) == 0:
        return 1.0 if len(logs) < 2 or logs[0] == 0 else 0.0
    return float(stats.ttest_1samp(logs, 0.0).pvalue)


@dataclass(frozen=True)
class ProcessEffects:
    """How much of a cell's round-to-round spread belongs to the worker process that measured it (log units)."""

    between_sd: float  # sd of a process's own offset: what every round it measures shares
    within_sd: float  # sd of one round's log median around its process and its round
    f: float
    p: float  # F-test: do the processes differ beyond what the rounds' spread explains?
    processes: int
    rounds: int


def process_effects(log_medians: np.ndarray) -> ProcessEffects:
    """Two-way additive ANOVA of log round medians, processes x rounds (the same variant in several worker
    processes, all measured in every round): rounds carry the machine's shared state, processes their own offset;
    the offset's sd is the method-of-moments variance component (MS_process - MS_error) / rounds, clipped at 0."""
    from scipy import stats

    x = np.asarray(log_medians, dtype=float)
    k, r = x.shape
    if k < 2 or r < 2:
        raise ValueError("need at least 2 processes and 2 rounds")
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    ms_proc = r * float(((x.mean(axis=1) - x.mean()) ** 2).sum()) / (k - 1)
    ms_err = float((resid**2).sum()) / ((k - 1) * (r - 1))
    f = ms_proc / ms_err if ms_err > 0 else math.inf
    return ProcessEffects(math.sqrt(max(ms_proc - ms_err, 0.0) / r), math.sqrt(ms_err), f,
                          float(stats.f.sf(f, k - 1, (k - 1) * (r - 1))), k, r)


def process_ratio(numerator: Sequence[dict[int, float]], denominator: Sequence[dict[int, float]],
                  confidence: float = 0.95) -> tuple[RatioInterval, float] | None:
    """numerator / denominator when each side ran in several worker processes, all measured in the same rounds
    (the live gate's sides): each process's mean log round median over the rounds every process completed, then a
    two-sample t-test and t-interval on those process means (df = processes - 2). A process carries its own offset
    through all its rounds (benchmarks/process_offsets.py), which a test over rounds of one process per side would
    take for a real change; here the offsets are the error term. Round effects cancel because every process has
    every shared round. None without two processes a side or two shared rounds; returns (interval, p)."""
    from scipy import stats

    if len(numerator) < 2 or len(denominator) < 2:
        return None
    common = sorted(set.intersection(*(set(d) for d in (*numerator, *denominator))))
    if len(common) < 2:
        return None
    num = np.array([np.log([d[r] for r in common]).mean() for d in numerator])
    den = np.array([np.log([d[r] for r in common]).mean() for d in denominator])
    diff = float(num.mean() - den.mean())
    if np.ptp(num) == 0 and np.ptp(den) == 0:  # no spread at all (synthetic sides): exact
        return RatioInterval(math.exp(diff), math.exp(diff), math.exp(diff), len(common)), (0.0 if diff else 1.0)
    test = stats.ttest_ind(num, den)
    ci = test.confidence_interval(confidence)
    return RatioInterval(math.exp(diff), math.exp(ci.low), math.exp(ci.high), len(common)), float(test.pvalue)


# --- accuracy on the same dev examples (the glue suite keeps every prediction): paired intervals and tests ---

def headline_metric(name: str, preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A GLUE headline metric (fraction) along the last axis, so a bootstrap scores thousands of resamples in one
    call; tests hold each against scikit-learn/scipy. Binary tasks only for f1 and mcc, as GLUE scores them."""
    from scipy.stats import pearsonr, rankdata

    preds, labels = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if name == "accuracy":
        return (preds == labels).mean(axis=-1)
    if name in ("pearson", "spearman"):
        if name == "spearman":
            preds, labels = rankdata(preds, axis=-1), rankdata(labels, axis=-1)
        with np.errstate(all="ignore"):
            return np.asarray(pearsonr(preds, labels, axis=-1).statistic, dtype=np.float64)
    tp, fp = (preds * labels).sum(-1), (preds * (1 - labels)).sum(-1)
    fn, tn = ((1 - preds) * labels).sum(-1), ((1 - preds) * (1 - labels)).sum(-1)
    with np.errstate(all="ignore"):
        if name == "f1":
            return np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        if name == "mcc":  # scikit-learn's convention: 0 when a marginal is empty
            return np.nan_to_num((tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    raise ValueError(f"unknown GLUE metric {name!r}")


@dataclass(frozen=True)
class PairedChange:
    """A row's headline metric against the reference row's on the same dev examples: the change in points and
    relative (%), each with a paired-bootstrap interval, and for classification McNemar's exact test of the
    examples the two get right/wrong differently (`discordant`)."""

    metric: str
    n: int
    points: float
    low_points: float
    high_points: float
    relative_pct: float
    low_pct: float
    high_pct: float
    mcnemar_p: float | None
    discordant: int | None
    seeds: int = 1  # fine-tuning seeds pooled: n counts (seed, example) pairs, n / seeds dev examples

    def verdict(self, budget_pct: float) -> str:
        """Against a relative-drop budget: "within" (the whole interval), "beyond" (the whole interval) or
        "unresolved" (the dev set cannot tell)."""
        if self.low_pct >= -budget_pct - 1e-9:
            return "within"
        return "beyond" if self.high_pct < -budget_pct - 1e-9 else "unresolved"


def paired_change(metric: str, reference: Sequence[float], new: Sequence[float], labels: Sequence[float],
                  confidence: float = 0.95, resamples: int = 4000, seed: int = 0) -> PairedChange:
    """Bootstrap over dev examples, resampling the same examples for both rows (scipy.stats.bootstrap,
    paired, percentile): the interval reflects how much the *difference* moves with the sample, far narrower
    than two independent intervals when the rows agree on most examples."""
    from scipy.stats import binomtest, bootstrap

    ref, new, y = (np.asarray(a, dtype=np.float64) for a in (reference, new, labels))
    if not (len(ref) == len(new) == len(y)) or len(y) < 2:
        raise ValueError(f"paired change needs predictions of the same examples: {len(ref)}, {len(new)}, {len(y)}")
    base = float(headline_metric(metric, ref, y))
    scale = abs(base) or math.nan

    def change(r, v, lab, axis=-1):
        return headline_metric(metric, v, lab) - headline_metric(metric, r, lab)

    centre = float(change(ref, new, y))
    if np.array_equal(ref, new):
        low = high = 0.0
    else:
        ci = bootstrap((ref, new, y), change, paired=True, vectorized=True, n_resamples=resamples,
                       confidence_level=confidence, method="percentile", batch=500,
                       rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    p = discordant = None
    if metric != "pearson" and metric != "spearman":
        right_ref, right_new = ref == y, new == y
        b, c = int((right_ref & ~right_new).sum()), int((~right_ref & right_new).sum())
        discordant, p = b + c, (float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0)
    return PairedChange(metric, len(y), points(centre), points(low), points(high), 100 * centre / scale,
                        100 * low / scale, 100 * high / scale, p, discordant)
