"""Batch-1 latency at a fixed sequence length: warm-up, then at least N iterations AND T seconds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.flops import forward_flops
from bench.stats import summarize
from bench.timing import Budget, measure
from bench.tokenizer import filled_text
from bench.weights import safetensors_shapes
from suites.base import Suite, SuiteResult


@dataclass(frozen=True)
class LatencySettings:
    """[latency]: batch-1 latency at each sequence length, each timed for at least min_iters AND min_time_s."""

    seq_lens: tuple[int, ...] = (32, 128, 384)
    warmup_iters: int = 3
    warmup_s: float = 1.0
    min_iters: int = 20
    min_time_s: float = 5.0
    max_time_s: float = 60.0


def forward_inputs(adapter, cell) -> tuple[Callable[[], object], dict]:
    """adapter.forward on `cell.batch` real texts filling `cell.seq_len` tokens (encoded once), and its FLOPs."""
    text = filled_text()
    batch = adapter.encode([text] * cell.batch, max_length=cell.seq_len)
    if batch.shape != (cell.batch, cell.seq_len):
        raise ValueError(f"encoded shape {batch.shape} != requested {(cell.batch, cell.seq_len)}")
    art = adapter.artifact
    flops = forward_flops(safetensors_shapes(art.path / "model.safetensors"), art.config, cell.batch,
                          cell.seq_len)
    return (lambda: adapter.forward(batch)), {"flops": flops}


class Timed(Suite):
    """A suite measured in time: the same inputs, budget and numbers whether its cell runs alone or in rounds."""

    timed = True

    def budget(self, settings) -> Budget:
        """From the settings' five budget fields (each timed suite declares them, with its own defaults)."""
        return Budget(settings.warmup_iters, settings.warmup_s, settings.min_iters, settings.min_time_s,
                      settings.max_time_s)

    def inputs(self, adapter, cell):
        return forward_inputs(adapter, cell)

    def run(self, adapter, cell, settings) -> SuiteResult:
        fn, extra = self.inputs(adapter, cell)
        return self.from_samples(cell, measure(fn, self.budget(settings)), extra)


class Latency(Timed):
    name = "latency"
    settings_type = LatencySettings

    def shapes(self, settings: LatencySettings, scope) -> list[tuple[int, int]]:
        return [(1, n) for n in scope.keep("seq_lens", settings.seq_lens)]

    def seq_lens(self, settings: LatencySettings) -> tuple[int, ...]:
        return settings.seq_lens

    def summary(self, cell, metrics: dict, runtime: dict) -> str:
        return f"p50 {metrics['p50_ms']:.2f} ms (cv {100 * metrics['cv']:.1f}%, n={metrics['n']})"

    def from_samples(self, cell, samples: list[float], extra: dict) -> SuiteResult:
        stats = summarize(samples)
        gflops = extra["flops"] / (stats["p50_ms"] / 1e3) / 1e9
        return SuiteResult(stats | extra | {"gflops_per_s": gflops}, {"latency_s": list(samples)})


SUITE = Latency()
