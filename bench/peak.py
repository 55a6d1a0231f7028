"""This machine's fp32 GEMM peak, measured by the harness itself: the yardstick for the GFLOP/s % column."""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits


def gemm_peak_gflops(threads: int, n: int = 2048, repeats: int = 8) -> dict:
    """Best-of-`repeats` GFLOP/s of an n×n fp32 matmul on numpy's BLAS with `threads` threads."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b  # warm-up: thread pool start, page faults
        best = min(_time(lambda: a @ b) for _ in range(repeats))
    return {"gflops": 2 * n**3 / best / 1e9, "n": n, "threads": threads, "repeats": repeats}


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
