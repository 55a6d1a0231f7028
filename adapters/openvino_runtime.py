"""OpenVINO adapter (CPU): the shared fp32 ONNX export at f32, bf16 or f16 inference precision, and NNCF's INT8 of it.

(Not named openvino.py: that would shadow the library.) The precision is set, never left to the plugin: OpenVINO's
CPU default INFERENCE_PRECISION_HINT is bf16 wherever the CPU has bf16, so a cell labelled fp32 that did not set f32
would run bf16. INT8 cells run NNCF's quantized file with f32 for what stays unquantized, as the other runtimes' INT8
does. Like `benchmark_app -shape`, each input shape gets a model reshaped to it and compiled once, in `encode`
(outside any timer), so `forward` is one synchronous inference request. For pruned INT8 weights the plugin's sparse
weight decompression is asked for (CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE) and the compiled graph is read back to
record whether any layer got a sparse kernel (the plugin applies it on AMX CPUs only). The runtime itself sends no
telemetry (read_model, not the ovc converter); NNCF's is switched off by bench.environment.
"""

from __future__ import annotations

import time

import numpy as np
import openvino as ov

from adapters.base import BaseAdapter, Batch, Numerics, Options, ParamCounts
from adapters.onnx_common import OnnxModel, count_parameters, open_model
from bench import exports
from bench.artifacts import Artifact
from bench.errors import CellError, CellSkipped
from bench.runtimes import get_runtime
from bench.tokenizer import Encoded

HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8-static": "f32"}
CAPABILITY = {"bf16": "BF16", "fp16": "FP16"}  # OPTIMIZATION_CAPABILITIES the plugin must report for the precision
# latency setup, as benchmark_app -hint latency on one request: one stream, all the run's threads
DEFAULTS = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
SPARSE_RATE = 0.5  # a layer with at least this share of zero weights gets the sparse kernel (pruned twins: 80-90%)
REPORTED = ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "PERFORMANCE_HINT",
            "EXECUTION_MODE_HINT", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING", "SCHEDULING_CORE_TYPE",
            "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE", "DYNAMIC_QUANTIZATION_GROUP_SIZE",
            "OPTIMAL_NUMBER_OF_INFER_REQUESTS")


