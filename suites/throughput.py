"""Throughput at one batch size (the plan sweeps batch sizes as separate cells): sequences/s, tokens/s."""

from __future__ import annotations

from bench.stats import summarize
from bench.timing import Budget
from suites import SuiteResult
from suites.latency import timed_forward


def run(adapter, cell, settings: dict) -> SuiteResult:
    s = settings["throughput"]
    budget = Budget(s["warmup_iters"], s["warmup_s"], s["min_iters"], s["min_time_s"], s["max_time_s"])
    samples, extra = timed_forward(adapter, cell, budget)
    stats = summarize(samples)
    seconds = stats["p50_ms"] / 1e3
    return SuiteResult(stats | extra | {
        "sequences_per_s": cell.batch / seconds,
        "tokens_per_s": cell.batch * cell.seq_len / seconds,
        "gflops_per_s": extra["flops"] / seconds / 1e9,
    }, {"batch_s": samples})
