"""What each runtime can do, declared without importing it, so plans are validated in any environment."""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass

from bench.errors import UsageError

# int8: dynamic quantization (weights INT8, activations quantized at run time); int8-static: QDQ INT8 with
# activation ranges calibrated on real sentences ahead of time.
PRECISIONS = ("fp32", "fp16", "bf16", "int8", "int8-static")
DEVICES = ("cpu", "cuda")
SPARSITIES = ("dense", "pruned80", "pruned90")  # bench/pruning.py: magnitude-pruned twins of the weights

# The configuration every other one is held against: speed-ups, accuracy drops and fp32 agreement are relative
# to it, and its outputs are the parity suite's reference.
REFERENCE_CONFIG = {"runtime": "torch", "precision": "fp32", "sparsity": "dense"}


def is_reference(runtime: str, precision: str, sparsity: str) -> bool:
    return (runtime, precision, sparsity) == tuple(REFERENCE_CONFIG.values())


@dataclass(frozen=True)
class Runtime:
    name: str
    adapter: str  # "module:Class" under adapters/
    extra: str  # pip extra that installs it
    requires: tuple[str, ...]  # importable modules the adapter needs
    precisions: dict[str, tuple[str, ...]]  # device -> supported precisions
    sparsities: tuple[str, ...] = SPARSITIES
    forms: dict[str, str] | None = None  # precision -> the derived model file it runs (bench/exports.py)
    peaks: str | None = None  # "module:function(threads) -> {precision: {...}}": GEMM peaks beyond numpy's fp32
    # why nobody should pick it for new work without knowing: upstream's end of maintenance, with the date
    unmaintained: str | None = None
    properties: tuple[str, ...] = ()  # its own settings a preset may set ([runtime.NAME] properties = {...})

    def measure_peaks(self, threads: int) -> dict:
        """This runtime's framework's GEMM peaks per precision (adapters/*_peak.py), {} where it has none."""
        if not self.peaks or self.missing_modules():
            return {}
        module, fn = self.peaks.split(":")
        return getattr(importlib.import_module(module), fn)(threads)

    def supports(self, precision: str, device: str, sparsity: str) -> bool:
        return precision in self.precisions.get(device, ()) and sparsity in self.sparsities

    def form(self, precision: str) -> str | None:
        """The exported model file a cell at `precision` needs (None: the runtime loads safetensors)."""
        return (self.forms or {}).get(precision)

    def missing_modules(self) -> list[str]:
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def require(self) -> None:
        """One-line error when the framework is not installed in this environment."""
        missing = self.missing_modules()
        if missing:
            raise UsageError(f"runtime {self.name!r} needs {', '.join(missing)}: install the "
                             f"'{self.extra}' extra (see README) or run it in its nox environment")

    def load_adapter_class(self):
        self.require()
        module, cls = self.adapter.split(":")
        return getattr(importlib.import_module(module), cls)


# OpenVINO CPU properties a preset may set; the precision hint and the thread count come from the cell and [run]
OPENVINO_PROPERTIES = ("PERFORMANCE_HINT", "NUM_STREAMS", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING",
                       "SCHEDULING_CORE_TYPE", "EXECUTION_MODE_HINT", "CPU_DENORMALS_OPTIMIZATION",
                       "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE", "DYNAMIC_QUANTIZATION_GROUP_SIZE",
                       "MODEL_DISTRIBUTION_POLICY")
MXNET_RETIRED = "Apache MXNet retired to the Apache Attic in 2023; GluonNLP's last release (0.10.0) is from 2020"

