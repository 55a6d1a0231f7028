"""Batch-1 latency at a fixed sequence length: warm-up, then at least N iterations AND T seconds."""

from __future__ import annotations

from bench.flops import forward_flops
from bench.stats import summarize
from bench.timing import Budget, measure
from bench.tokenizer import filled_text
from bench.weights import safetensors_shapes
from suites import SuiteResult


def timed_forward(adapter, cell, budget: Budget) -> tuple[list[float], dict]:
    """Samples (s) of adapter.forward on `cell.batch` real texts filling `cell.seq_len` tokens, plus FLOPs."""
    text = filled_text()
    batch = adapter.encode([text] * cell.batch, max_length=cell.seq_len)
    if batch.shape != (cell.batch, cell.seq_len):
        raise ValueError(f"encoded shape {batch.shape} != requested {(cell.batch, cell.seq_len)}")
    samples = measure(lambda: adapter.forward(batch), budget)
    art = adapter.artifact
    flops = forward_flops(safetensors_shapes(art.path / "model.safetensors"), art.config, cell.batch,
                          cell.seq_len)
    return samples, {"flops": flops}


def run(adapter, cell, settings: dict) -> SuiteResult:
    s = settings["latency"]
    budget = Budget(s["warmup_iters"], s["warmup_s"], s["min_iters"], s["min_time_s"], s["max_time_s"])
    samples, extra = timed_forward(adapter, cell, budget)
    stats = summarize(samples)
    extra["gflops_per_s"] = extra["flops"] / (stats["p50_ms"] / 1e3) / 1e9
    return SuiteResult(stats | extra, {"latency_s": samples})
