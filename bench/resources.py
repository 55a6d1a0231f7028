"""What a variant costs besides its steady-state speed: the worker's resident memory, the model's size on disk, and
the time from nothing to its first answer (load, per-shape initialisation, first forward), measured the same way
for every runtime in the worker processes (bench/worker.py, bench/rounds_worker.py). Framework-free.

Record fields (under `runtime`):
  memory  = {"rss_after_load_bytes", "rss_after_first_bytes", "peak_rss_bytes", "source"}: peak is the process's
            high-water mark (VmHWM) when the record was written, i.e. after the cell's suite ran.
  startup = {"load_s", "prepare_s", "first_forward_s", "first_inference_s", "shape"}: load is `adapter.load`
            (reading the weights, quantizing, compiling an engine where the runtime compiles at load), prepare the
            first `encode` of STARTUP_SHAPE (where a runtime compiles per shape: DeepSparse), first_forward the first
            call (where torch.compile compiles); first_inference is their sum.
  model_disk_bytes: the size of the files the adapter read its model from.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

STARTUP_SHAPE = (1, 128)  # (batch, seq_len) of the first forward: the latency suite's shape


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def rss_bytes() -> int | None:
    """Resident memory now (VmRSS)."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> tuple[int, str]:
    """The process's resident high-water mark: VmHWM where /proc has it, else ru_maxrss (KiB on Linux, bytes on
    macOS); with the source's name."""
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024, "VmHWM"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak if sys.platform == "darwin" else peak * 1024), "ru_maxrss"


def memory_now(after_load: int | None, after_first: int | None) -> dict:
    peak, source = peak_rss_bytes()
    return {"rss_after_load_bytes": after_load, "rss_after_first_bytes": after_first, "peak_rss_bytes": peak,
            "source": source}


def disk_bytes(paths) -> int | None:
    """Total size of the model files (a directory counts its files); None if there are none or one is missing."""
    total, seen = 0, False
    for p in map(Path, paths or ()):
        files = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p]
        for f in files:
            try:
                total += f.stat().st_size
                seen = True
            except OSError:
                return None
    return total if seen else None


class Startup:
    """Times the phases up to the first answer; `load` wraps adapter.load, `first` runs encode + forward once."""

    def __init__(self) -> None:
        self.load_s: float | None = None
        self.prepare_s: float | None = None
        self.first_forward_s: float | None = None
        self.rss_after_load: int | None = None
        self.rss_after_first: int | None = None
        self.shape: tuple[int, int] | None = None

    def load(self, adapter, *args) -> None:
        t0 = time.perf_counter()
        adapter.load(*args)
        self.load_s = time.perf_counter() - t0
        self.rss_after_load = rss_bytes()

    def first(self, adapter, texts: list[str], shape: tuple[int, int] = (0, 0)) -> None:
        """Once per process: encode `shape` (a cell's (batch, seq_len); STARTUP_SHAPE for a cell without one) from
        real sentences, then forward once. Called by the first cell that runs the model, inside that cell, so a
        crash or hang here fails that cell as its own forward would."""
        if self.first_forward_s is not None:
            return
        batch, seq_len = shape if shape[0] > 0 and shape[1] > 0 else STARTUP_SHAPE
        self.shape = (batch, seq_len)
        t0 = time.perf_counter()
        encoded = adapter.encode([texts[i % len(texts)] for i in range(batch)], max_length=seq_len, pad_to_max=True)
        t1 = time.perf_counter()
        adapter.forward(encoded)
        t2 = time.perf_counter()
        self.prepare_s, self.first_forward_s = t1 - t0, t2 - t1
        self.rss_after_first = rss_bytes()

    def fields(self, adapter) -> dict:
        """The record fields for `runtime` (see the module docstring)."""
        parts = (self.load_s, self.prepare_s, self.first_forward_s)
        startup = {"load_s": self.load_s, "prepare_s": self.prepare_s, "first_forward_s": self.first_forward_s,
                   "first_inference_s": sum(parts) if None not in parts else None,
                   "shape": list(self.shape) if self.shape else None}
        return {"startup": startup, "memory": memory_now(self.rss_after_load, self.rss_after_first),
                "model_disk_bytes": disk_bytes(getattr(adapter, "model_files", ()))}
