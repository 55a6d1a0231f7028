"""GEMM peaks, the yardstick of %_of_peak: every installed runtime that measures them is asked, the best of each
precision is kept with who measured it, and ONNX Runtime's MatMul gives an fp32 figure that does not depend on
the BLAS knowing the CPU."""

from __future__ import annotations

import pytest

from bench.environment import native_support
from bench.local import precision_peaks
from bench.runtimes import RUNTIMES, Runtime, register


def slow(threads):
    return {"fp32": {"gflops": 100.0}, "int8": {"gflops": 900.0}, "skipped": {"bf16": "no native bf16"}}


def fast(threads):
    return {"fp32": {"gflops": 250.0}}


def broken(threads):
    raise RuntimeError("no kernel")


@pytest.fixture
def yardsticks(monkeypatch):
    names = []
    for name, fn in (("slowblas", "slow"), ("fastmlas", "fast"), ("broken", "broken")):
        monkeypatch.setitem(RUNTIMES, name, RUNTIMES.get(name))
        register(Runtime(name, "x:Y", "x", (), {"cpu": ("fp32",)}, peaks=f"tests.test_peaks:{fn}"))
        names.append(name)
    return tuple(names)


def test_the_best_measurement_of_each_precision_is_kept_with_the_runtime_that_made_it(yardsticks):
    peaks = precision_peaks(yardsticks, threads=2)
    assert peaks["fp32"] == {"gflops": 250.0, "by": "fastmlas"}
    assert peaks["int8"] == {"gflops": 900.0, "by": "slowblas"}
    assert peaks["skipped"] == {"slowblas bf16": "no native bf16"}


def test_a_yardstick_that_fails_loses_its_own_figures_only(yardsticks):
    peaks = precision_peaks(yardsticks, threads=2)
    assert "broken: RuntimeError: no kernel" in peaks["error"] and peaks["fp32"]["by"] == "fastmlas"


@pytest.mark.torch
def test_onnx_runtimes_matmul_measures_fp32_and_int8_only_where_the_cpu_has_vnni():
    pytest.importorskip("onnxruntime")
    from adapters.ort_peak import measure

    peaks = measure(threads=1, n=256, repeats=2)
    assert peaks["fp32"]["gflops"] > 0 and "MatMul" in peaks["fp32"]["op"]
    assert ("int8" in peaks) == bool(native_support("int8"))
