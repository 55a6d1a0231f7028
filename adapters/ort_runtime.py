"""ONNX Runtime adapter: fp32, dynamic INT8, static QDQ INT8 on CPU; fp32/fp16 with the CUDA provider.

(Not named onnxruntime.py: that would shadow the library it wraps.) The model files come from
bench/exports.py, so every precision runs the same weights as the torch cells of the same artifact.

info()["optimized_graph"] says what ORT made of the file: the session's own options write its optimized graph
(SessionOptions.optimized_model_filepath; the weights to a side file, so only the graph is serialized and parsed)
into a temporary directory, deleted once its nodes are counted. {"nodes": N, "op_counts": {op_type: n},
"fused": {op_type: n}}: every op type (nested subgraphs included), and the subset that only ORT's fusions
produce (FUSED_OPS), so a reader sees whether the BERT fusions (Attention, SkipLayerNormalization, ...) applied;
{"error": reason} where the graph could not be written or read (the cell still runs). Writing it is part of
`load`, hence of the record's startup.load_s.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

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
# Op types ORT's graph optimizers fuse subgraphs into (contrib ops and the ONNX ops an exporter at opset 14 writes
# decomposed): their counts in the optimized graph show which fusions applied.
FUSED_OPS = frozenset({
    "Attention", "MultiHeadAttention", "GroupQueryAttention", "PackedAttention", "PackedMultiHeadAttention",
    "QAttention", "RotaryEmbedding", "EmbedLayerNormalization", "QEmbedLayerNormalization",
    "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "LayerNormalization",
    "SimplifiedLayerNormalization", "BiasGelu", "FastGelu", "Gelu", "QuickGelu", "GemmFastGelu", "BiasSoftmax",
    "BiasDropout", "BiasAdd", "FusedMatMul", "FusedGemm", "FusedConv", "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul", "QLinearMatMul", "QGemm", "MatMulNBits", "MatMulBnb4",
})
_EXTERNAL_WEIGHTS = "session.optimized_model_external_initializers_file_name"


def op_counts(graph: onnx.GraphProto) -> Counter:
    """Node op types of a graph and of every subgraph its nodes hold (If/Loop/Scan bodies)."""
    counts: Counter = Counter()
    for node in graph.node:
        counts[node.op_type] += 1
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else
                        attr.graphs if attr.type == onnx.AttributeProto.GRAPHS else []):
                counts += op_counts(sub)
    return counts


def optimized_graph_summary(path: Path) -> dict:
    """{"nodes", "op_counts", "fused"} of an optimized graph ORT wrote (its weights are not read)."""
    counts = op_counts(onnx.load(str(path), load_external_data=False).graph)
    return {"nodes": sum(counts.values()), "op_counts": dict(sorted(counts.items())),
            "fused": {op: n for op, n in sorted(counts.items()) if op in FUSED_OPS}}


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {next(iter(str(exc).strip().splitlines()), '')}"


def _model_files(model: OnnxModel) -> tuple[Path, ...]:
    """The ONNX file and the external-data files its initializers name (bench/resources.py: size on disk)."""
    extra = {entry.value for init in model.proto.graph.initializer for entry in init.external_data
             if entry.key == "location"}
    return (model.path, *(model.path.parent / name for name in sorted(extra)))


class OrtAdapter(BaseAdapter):
    name = "onnxruntime"

    def __init__(self) -> None:
        super().__init__()
        self.session: ort.InferenceSession | None = None
        self.model: OnnxModel | None = None
        self._options: ort.SessionOptions | None = None
        self._numerics = Numerics()
        self._device = "cpu"
        self._optimized: dict | None = None

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
        self.model_files = _model_files(self.model)
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
        self.session = self._session(model_bytes, opts, chosen)
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise CellSkipped("device cuda: onnxruntime fell back to CPU (CUDA provider failed to initialise)")

    def _session(self, model, opts: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
        """The session, with its optimized graph written to a temporary directory and counted on the way; should
        writing it be what fails, the session is made again without it and the reason kept."""
        with tempfile.TemporaryDirectory(prefix="ort-optimized-") as tmp:
            graph = Path(tmp) / "optimized.onnx"
            opts.optimized_model_filepath = str(graph)
            opts.add_session_config_entry(_EXTERNAL_WEIGHTS, "optimized.weights")
            try:
                session = ort.InferenceSession(model, opts, providers=providers)
            except Exception as exc:
                session, saving = None, exc
            finally:
                opts.optimized_model_filepath = ""
            if session is not None:
                try:
                    self._optimized = optimized_graph_summary(graph)
                except Exception as exc:  # an unreadable dump costs the counts, never the cell
                    self._optimized = {"error": _one_line(exc)}
                return session
        try:
            session = ort.InferenceSession(model, opts, providers=providers)
        except Exception as exc:  # ORT's Fail/InvalidGraph/NotImplemented: one line, this cell only
            raise CellError(f"{self.model.path}: onnxruntime cannot load it: {type(exc).__name__}: {exc}") from exc
        self._optimized = {"error": f"writing the optimized graph failed: {_one_line(saving)}"}
        return session

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
                "threads": opts.intra_op_num_threads if opts else None,
                "optimized_graph": self._optimized}

    def close(self) -> None:
        self.session = None
        self.model = None
        super().close()
