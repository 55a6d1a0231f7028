"""A framework-free test runtime whose cells misbehave on purpose, selected by precision:
fp32 works, fp16 aborts the process, bf16 hangs, int8 raises inside "the framework".
With FAULT_SEQ_MOD=m, fp32 cells whose sequence length is a multiple of m die as the OOM killer would
(SIGKILL); used by benchmarks/runner_faults.py to inject faults into a fraction of cells. With
FAULT_RAISE_SEQ=n, a forward at sequence length n raises inside "the framework" after a successful load.
info() reports the worker's pid, so tests can tell which cells shared a process."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from adapters.base import BaseAdapter, Batch, ParamCounts
from bench.runtimes import Runtime, register


class FaultAdapter(BaseAdapter):
    name = "fault"

    def load(self, artifact, variant, device, options):
        self._load_tokenizer(artifact)
        self.mode = variant.precision
        if self.mode == "fp16":
            os.abort()
        if self.mode == "int8":
            raise RuntimeError("simulated framework error")

    def forward(self, batch: Batch) -> np.ndarray:
        if self.mode == "bf16":
            time.sleep(3600)
        if batch.shape[1] == int(os.environ.get("FAULT_RAISE_SEQ", "0")):
            raise RuntimeError("simulated framework error in forward")
        mod = int(os.environ.get("FAULT_SEQ_MOD", "0"))
        if mod and batch.shape[1] % mod == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return np.zeros((*batch.shape, 4), dtype=np.float32)

    def parameters(self) -> ParamCounts:
        return ParamCounts(10, 10, 8, 40)

    def info(self) -> dict:
        return {"mode": self.mode, "pid": os.getpid()}


register(Runtime("fault", "tests.fault_adapter:FaultAdapter", "test", (),
                 {"cpu": ("fp32", "fp16", "bf16", "int8")}))


class SteadyAdapter(FaultAdapter):
    """A runtime of known speed for interleaving tests: fp32 takes STEADY_MS (default 2; or the model config's
    `steady_ms`) per forward, int8 half of it; with STEADY_DIE_AFTER=n, an int8 worker kills itself (SIGKILL) at
    its n-th forward."""

    name = "steady"

    def load(self, artifact, variant, device, options):
        self._load_tokenizer(artifact)
        self.mode, self.calls = variant.precision, 0

    def forward(self, batch: Batch) -> np.ndarray:
        self.calls += 1
        die = int(os.environ.get("STEADY_DIE_AFTER", "0"))
        if self.mode == "int8" and die and self.calls >= die:
            os.kill(os.getpid(), signal.SIGKILL)
        ms = float((self.artifact.config or {}).get("steady_ms") or os.environ.get("STEADY_MS", "2"))
        ms *= 0.5 if self.mode == "int8" else 1.0
        time.sleep(ms / 1e3)
        return np.zeros((*batch.shape, 4), dtype=np.float32)


register(Runtime("steady", "tests.fault_adapter:SteadyAdapter", "test", (), {"cpu": ("fp32", "int8")}))


# a runtime whose environment no test environment has (its module does not exist): for executors that route cells
# to the nodes that have a runtime's environment
register(Runtime("absent", "tests.fault_adapter:SteadyAdapter", "absent-extra", ("no_such_module_anywhere",),
                 {"cpu": ("fp32",)}))
