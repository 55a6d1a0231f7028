"""ONNX Runtime adapter: fp32, dynamic INT8, static QDQ INT8 on CPU; fp32/fp16 with the CUDA provider.

(Not named onnxruntime.py: that would shadow the library it wraps.) The model files come from
bench/exports.py, so every precision runs the same weights as the torch cells of the same artifact.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from adapters.base import BaseAdapter, Batch, Numerics, Options, ParamCounts
from adapters.onnx_common import OnnxModel, count_parameters, open_model
from bench import exports
from bench.artifacts import Artifact
from bench.errors import CellError, CellSkipped
from bench.runtimes import get_runtime
from bench.tokenizer import Encoded

GRAPH_LEVEL = ort.GraphOptimizationLevel.ORT_ENABLE_ALL


class OrtAdapter(BaseAdapter):
    name = "onnxruntime"

    def __init__(self) -> None:
        super().__init__()
        self.session: ort.InferenceSession | None = None
        self.model: OnnxModel | None = None
        self._options: ort.SessionOptions | None = None
        self._numerics = Numerics()
        self._device = "cpu"

    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        providers = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in providers:
            raise CellSkipped("device cuda: onnxruntime has no CUDAExecutionProvider here (install onnxruntime-gpu "
                              f"on a machine with a GPU; available: {', '.join(providers)})")
        form = get_runtime(self.name).form(variant.precision)
        if form is None:
            raise CellError(f"onnxruntime: no model form for precision {variant.precision!r}")
        self._load_tokenizer(artifact)
        self._numerics, self._device = variant, device
        self.model = open_model(exports.ready_file(artifact, form), max_opset=onnx.defs.onnx_opset_version())
        model_bytes: bytes | str = str(self.model.path)
        if variant.precision == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            model_bytes = convert_float_to_float16(onnx.load(str(self.model.path)), keep_io_types=True)
            model_bytes = model_bytes.SerializeToString()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = GRAPH_LEVEL
        opts.intra_op_num_threads = options.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._options = opts
        chosen = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(model_bytes, opts, providers=chosen)
        except Exception as exc:  # ORT's Fail/InvalidGraph/NotImplemented: one line, this cell only
            raise CellError(f"{self.model.path}: onnxruntime cannot load it: {type(exc).__name__}: {exc}") from exc
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise CellSkipped("device cuda: onnxruntime fell back to CPU (CUDA provider failed to initialise)")

    def _to_native(self, encoded: Encoded) -> dict[str, np.ndarray]:
        return self.model.feed(encoded)

    def forward(self, batch: Batch) -> np.ndarray:
        # session.run returns host arrays: on CUDA the copy back synchronises the device
        return np.asarray(self.session.run(None, batch.native)[0], dtype=np.float32)

    def parameters(self) -> ParamCounts:
        return count_parameters(self.model.proto)

    def info(self) -> dict:
        opts = self._options
        return {"onnxruntime": ort.__version__, "onnx": onnx.__version__,
                "providers": self.session.get_providers() if self.session else [],
                "graph_optimization_level": str(opts.graph_optimization_level).rsplit(".", 1)[-1] if opts else None,
                "intra_op_threads": opts.intra_op_num_threads if opts else None,
                "inter_op_threads": opts.inter_op_num_threads if opts else None,
                "execution_mode": str(opts.execution_mode).rsplit(".", 1)[-1] if opts else None,
                "model_file": self.model.path.name if self.model else None,
                "opset": self.model.opset if self.model else None,
                "fp16_conversion": self._numerics.precision == "fp16",
                "threads": opts.intra_op_num_threads if opts else None}

    def close(self) -> None:
        self.session = None
        self.model = None
        super().close()
