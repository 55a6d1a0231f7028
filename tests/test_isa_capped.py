"""The export → reference → parity path and a small end-to-end plan under capped instruction sets, so an
agreement criterion that holds on one CPU only fails here, not on a user's machine.

torch honours ATEN_CPU_CAPABILITY (its own kernels) and ONEDNN_MAX_CPU_ISA (oneDNN: bf16/int8 matmuls); MKL, which
runs torch's fp32 Linear layers, honours MKL_CBWR=COMPATIBLE everywhere but its AVX2/AVX512 branches only on Intel
CPUs (MKL_VERBOSE shows CNR:AUTO on AMD). ONNX Runtime's MLAS cannot be capped, so each level pairs torch kernels
of another instruction set with ORT's, as on a different CPU. Each level builds its own artifacts, exports and
reference in a fresh cache under the cap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import needs_torch

pytestmark = needs_torch

LEVELS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "MKL_CBWR": "AVX2"},
    "baseline-x86-64": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"},
    "avx512-no-vnni-bf16": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
}
ATEN_NAMES = {"avx2": "AVX2", "default": "DEFAULT", "avx512": "AVX512"}


def _flags() -> set[str]:
    from bench.environment import cpu_info

    return set(cpu_info()["flags"])


def _python(code: str, env: dict) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env=os.environ | env, capture_output=True, text=True,
                          timeout=120, check=True)
    return proc.stdout + proc.stderr


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86 instruction-set caps")
@pytest.mark.parametrize("cap", ["default", "avx2", "avx512"])
def test_the_pinned_torch_honours_aten_cpu_capability(cap):
    if cap == "avx512" and "avx512f" not in _flags():
        pytest.skip("this CPU has no AVX-512: ATen cannot be raised above what it has")
    out = _python("import torch; print(torch.backends.cpu.get_cpu_capability())", {"ATEN_CPU_CAPABILITY": cap})
    assert out.strip().splitlines()[-1] == ATEN_NAMES[cap]


@pytest.mark.skipif("avx512f" not in _flags(), reason="needs an AVX-512 CPU to see oneDNN capped below it")
def test_the_pinned_torch_honours_onednn_max_cpu_isa():
    code = ("import torch\nx = torch.randn(8, 64).bfloat16()\nw = torch.nn.Linear(64, 64).bfloat16()\n"
            "with torch.inference_mode(): w(x)")
    native = _python(code, {"ONEDNN_VERBOSE": "1"})
    capped = _python(code, {"ONEDNN_VERBOSE": "1", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"})
    isa = [line for line in capped.splitlines() if ",isa:" in line]
    assert isa and "bfloat16" not in isa[0] and "AVX-512" in isa[0]
    if "avx512_bf16" in _flags():  # natively the bf16 kernel; capped, not
        assert "avx512_core_bf16" in native and "avx512_core_bf16" not in capped


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86 instruction-set caps")
@pytest.mark.parametrize("level", list(LEVELS))
def test_export_reference_and_parity_agree_under_a_capped_instruction_set(tmp_path, level):
    """A small plan (BERT-Tiny shape, dense and pruned90, torch and ONNX Runtime fp32: params, latency, parity)
    built and run end to end with torch capped: exports pass their check, every fp32 parity cell is within the
    default criterion, the run exits 0, and the records say which ATen capability ran."""
    env = LEVELS[level]
    if env["ATEN_CPU_CAPABILITY"] == "avx512" and "avx512f" not in _flags():
        pytest.skip("this CPU has no AVX-512")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", "--preset", "smoke", "--runtimes", "torch,onnxruntime",
         "--precisions", "fp32", "--suites", "params,latency,parity", "--seq-lens", "16", "--out", str(out),
         "--no-report"],
        env=os.environ | env | {"BENCH_CACHE": str(tmp_path / "cache")}, capture_output=True, text=True,
        timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert records and all(r["status"] == "ok" for r in records), [r.get("reason") for r in records]
    parity = [r for r in records if r["cell"]["suite"] == "parity"]
    assert len(parity) == 4
    for r in parity:
        m = r["metrics"]
        assert m["within_tolerance"], m
        assert m["criterion"] == {"rel_tol": 1e-4, "min_cosine": 0.999999, "scale": "max|ref|"}
        assert m["scaled_max_diff"] == pytest.approx(m["max_abs_diff"] / m["ref_max_abs"])
    torch_rows = [r for r in records if r["cell"]["runtime"] == "torch"]
    assert {r["runtime"]["cpu_capability"] for r in torch_rows} == {ATEN_NAMES[env["ATEN_CPU_CAPABILITY"]]}
