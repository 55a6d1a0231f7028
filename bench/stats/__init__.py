"""The one statistics package, numpy and scipy only, no I/O: callers pick the records and pass arrays. `samples`:
summaries of raw timing samples, comparisons with the reference configuration, the stored-baseline gate's tests and
pytest-benchmark's statistics; `rounds`: interleaved rounds and the live gate; `accuracy`: paired accuracy changes.
Everything is importable from here (`from bench import stats; stats.paired_ratio(...)`)."""

from bench.stats.accuracy import (
    PairedChange,
    headline_metric,
    paired_change,
)
from bench.stats.rounds import (
    ProcessEffects,
    RatioInterval,
    paired_log_test,
    paired_ratio,
    process_effects,
    process_ratio,
    round_medians,
)
from bench.stats.samples import (
    RunMedians,
    RunNoise,
    accuracy_floor,
    change_points,
    cv_percent,
    drop_points,
    mann_whitney_p,
    min_p_value,
    nonzero_pct,
    pareto_front,
    percent_of_peak,
    points,
    pooled_run_noise,
    pytest_benchmark_stats,
    quartiles,
    relative_change_pct,
    relative_drop_pct,
    speedup,
    summarize,
    within_budget,
)

__all__ = [
    "PairedChange",
    "ProcessEffects",
    "RatioInterval",
    "RunMedians",
    "RunNoise",
    "accuracy_floor",
    "change_points",
    "cv_percent",
    "drop_points",
    "headline_metric",
    "mann_whitney_p",
    "min_p_value",
    "nonzero_pct",
    "paired_change",
    "paired_log_test",
    "paired_ratio",
    "pareto_front",
    "percent_of_peak",
    "points",
    "pooled_run_noise",
    "process_effects",
    "process_ratio",
    "pytest_benchmark_stats",
    "quartiles",
    "relative_change_pct",
    "relative_drop_pct",
    "round_medians",
    "speedup",
    "summarize",
    "within_budget",
]
