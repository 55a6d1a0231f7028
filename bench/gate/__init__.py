"""Regression gate: compare two result sets cell by cell and say whether NEW is worse than BASE.

A change is a regression only when it is both beyond its threshold and significant (bench.gate.judge says
how, with repeated runs too). The parts: `rules` (thresholds per cell, from defaults, a TOML file and CLI
flags), `change` (verdicts, one Change per metric, the Comparison), `judge` (matching cells and reaching
verdicts; the tests are in bench.stats), `render` (the Markdown table). Baselines are stored by bench.store.

The names below are the gate's interface for the CLI, the report and the tests.
"""

from bench.gate.change import (
    ACCURACY,
    ACCURACY_METRICS,
    BAD_VERDICTS,
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
    VERDICT_ORDER,
    WITHIN,
    WITHIN_NOISE,
    Change,
    Comparison,
)
from bench.gate.judge import as_runs, compare, judge, machines_of, run_noise
from bench.gate.render import LEGEND, SHOW_ALL_UP_TO
from bench.gate.rules import THRESHOLD_KEYS, Override, Rules, Thresholds, load_rules
from bench.store import KEEP_RUNS, Run, baseline_dir, load_baseline, store_baseline

__all__ = [
    "ACCURACY",
    "ACCURACY_METRICS",
    "BAD_VERDICTS",
    "FAILED_IN_NEW",
    "FIXED_IN_NEW",
    "IMPROVED",
    "KEEP_RUNS",
    "LATENCY",
    "LEGEND",
    "MISSING_IN_NEW",
    "NOT_SIGNIFICANT",
    "NO_SAMPLES",
    "REGRESSION",
    "SHOW_ALL_UP_TO",
    "SKIPPED_IN_NEW",
    "THRESHOLD_KEYS",
    "THROUGHPUT",
    "TOO_FEW",
    "VERDICT_ORDER",
    "WITHIN",
    "WITHIN_NOISE",
    "Change",
    "Comparison",
    "Override",
    "Rules",
    "Run",
    "Thresholds",
    "as_runs",
    "baseline_dir",
    "compare",
    "judge",
    "load_baseline",
    "load_rules",
    "machines_of",
    "run_noise",
    "store_baseline",
]
