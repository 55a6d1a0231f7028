"""Where a number came from: CPU model and flags, cores, memory, GPU, library versions, git commit."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

import psutil

INTERESTING_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni",
                     "avx_vnni", "amx_bf16", "amx_fp16", "amx_int8", "amx_tile", "sse4_2")
LIBRARIES = ("numpy", "pandas", "tokenizers", "safetensors", "torch", "transformers", "onnx", "onnxruntime",
             "onnxruntime-gpu", "deepsparse", "mxnet", "gluonnlp")
REPO = Path(__file__).resolve().parent.parent

# Runtime telemetry off and no hub access at run time: a benchmark never phones home, nor fetches at run time.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "NM_DISABLE_ANALYTICS": "1", "ORT_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
               "TOKENIZERS_PARALLELISM": "false",
               # NNCF sends telemetry unless a consent file says no or this is set (its CI switch: a no-op stub)
               "NNCF_CI": "1",
               # Ray's usage statistics report (--executor ray)
               "RAY_USAGE_STATS_ENABLED": "0"}


def apply_offline_env() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


@functools.cache
def cpu_info() -> dict:
    model, flags, cpuid = platform.processor() or platform.machine(), set(), {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name":
                model = value.strip()
            elif key == "flags":
                flags = set(value.split())
            elif key in ("cpu family", "model", "stepping") and key not in cpuid:
                cpuid[key] = value.strip()
    except OSError:
        pass
    return {
        "model": model,
        "arch": platform.machine(),
        # family/model/stepping: a VM may name every host CPU alike ("AMD EPYC") across generations
        "cpuid": "/".join(cpuid.get(k, "?") for k in ("cpu family", "model", "stepping")) if cpuid else None,
        "flags": sorted(f for f in INTERESTING_FLAGS if f in flags),
        "physical_cores": psutil.cpu_count(logical=False) or os.cpu_count(),
        "logical_cores": os.cpu_count(),
        "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
    }


@functools.cache
def gpus() -> list[dict]:
    """CUDA GPUs seen by the driver (nvidia-smi), without importing a framework."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    rows = [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]
    return [{"name": r[0], "memory": r[1], "driver": r[2]} for r in rows if len(r) == 3]


def has_cuda_gpu() -> bool:
    return bool(gpus())


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


@functools.cache
def git_commit() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def machine_fingerprint() -> str:
    """Stable id of the hardware a number is valid for."""
    return fingerprint(cpu_info(), [g["name"] for g in gpus()])


def fingerprint(cpu: dict, gpu_names: list[str]) -> str:
    """CPU model, family/model/stepping and ISA flags, cores, memory, GPUs. The flags and cpuid matter: a cloud
    VM can report the same model name ("AMD EPYC") on an AVX2 host one day and an AVX-512 one the next, and
    speed, INT8/bf16 kernels and even predictions differ between them."""
    ident = [cpu["model"], cpu["arch"], cpu.get("cpuid"), sorted(cpu.get("flags", [])), cpu["physical_cores"],
             cpu["logical_cores"], round(cpu["memory_gib"]), sorted(gpu_names)]
    return hashlib.sha256(repr(ident).encode()).hexdigest()[:12]


# The CPU flags that give a precision native kernels (oneDNN, MLAS, fbgemm pick them); without them bf16/fp16 are
# emulated, slower than fp32, and int8 GEMMs lose the VNNI/AMX dot-product instructions.
NATIVE_FLAGS = {"bf16": ("avx512_bf16", "amx_bf16"), "fp16": ("avx512_fp16", "amx_fp16"),
                "int8": ("avx512_vnni", "avx_vnni", "amx_int8")}


def native_support(precision: str) -> list[str]:
    """The flags of this CPU that run `precision` natively ([] = emulated or missing)."""
    return sorted(set(cpu_info()["flags"]) & set(NATIVE_FLAGS.get(precision, ())))


def isa_summary(flags) -> str:
    """The instruction-set support that decides which kernels a runtime can pick, in words."""
    flags = set(flags or ())
    def yes(*names: str) -> str:
        return "yes" if flags & set(names) else "no"
    return (f"AVX2 {yes('avx2')}, AVX-512 {yes('avx512f')}, VNNI {yes('avx512_vnni', 'avx_vnni')}, "
            f"bf16 {yes('avx512_bf16', 'amx_bf16')}, fp16 {yes('avx512_fp16', 'amx_fp16')}, "
            f"AMX {yes('amx_tile')}" + (f" (bf16 {yes('amx_bf16')}, int8 {yes('amx_int8')})" if 'amx_tile' in flags
                                        else ""))


def describe() -> dict:
    """The environment block of a record."""
    return {
        "machine": machine_fingerprint(),
        "hostname": platform.node(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "gpus": gpus(),
        "libraries": library_versions(),
        "git": git_commit(),
    }
