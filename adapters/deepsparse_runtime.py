"""DeepSparse adapter (CPU): dense, pruned and static QDQ INT8 ONNX from the shared export cache.

(Not named deepsparse.py: that would shadow the library.) DeepSparse compiles one engine per input shape, so
`encode` compiles the engine for its batch's shape (outside any timer) and `forward` only runs it. Engines
are compiled from a private fixed-shape copy of the cached file: DeepSparse's own input-shape override
rewrites the file it is given in place, which would corrupt the cache the other runtimes read.
It must run in its own process (the runner does that): an unsupported graph, such as ORT's dynamic INT8
(MatMulInteger), aborts the whole process instead of raising.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")  # before import: sparsezoo phones home otherwise
os.environ.setdefault("NM_BIND_THREADS_TO_CORES", "1")  # as `deepsparse.benchmark` does by default (-pin core)

import deepsparse
import numpy as np
import onnx

from adapters.base import BaseAdapter, Batch, Numerics, Options, ParamCounts
from adapters.onnx_common import OnnxModel, count_parameters, open_model
from bench import exports
from bench.artifacts import Artifact
from bench.errors import CellError, CellSkipped
from bench.runtimes import get_runtime
from bench.tokenizer import Encoded

MAX_IR_VERSION = 9  # deepsparse 1.8 reads IR <= 9


class DeepSparseAdapter(BaseAdapter):
    name = "deepsparse"

    def __init__(self) -> None:
        super().__init__()
        self.model: OnnxModel | None = None
        self._engines: dict[tuple[int, int], deepsparse.Engine] = {}
        self._threads = 1
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._numerics = Numerics()

    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        if device != "cpu":
            raise CellSkipped(f"device {device}: DeepSparse runs on CPUs only")
        form = get_runtime(self.name).form(variant.precision)
        if form is None:
            raise CellError(f"deepsparse: no model form for precision {variant.precision!r}")
        self._load_tokenizer(artifact)
        self._numerics, self._threads = variant, options.threads
        self.model = open_model(exports.ready_file(artifact, form), max_opset=onnx.defs.onnx_opset_version(),
                                max_ir=MAX_IR_VERSION)
        self.model_files = (self.model.path,)
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-deepsparse-")

    def engine(self, batch: int, seq_len: int) -> deepsparse.Engine:
        """The engine for one input shape, compiled on first use."""
        key = (batch, seq_len)
        if key not in self._engines:
            fixed = onnx.ModelProto()
            fixed.CopyFrom(self.model.proto)
            for value in fixed.graph.input:
                if value.name in {i.name for i in self.model.inputs}:
                    dims = value.type.tensor_type.shape.dim
                    dims[0].dim_value, dims[1].dim_value = batch, seq_len
            path = Path(self._tmp.name) / f"b{batch}-s{seq_len}.onnx"
            onnx.save(fixed, str(path))
            try:
                self._engines[key] = deepsparse.compile_model(str(path), batch_size=batch, num_cores=self._threads)
            except Exception as exc:
                raise CellError(f"{self.model.path}: deepsparse cannot compile it: "
                                f"{type(exc).__name__}: {exc}") from exc
        return self._engines[key]

    def _to_native(self, encoded: Encoded) -> list[np.ndarray]:
        self.engine(*encoded.shape)
        feed = self.model.feed(encoded)
        return [np.ascontiguousarray(feed[i.name]) for i in self.model.inputs]

    def forward(self, batch: Batch) -> np.ndarray:
        return np.asarray(self.engine(*batch.shape).run(batch.native, val_inp=False)[0], dtype=np.float32)

    def parameters(self) -> ParamCounts:
        return count_parameters(self.model.proto)

    def info(self) -> dict:
        from deepsparse.cpu import cpu_architecture

        arch = cpu_architecture()
        return {"deepsparse": deepsparse.__version__, "onnx": onnx.__version__, "num_cores": self._threads,
                "threads": self._threads, "scheduler": "default (single stream)",
                "bind_threads_to_cores": os.environ.get("NM_BIND_THREADS_TO_CORES"), "isa": arch.get("isa"),
                "vnni": arch.get("vnni"), "engines": [f"b{b} s{s}" for b, s in self._engines],
                "model_file": self.model.path.name if self.model else None,
                "opset": self.model.opset if self.model else None}

    def close(self) -> None:
        self._engines.clear()
        self.model = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        super().close()