class OpenVINOAdapter(BaseAdapter):
    name = "openvino"

    def __init__(self) -> None:
        super().__init__()
        self.core: ov.Core | None = None
        self.model: OnnxModel | None = None
        self._ov_model: ov.Model | None = None
        self._compiled: dict[tuple[int, int], tuple[ov.CompiledModel, ov.InferRequest]] = {}
        self._config: dict = {}
        self._numerics = Numerics()
        self._timings: dict = {}

    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        if device != "cpu":
            raise CellSkipped(f"device {device}: the harness runs OpenVINO's CPU plugin only")
        form = get_runtime(self.name).form(variant.precision)
        if form is None:
            raise CellError(f"openvino: no model form for precision {variant.precision!r}")
        self.core = ov.Core()
        capabilities = list(self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        if variant.precision in CAPABILITY and CAPABILITY[variant.precision] not in capabilities:
            raise CellSkipped(f"{variant.precision} on CPU: OpenVINO's CPU plugin reports no "
                              f"{CAPABILITY[variant.precision]} capability here (it has {', '.join(capabilities)})")
        self._load_tokenizer(artifact)
        self._numerics = variant
        self.model = open_model(exports.ready_file(artifact, form), max_opset=99)
        self.model_files = (self.model.path,)
        config = DEFAULTS | {"INFERENCE_NUM_THREADS": options.threads}
        if variant.precision == "int8-static" and variant.sparsity != "dense":
            config["CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"] = SPARSE_RATE
        config |= dict(options.properties or {})
        self._config = config | {"INFERENCE_PRECISION_HINT": HINTS[variant.precision]}  # the cell's, never a preset's
        t0 = time.perf_counter()
        try:
            self._ov_model = self.core.read_model(str(self.model.path))
        except Exception as exc:  # the ONNX frontend's conversion errors: this cell only
            raise CellError(f"{self.model.path}: OpenVINO cannot read it: {type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
        self._timings = {"read_s": time.perf_counter() - t0, "compile_s": {}}

    def compiled(self, batch: int, seq_len: int) -> tuple[ov.CompiledModel, ov.InferRequest]:
        """The model reshaped to one input shape and compiled, on first use (as benchmark_app -shape does)."""
        key = (batch, seq_len)
        if key not in self._compiled:
            model = self._ov_model.clone()
            model.reshape({p.get_any_name(): ov.PartialShape([batch, seq_len]) for p in model.inputs})
            t0 = time.perf_counter()
            try:
                compiled = self.core.compile_model(model, "CPU", self._config)
            except Exception as exc:  # a graph the CPU plugin cannot compile fails this cell with the reason
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise CellError(f"{self.model.path}: OpenVINO cannot compile it for b{batch} s{seq_len}: "
                                f"{type(exc).__name__}: {first}") from exc
            self._timings["compile_s"][f"b{batch} s{seq_len}"] = time.perf_counter() - t0
            self._compiled[key] = (compiled, compiled.create_infer_request())
        return self._compiled[key]

    def _to_native(self, encoded: Encoded) -> dict[str, np.ndarray]:
        self.compiled(*encoded.shape)
        return {k: np.ascontiguousarray(v) for k, v in self.model.feed(encoded).items()}

    def forward(self, batch: Batch) -> np.ndarray:
        _, request = self.compiled(*batch.shape)
        request.infer(batch.native)
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    def parameters(self) -> ParamCounts:
        return count_parameters(self.model.proto)

    def info(self) -> dict:
        info = {"openvino": ov.get_version(), "device": "CPU",
                "cpu": self.core.get_property("CPU", "FULL_DEVICE_NAME") if self.core else None,
                "capabilities": list(self.core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")) if self.core else [],
                "requested": {k: v for k, v in self._config.items()}, "model_file": self.model.path.name
                if self.model else None, "read_s": self._timings.get("read_s"),
                "compile_s": self._timings.get("compile_s")}
        if self._compiled:
            compiled, _ = next(iter(self._compiled.values()))
            info["properties"] = {k: _plain(compiled.get_property(k)) for k in REPORTED if _has(compiled, k)}
            info["threads"] = info["properties"].get("INFERENCE_NUM_THREADS")
            info["executed"] = executed_graph(compiled)
        return info

    def close(self) -> None:
        self._compiled.clear()
        self._ov_model = None
        self.model = None
        self.core = None
        super().close()


def _has(compiled: ov.CompiledModel, key: str) -> bool:
    try:
        compiled.get_property(key)
        return True
    except Exception:  # a property this plugin version does not report
        return False


def _plain(value):
    """A property or rt_info value as JSON: OVAny unwrapped, element types as OpenVINO spells them (f32, bf16),
    enums by name."""
    value = getattr(value, "value", value) if type(value).__name__ == "OVAny" else value
    if isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "to_string"):
        return value.to_string()
    return getattr(value, "name", None) or str(value)


def executed_graph(compiled: ov.CompiledModel) -> dict:
    """What the plugin really runs, from the compiled (runtime) graph: layers per runtime precision, the kernels of
    the FullyConnected/MatMul layers (jit/brgemm, AVX-512, VNNI, AMX ...), and how many got a sparse-weight kernel."""
    precisions: dict[str, int] = {}
    kernels: dict[str, int] = {}
    sparse = 0
    for op in compiled.get_runtime_model().get_ops():
        rt = {k: str(_plain(v)) for k, v in op.get_rt_info().items()}
        precision = rt.get("runtimePrecision", "?")
        precisions[precision] = precisions.get(precision, 0) + 1
        layer = rt.get("layerType", op.get_type_name())
        if layer in ("FullyConnected", "MatMul"):
            kind = f"{layer}:{rt.get('primitiveType', '?')}:{precision}"
            kernels[kind] = kernels.get(kind, 0) + 1
            sparse += "sparse" in kind.lower()
    return {"runtime_precisions": precisions, "matmul_kernels": kernels, "sparse_weight_layers": sparse}
