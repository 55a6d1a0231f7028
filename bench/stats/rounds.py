"""Interleaved rounds (bench/rounds.py) and the live gate (bench/gate/live.py): ratios between variants measured in
the same minutes, and what the worker processes that measured them contribute."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatioInterval:
    """A ratio between two sides: `ratio` is the geometric mean of the per-round ratios, [low, high] its
    confidence interval (t-interval on the log ratios; from process_ratio, on the processes' mean logs), `rounds`
    how many rounds both sides (every process) completed."""

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
    """numerator / denominator when each side ran in several worker processes, all measured in the same rounds (the
    live gate's sides): each process's mean log round median over the rounds every process completed, then a
    two-sample t-test and t-interval on those process means (df = both sides' processes - 2). A process carries
    its own offset through all its rounds (benchmarks/process_offsets.py), which a test over rounds of one
    process per side would take for a real change; here the offsets are the error term. Round effects cancel
    because every process has every shared round. None without two processes a side or two shared rounds;
    returns (interval, p)."""
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