RUNTIMES: dict[str, Runtime] = {
    r.name: r
    for r in (
        Runtime("torch", "adapters.torch_hf.adapter:TorchHFAdapter", "torch", ("torch", "transformers"),
                {"cpu": ("fp32", "bf16", "int8"), "cuda": ("fp32", "fp16", "bf16")},
                peaks="adapters.torch_hf.peak:measure"),
        # the same HF model with torchao INT8 (dynamic per-token activations, per-channel weights): the library torch
        # recommends now that torch.ao.quantization is deprecated; beside torch's own int8 row for comparison
        Runtime("torchao", "adapters.torch_hf.torchao_int8:TorchAOAdapter", "torchao",
                ("torch", "transformers", "torchao"), {"cpu": ("int8",)}),
        # the same HF model through torch.compile (inductor): compilation happens on the first forward of each shape,
        # so it is recorded as time to first inference, apart from the steady-state timings
        Runtime("torch-compile", "adapters.torch_hf.compiled:TorchCompileAdapter", "torch", ("torch", "transformers"),
                {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "fp16", "bf16")}),
        Runtime("onnxruntime", "adapters.ort_runtime:OrtAdapter", "onnxruntime", ("onnxruntime", "onnx"),
                {"cpu": ("fp32", "int8", "int8-static"), "cuda": ("fp32", "fp16")},
                forms={"fp32": "onnx-fp32", "fp16": "onnx-fp32", "int8": "onnx-int8-dynamic",
                       "int8-static": "onnx-int8-static"}, peaks="adapters.ort_peak:measure"),
        # DeepSparse runs static QDQ INT8 only: an ORT dynamic-INT8 graph (MatMulInteger) aborts its process.
        Runtime("deepsparse", "adapters.deepsparse_runtime:DeepSparseAdapter", "deepsparse",
                ("deepsparse", "onnx"), {"cpu": ("fp32", "int8-static")},
                forms={"fp32": "onnx-fp32", "int8-static": "onnx-int8-static"},
                unmaintained="DeepSparse deprecated upstream 2025-06-02, repository archived 2025-06-03"),
        # GluonNLP's BERT (model_type bert only): INT8 is calibrated ahead of time (quantize_net_v2), i.e. static;
        # mxnet-deploy runs the same network exported to symbol + params and re-imported as a SymbolBlock.
        Runtime("mxnet", "adapters.mxnet_gluonnlp.adapter:MXNetAdapter", "mxnet", ("mxnet", "gluonnlp"),
                {"cpu": ("fp32", "int8-static"), "cuda": ("fp32", "fp16")}, unmaintained=MXNET_RETIRED),
        Runtime("mxnet-deploy", "adapters.mxnet_gluonnlp.adapter:MXNetDeployAdapter", "mxnet", ("mxnet", "gluonnlp"),
                {"cpu": ("fp32", "int8-static"), "cuda": ("fp32", "fp16")}, unmaintained=MXNET_RETIRED),
        # OpenVINO reads the same ONNX export; fp32 sets INFERENCE_PRECISION_HINT=f32 (its CPU default is bf16 where
        # the CPU has it), bf16/fp16 set that hint on the same file; INT8 is NNCF post-training quantization
        # calibrated on train text (adapters/build/nncf_int8.py)
        Runtime("openvino", "adapters.openvino_runtime:OpenVINOAdapter", "openvino", ("openvino",),
                {"cpu": ("fp32", "bf16", "fp16", "int8-static")},
                forms={"fp32": "onnx-fp32", "bf16": "onnx-fp32", "fp16": "onnx-fp32",
                       "int8-static": "onnx-int8-nncf"}, properties=OPENVINO_PROPERTIES),
    )
}


def interpreter(name: str, pythons: dict[str, str] | None = None) -> str | None:
    """The Python that runs `name`'s cells: this one where the runtime is installed, else the interpreter given for
    its extra (`bench run --python deepsparse=PATH`, or $BENCH_PYTHONS as extra=PATH,...), else None."""
    import sys

    runtime = get_runtime(name)
    if not runtime.missing_modules():
        return sys.executable
    return (pythons if pythons is not None else pythons_from_env()).get(runtime.extra)


def pythons_from_env() -> dict[str, str]:
    """$BENCH_PYTHONS: `extra=PATH,extra=PATH`, the interpreters of other runtime environments."""
    return parse_pythons(filter(None, (i.strip() for i in os.environ.get("BENCH_PYTHONS", "").split(","))),
                         "BENCH_PYTHONS")


def parse_pythons(items, where: str) -> dict[str, str]:
    """EXTRA=PATH items (`--python`, $BENCH_PYTHONS) → {extra: interpreter path}."""
    out = {}
    for item in items:
        extra, sep, path = item.partition("=")
        if not sep or not extra.strip() or not path.strip():
            raise UsageError(f"{where} {item!r}: expected EXTRA=PATH, e.g. "
                             "deepsparse=.nox/bench-family-deepsparse/bin/python")
        out[extra.strip()] = path.strip()
    return out


def register(runtime: Runtime) -> None:
    """Add a runtime (plugins and tests: modules named in BENCH_PLUGINS are imported at start-up, in the
    runner and in every cell's worker process)."""
    RUNTIMES[runtime.name] = runtime


def get_runtime(name: str) -> Runtime:
    if name not in RUNTIMES:
        raise UsageError(f"unknown runtime {name!r}; choose from: {', '.join(RUNTIMES)}")
    return RUNTIMES[name]


for _plugin in filter(None, (p.strip() for p in os.environ.get("BENCH_PLUGINS", "").split(","))):
    try:
        importlib.import_module(_plugin)
    except ImportError as _exc:
        raise UsageError(f"BENCH_PLUGINS: cannot import {_plugin!r} ({_exc})") from _exc
