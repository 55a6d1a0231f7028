"""Timing loop shared by every suite: warm-up, then at least N iterations AND T seconds."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    warmup_iters: int
    warmup_s: float
    min_iters: int
    min_time_s: float
    max_time_s: float


def measure(fn: Callable[[], object], budget: Budget) -> list[float]:
    """Seconds per call of `fn`. GC is paused while timing (as timeit does) so collections of other
    objects do not land inside samples; the loop stops at max_time_s even if min_iters is not reached."""
    clock = time.perf_counter
    start = clock()
    n = 0
    while n < budget.warmup_iters or clock() - start < budget.warmup_s:
        fn()
        n += 1
    samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        while True:
            t0 = clock()
            fn()
            t1 = clock()
            samples.append(t1 - t0)
            elapsed = t1 - start
            if (len(samples) >= budget.min_iters and elapsed >= budget.min_time_s) or (
                    elapsed >= budget.max_time_s and len(samples) >= 2):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples
