"""The torch adapter's model through torch.compile (inductor): fp32 and bf16 on CPU, fp32/fp16/bf16 on CUDA.

Compilation is lazy: torch.compile returns at once, and dynamo traces and inductor compiles at the first forward of
each input shape. `forward` times that first call per (batch, seq_len) itself and `info()["compile"]` reports it,
apart from the steady-state numbers: the timed suites warm up before they time (bench/timing.py `measure`; the
interleaved rounds give each cell's first block the whole warm-up), so no timed sample contains a compile, and
`recompiles_after_first_call` says so (0: none did).

Settings, and why:
  backend "inductor", mode default: the compiler people get from `torch.compile(model)`; "max-autotune" trades
      minutes of compile (GEMM template autotuning) for gains that are its own experiment, not this row's.
  dynamic=False: each measured shape gets its own specialised graph (the suites run a few fixed shapes, and static
      shapes are what inductor optimises best); the default would switch to a dynamic-shape graph at the second
      shape and measure something else than the first.
  fullgraph=True: the HF BERT family (BertModel, BertForSequenceClassification) traces without a graph break; a
      break is then an error with its reason instead of a silent split into compiled and eager pieces.
  Inductor config left at its defaults (no freezing, no cpp_wrapper): the out-of-the-box compiler.

A failure to trace or compile (a torch._dynamo.exc.* error, BackendCompilerFailed, anything raised by a shape's
first call) is a CellError with one line: the cell fails with the reason, the worker keeps its process, and the
shape is not tried again. Inductor's CPU code is C++: without the compiler inductor calls, load skips the cell.
Inductor's on-disk cache goes under the bench cache (TORCHINDUCTOR_CACHE_DIR, unless already set): a warm cache
makes a shape's first call a cache load rather than a compile, so `fx_graph_cache` records hit or miss per shape.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback

import numpy as np
import torch
import torch._dynamo

from adapters.base import Batch, Numerics, Options
from adapters.torch_hf.adapter import TorchHFAdapter
from bench.artifacts import Artifact, cache_root
from bench.errors import CellError, CellSkipped

BACKEND, MODE, DYNAMIC, FULLGRAPH = "inductor", None, False, True
CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"

# Dynamo settings for a shape's first call only (the call that compiles; steady-state calls hit a compiled graph and
# read no config): dynamo keeps at most `recompile_limit` (8) graphs per code object and past it falls back to eager
# without an error, which would time eager torch as torch-compile. A plan can ask for more shapes than that (and
# every adapter of a process compiles the same BertModel.forward), so the limit is raised, hitting it is an error,
# and a TORCHDYNAMO_SUPPRESS_ERRORS in the environment cannot turn a failed compile into a silent eager run.
FIRST_CALL_DYNAMO = {"recompile_limit": 256, "fail_on_recompile_limit_hit": True, "suppress_errors": False}


def shape_key(shape: tuple[int, int]) -> str:
    return f"b{shape[0]} s{shape[1]}"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else "(no message)"


def failure_reason(exc: BaseException) -> str:
    """`ExcType: first line`; for BackendCompilerFailed (whose own first line is "backend='inductor' raised:") the
    error inductor raised, after it."""
    reason = f"{type(exc).__name__}: "
    inner = getattr(exc, "inner_exception", None)
    if isinstance(inner, BaseException):
        return reason + f"{type(inner).__name__}: {_first_line(inner)}"
    return reason + _first_line(exc)


def cxx_candidates() -> list[str]:
    """The C++ compilers inductor tries, in order: torch._inductor.config.cpp.cxx, i.e. $CXX, else g++ (clang++ on
    macOS), as read when inductor's config was imported (its None entry, installing gcc from conda, is opt-in
    and needs the network). Not c++ or clang++ on Linux: inductor would not call them."""
    from torch._inductor import config as inductor_config

    cxx = inductor_config.cpp.cxx
    return [c for c in (cxx if isinstance(cxx, list | tuple) else (cxx,)) if c]


def cpp_compiler() -> str | None:
    """The path of the C++ compiler inductor would call, or None."""
    for cxx in cxx_candidates():
        if found := shutil.which(cxx):
            return found
    return None


def choose_cache_dir() -> str:
    """TORCHINDUCTOR_CACHE_DIR as the user set it, else the bench cache's `inductor` (never the repo). Importing
    torch._dynamo fills the variable in with inductor's default (a per-user temp directory) when it is unset, so
    that value counts as unset; inductor reads the variable on every cache access, so setting it before the first
    compile redirects every file it writes."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    current = os.environ.get(CACHE_ENV)
    if not current or os.path.abspath(current) == os.path.abspath(default_cache_dir()):
        os.environ[CACHE_ENV] = str((cache_root() / "inductor").expanduser().resolve())
    return os.environ[CACHE_ENV]


def _counter(group: str, name: str) -> int:
    from torch._dynamo.utils import counters

    return int(counters[group][name])


def _cache_outcome(hits: int, misses: int) -> str:
    if hits and not misses:
        return "hit"
    if misses and not hits:
        return "miss"
    return f"{hits} hit, {misses} miss" if hits or misses else "none"


class TorchCompileAdapter(TorchHFAdapter):
    name = "torch-compile"

    def __init__(self) -> None:
        super().__init__()
        self._first_call_s: dict[tuple[int, int], float] = {}
        self._graphs: dict[tuple[int, int], int] = {}
        self._fx_cache: dict[tuple[int, int], str] = {}
        self._failed: dict[tuple[int, int], str] = {}
        self._graphs_at_load = 0
        self._cxx: str | None = None
        self._cache_dir: str | None = None

    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        if variant.precision not in ("fp32", "bf16", "fp16"):
            raise CellError("torch-compile runs fp32/bf16 (and fp16 on CUDA)")
        if device == "cpu":
            self._cxx = cpp_compiler()
            if self._cxx is None:
                raise CellSkipped("torch.compile (inductor) on CPU needs a C++ compiler: "
                                  f"{', '.join(cxx_candidates())} not found on PATH (install g++ or set CXX)")
        # the eager torch model, with the torch adapter's device and precision checks (fp16 on CPU, bf16 without
        # native kernels: skipped with the reason)
        super().load(artifact, variant, device, options)
        self._cache_dir = choose_cache_dir()
        self._graphs_at_load = _counter("stats", "unique_graphs")
        self.model = torch.compile(self.model, backend=BACKEND, mode=MODE, dynamic=DYNAMIC, fullgraph=FULLGRAPH)

    def forward(self, batch: Batch) -> np.ndarray:
        shape = batch.shape
        if shape in self._first_call_s:  # compiled: the steady state
            return super().forward(batch)
        return self._first_call(batch, shape)

    def _first_call(self, batch: Batch, shape: tuple[int, int]) -> np.ndarray:
        if shape in self._failed:  # a shape that did not compile does not compile on the next cell either
            raise CellError(self._failed[shape])
        graphs = _counter("stats", "unique_graphs")
        hits, misses = _counter("inductor", "fxgraph_cache_hit"), _counter("inductor", "fxgraph_cache_miss")
        t0 = time.perf_counter()
        try:
            with torch._dynamo.config.patch(**FIRST_CALL_DYNAMO):
                out = super().forward(batch)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)  # the whole story for the worker's log; the record gets one line
            self._failed[shape] = (f"torch.compile ({BACKEND}) failed for shape {shape_key(shape)}: "
                                   f"{failure_reason(exc)}")
            raise CellError(self._failed[shape]) from exc
        self._first_call_s[shape] = time.perf_counter() - t0
        self._graphs[shape] = _counter("stats", "unique_graphs") - graphs
        self._fx_cache[shape] = _cache_outcome(_counter("inductor", "fxgraph_cache_hit") - hits,
                                               _counter("inductor", "fxgraph_cache_miss") - misses)
        return out

    def info(self) -> dict:
        from torch._inductor import config as inductor_config

        graphs = _counter("stats", "unique_graphs") - self._graphs_at_load
        info = super().info()
        info["compile"] = {
            "backend": BACKEND, "mode": MODE or "default", "dynamic": DYNAMIC, "fullgraph": FULLGRAPH,
            # wall time of each shape's first call: trace + compile (or cache load) + one run
            "first_call_s": {shape_key(s): round(t, 4) for s, t in self._first_call_s.items()},
            "graphs": {shape_key(s): n for s, n in self._graphs.items()},
            "fx_graph_cache": {shape_key(s): v for s, v in self._fx_cache.items()},
            # graphs compiled by calls other than a shape's first (dynamo's process-wide count: one model per
            # worker process); anything but 0 means a timed call may have compiled
            "recompiles_after_first_call": graphs - sum(self._graphs.values()),
            "failed": {shape_key(s): why for s, why in self._failed.items()},
            "cache_dir": self._cache_dir,
            "compile_threads": inductor_config.compile_threads,
            "cxx": self._cxx,
        }
        return info
