"""ONNX Runtime adapter: fp32, dynamic INT8, static QDQ INT8 on CPU; fp32/fp16 with the CUDA provider.

(Not named onnxruntime.py: that would shadow the library it wraps.) The model files come from
bench/exports.py, so every precision runs the same weights as the torch cells of the same artifact.

info()["optimized_graph"] says what ORT made of the file: {"nodes": N, "op_counts": {op_type: n}, "fused":
{op_type: n}}: every op type of the optimized graph (nested subgraphs included), and the subset that only ORT's
fusions produce (FUSED_OPS), so a reader sees whether the BERT fusions (Attention, SkipLayerNormalization, ...)
applied; {"error": reason} where it could not be made (the cell still runs). The graph is written
(SessionOptions.optimized_model_filepath, weights to a side file) by a session of the same level in a child process,
once per file and ORT version (kept beside the file), never by the timed session: its load time, memory high-water
mark and optimizations stay exactly those of a session that writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
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


def optimized_graph_of(path: Path, fp16: bool = False) -> dict:
    """The op counts of `path`'s optimized graph (CPU provider, GRAPH_LEVEL), from the kept copy or a child process."""
    kept = path.with_name(f"{path.name}.ort-{ort.__version__}{'-fp16' if fp16 else ''}-graph.json")
    try:
        return json.loads(kept.read_text())
    except (OSError, json.JSONDecodeError):
        pass
    proc = _run_child([sys.executable, "-m", "adapters.ort_runtime", str(path), "fp16" if fp16 else "fp32"])
    try:
        summary = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (IndexError, json.JSONDecodeError):
        summary = None
    if summary is None:
        tail = [line for line in (proc.stderr or "").strip().splitlines() if line.strip()][-1:]
        return {"error": f"writing the optimized graph failed (exit {proc.returncode}): {' '.join(tail)}".strip()}
    summary["provider"] = "CPUExecutionProvider"
    with contextlib.suppress(OSError):  # a read-only cache: counted again next time
        kept.write_text(json.dumps(summary))
    return summary


def _run_child(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


def _write_optimized(path: str, fp16: bool) -> dict:
    """In the child: a session at GRAPH_LEVEL writes its optimized graph to a temporary directory; count it."""
    model: bytes | str = path
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = convert_float_to_float16(onnx.load(path), keep_io_types=True).SerializeToString()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = GRAPH_LEVEL
    opts.intra_op_num_threads = 1
    with tempfile.TemporaryDirectory(prefix="ort-optimized-") as tmp:
        graph = Path(tmp) / "optimized.onnx"
        opts.optimized_model_filepath = str(graph)
        opts.add_session_config_entry(_EXTERNAL_WEIGHTS, "optimized.weights")
        ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        return optimized_graph_summary(graph)


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
        try:
            self.session = ort.InferenceSession(model_bytes, opts, providers=chosen)
        except Exception as exc:  # ORT's Fail/InvalidGraph/NotImplemented: one line, this cell only
            raise CellError(f"{self.model.path}: onnxruntime cannot load it: {type(exc).__name__}: {exc}") from exc
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            raise CellSkipped("device cuda: onnxruntime fell back to CPU (CUDA provider failed to initialise)")

    def optimized_graph(self) -> dict | None:
        """The optimized graph's op counts (module docstring), made on first call and kept."""
        if self._optimized is None and self.model is not None:
            self._optimized = optimized_graph_of(self.model.path, self._numerics.precision == "fp16")
        return self._optimized

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
                "optimized_graph": self.optimized_graph()}

    def close(self) -> None:
        self.session = None
        self.model = None
        super().close()


if __name__ == "__main__":  # the child of optimized_graph_of: one JSON line on stdout
    print(json.dumps(_write_optimized(sys.argv[1], sys.argv[2] == "fp16")))
