"""What both ONNX runtimes check before running a file: readable, a supported opset/IR, inputs the shared
tokenizer can feed. Bad files fail their cell with one clear reason instead of a runtime's stack trace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from adapters.base import ParamCounts
from bench.errors import CellError
from bench.tokenizer import Encoded

TOKENIZER_OUTPUTS = ("input_ids", "attention_mask", "token_type_ids")
INT_TYPES = {TensorProto.INT64: np.int64, TensorProto.INT32: np.int32}
QUANT_AUX = ("_scale", "_zero_point")  # quantization bookkeeping, not parameters


@dataclass(frozen=True)
class OnnxInput:
    name: str
    dtype: type
    rank: int


@dataclass(frozen=True)
class OnnxModel:
    path: Path
    opset: int
    ir_version: int
    inputs: tuple[OnnxInput, ...]
    proto: onnx.ModelProto

    def feed(self, encoded: Encoded) -> dict[str, np.ndarray]:
        arrays = encoded.as_dict()
        return {i.name: arrays[i.name].astype(i.dtype, copy=False) for i in self.inputs}


def open_model(path: Path, max_opset: int, max_ir: int | None = None, min_opset: int = 7) -> OnnxModel:
    """Parse and check an ONNX file; CellError with the reason for each way it can be unusable."""
    try:
        proto = onnx.load(str(path))
    except FileNotFoundError as exc:
        raise CellError(f"{path}: no such ONNX file") from exc
    except Exception as exc:  # protobuf DecodeError, truncated external data, ...
        raise CellError(f"{path}: not a readable ONNX model (truncated or corrupt?): "
                        f"{type(exc).__name__}: {exc}") from exc
    if not proto.graph.node or not proto.graph.output:
        raise CellError(f"{path}: not a readable ONNX model (no graph: truncated or corrupt?)")
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    opset = opsets.get("ai.onnx")
    if opset is None or not min_opset <= opset <= max_opset:
        raise CellError(f"{path}: unsupported ONNX opset {opset}: this runtime supports {min_opset}..{max_opset}")
    if max_ir is not None and proto.ir_version > max_ir:
        raise CellError(f"{path}: ONNX IR version {proto.ir_version} > {max_ir}, which this runtime cannot read "
                        "(export with the legacy exporter at opset 14)")
    initializers = {t.name for t in proto.graph.initializer}
    inputs = []
    for value in proto.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        if value.name not in TOKENIZER_OUTPUTS:
            raise CellError(f"{path}: model input {value.name!r} does not match the shared tokenizer's outputs "
                            f"({', '.join(TOKENIZER_OUTPUTS)}); model inputs are "
                            f"{[v.name for v in proto.graph.input if v.name not in initializers]}")
        if tensor.elem_type not in INT_TYPES:
            raise CellError(f"{path}: model input {value.name!r} has element type "
                            f"{TensorProto.DataType.Name(tensor.elem_type)}, token ids need int64 or int32")
        rank = len(tensor.shape.dim)
        if rank != 2:
            raise CellError(f"{path}: model input {value.name!r} has rank {rank}, token ids are (batch, sequence)")
        inputs.append(OnnxInput(value.name, INT_TYPES[tensor.elem_type], rank))
    if not any(i.name == "input_ids" for i in inputs):
        raise CellError(f"{path}: model has no 'input_ids' input; inputs are {[i.name for i in inputs]}")
    return OnnxModel(Path(path), opset, proto.ir_version, tuple(inputs), proto)


def count_parameters(proto: onnx.ModelProto) -> ParamCounts:
    """Weights as the file stores them: float/int initializers that are not quantization scales or zero
    points, nor scalars and shape constants; bytes at their stored type (INT8 weights are one byte)."""
    total = nonzero = nbytes = 0
    for init in proto.graph.initializer:
        if init.data_type == TensorProto.INT64 or init.name.endswith(QUANT_AUX):
            continue
        array = numpy_helper.to_array(init)
        if array.ndim == 0 or array.size <= 1:
            continue
        total += array.size
        nonzero += int(np.count_nonzero(array))
        nbytes += array.nbytes
    return ParamCounts(total=total, trainable=0, nonzero=nonzero, bytes=nbytes)
