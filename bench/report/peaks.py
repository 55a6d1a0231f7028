"""GEMM peaks per machine and precision kind, as the records carry them: the yardstick of `%_of_peak`."""

from __future__ import annotations

from bench.records import Record

PEAK_KIND = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "int8": "int8", "int8-static": "int8"}  # precision ->


def machine_peaks(records: list[Record]) -> dict[tuple[str, str], float]:
    """GEMM peak per (machine, precision kind): the best of the measurements its records carry. fp32 is the
    better of numpy's (`gemm_peak`) and ONNX Runtime's MatMul (`gemm_peaks`: a BLAS that does not know the CPU
    runs older kernels), bf16/fp16/int8 the frameworks' where the CPU runs them natively (`gemm_peaks`). Each
    environment measures once at its start, and a busy moment only lowers a measurement (one environment can
    measure half of what the others do), so the best is the peak."""
    peaks: dict[tuple[str, str], float] = {}

    def add(machine: str, kind: str, entry) -> None:
        gflops = (entry or {}).get("gflops") if isinstance(entry, dict) else None
        if isinstance(gflops, int | float):
            peaks[machine, kind] = max(peaks.get((machine, kind), 0.0), float(gflops))

    for r in records:
        env = r.environment or {}
        machine = env.get("machine") or "unknown"
        add(machine, "fp32", env.get("gemm_peak"))
        for kind, entry in (env.get("gemm_peaks") or {}).items():
            if kind in PEAK_KIND.values():
                add(machine, kind, entry)
    return peaks


def peak_line(peaks: dict[tuple[str, str], float], machine: str) -> str:
    """'fp32 212, bf16 540, int8 1210 GOP/s' for one machine, in the kinds' order."""
    kinds = [k for k in dict.fromkeys(PEAK_KIND.values()) if (machine, k) in peaks]
    return ", ".join(f"{k} {peaks[machine, k]:.0f}" for k in kinds) + " GFLOP/s (int8: GOP/s)" if kinds else "—"
