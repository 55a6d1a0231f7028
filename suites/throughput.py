"""Throughput at one batch size (the plan sweeps batch sizes as separate cells): sequences/s, tokens/s."""

from __future__ import annotations

from dataclasses import dataclass

from bench.stats import summarize
from suites.base import SuiteResult
from suites.latency import Timed


@dataclass(frozen=True)
class ThroughputSettings:
    """[throughput]: one cell per batch size at `seq_len`, each timed for at least min_iters AND min_time_s."""

    seq_len: int = 128
    batches: tuple[int, ...] = (1, 8, 32)
    warmup_iters: int = 1
    warmup_s: float = 0.0
    min_iters: int = 3
    min_time_s: float = 3.0
    max_time_s: float = 60.0


class Throughput(Timed):
    name = "throughput"
    settings_type = ThroughputSettings

    def shapes(self, settings: ThroughputSettings, scope) -> list[tuple[int, int]]:
        return [(b, settings.seq_len) for b in scope.keep("batches", settings.batches)]

    def seq_lens(self, settings: ThroughputSettings) -> tuple[int, ...]:
        return (settings.seq_len,)

    def summary(self, cell, metrics: dict, runtime: dict) -> str:
        return f"{metrics['sequences_per_s']:.1f} seq/s, {metrics['tokens_per_s']:.0f} tok/s"

    def from_samples(self, cell, samples: list[float], extra: dict) -> SuiteResult:
        stats = summarize(samples)
        seconds = stats["p50_ms"] / 1e3
        return SuiteResult(stats | extra | {
            "sequences_per_s": cell.batch / seconds,
            "tokens_per_s": cell.batch * cell.seq_len / seconds,
            "gflops_per_s": extra["flops"] / seconds / 1e9,
        }, {"batch_s": list(samples)})


SUITE = Throughput()
