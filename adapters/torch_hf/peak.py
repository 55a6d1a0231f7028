"""This machine's bf16, fp16 and int8 GEMM peaks through torch (oneDNN / MKL / fbgemm pick the kernels: AMX, AVX512-
BF16/FP16, VNNI), so a bf16 or INT8 row is held against what this CPU does at its own precision, not against fp32.

Measured only where the CPU has native support (the flags of bench/environment.py): emulated bf16/fp16 runs at a
fraction of fp32 and would make every row look good.
"""

from __future__ import annotations

import time

import torch

from bench.environment import NATIVE_FLAGS, native_support

SLOW_S = 1.0  # a native 2048^3 GEMM takes < 0.1 s on two cores; emulated bf16 took 40 s


def measure(threads: int, n: int = 2048, repeats: int = 8) -> dict[str, dict]:
    """{precision: {"gflops" (GOP/s for int8), "n", "threads", "repeats", "op", "isa"}} for each precision this
    CPU runs natively; a precision without native support is absent, with the reason under "skipped"."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    out: dict[str, dict] = {}
    skipped = {}
    try:
        gen = torch.Generator().manual_seed(0)
        for precision, needs in NATIVE_FLAGS.items():
            have = native_support(precision)
            if not have:
                skipped[precision] = f"no native {precision} on this CPU (none of {', '.join(needs)})"
                continue
            if precision == "int8":
                a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=gen)
                op, fn = "torch._int_mm (int8 x int8 -> int32)", torch._int_mm
            else:
                a = torch.randn(n, n, generator=gen).to(torch.bfloat16 if precision == "bf16" else torch.float16)
                op, fn = f"torch.mm ({precision})", torch.mm
            b = a.clone()
            with torch.inference_mode():
                warm = _time(lambda a=a, b=b, fn=fn: fn(a, b))  # kernel JIT, thread pool, page faults
                if warm > SLOW_S:  # a cap (ONEDNN_MAX_CPU_ISA) or a library without the kernel: emulated
                    skipped[precision] = (f"{op} took {warm:.1f} s at n={n} ({2 * n**3 / warm / 1e9:.1f} GFLOP/s): "
                                          "not a native kernel here")
                    continue
                best = min(_time(lambda a=a, b=b, fn=fn: fn(a, b)) for _ in range(repeats))
            out[precision] = {"gflops": 2 * n**3 / best / 1e9, "n": n, "threads": threads, "repeats": repeats,
                              "op": op, "isa": have, "torch": torch.__version__}
    finally:
        torch.set_num_threads(old)
    if skipped:
        out["skipped"] = skipped
    return out


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
