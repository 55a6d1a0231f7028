"""A toy encoder made without torch: numpy weights in a from_pretrained-shaped directory, the same model
as an ONNX graph built with onnx.helper, and its numpy reference outputs. Lets the ONNX runtimes (and the
DeepSparse environment, which has no torch) be tested on exact, known weights.

    h = (word_emb[input_ids] + type_emb[token_type_ids]) * attention_mask
    out = relu(h @ W1.T + b1) @ W2.T + b2          (Linear weights stored (out, in), as torch does)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.conftest import write_vocab

HIDDEN, FFN = 16, 32
W1, W2 = "encoder.layer.0.intermediate.dense.weight", "encoder.layer.0.output.dense.weight"


def make_toy_dir(directory: Path, seed: int = 0) -> Path:
    from safetensors.numpy import save_file

    write_vocab(directory)
    vocab = len((directory / "vocab.txt").read_text().split())
    rng = np.random.default_rng(seed)
    tensors = {
        "embeddings.word_embeddings.weight": rng.normal(0, 1, (vocab, HIDDEN)).astype(np.float32),
        "embeddings.token_type_embeddings.weight": rng.normal(0, 1, (2, HIDDEN)).astype(np.float32),
        W1: rng.normal(0, 0.3, (FFN, HIDDEN)).astype(np.float32),
        "encoder.layer.0.intermediate.dense.bias": rng.normal(0, 0.1, FFN).astype(np.float32),
        W2: rng.normal(0, 0.3, (HIDDEN, FFN)).astype(np.float32),
        "encoder.layer.0.output.dense.bias": rng.normal(0, 0.1, HIDDEN).astype(np.float32),
    }
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps({"model_type": "bert", "vocab_size": vocab,
                                                       "hidden_size": HIDDEN, "intermediate_size": FFN}))
    return directory


def _weights(artifact) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(artifact.path / "model.safetensors")


def toy_forward(artifact, encoded) -> np.ndarray:
    w = _weights(artifact)
    h = w["embeddings.word_embeddings.weight"][encoded.input_ids]
    h = (h + w["embeddings.token_type_embeddings.weight"][encoded.token_type_ids]) * encoded.attention_mask[..., None]
    h = np.maximum(h @ w[W1].T + w["encoder.layer.0.intermediate.dense.bias"], 0)
    return (h @ w[W2].T + w["encoder.layer.0.output.dense.bias"]).astype(np.float32)


def toy_onnx(artifact, path: Path, opset: int = 14, ir_version: int = 7,
             input_names: tuple[str, str, str] = ("input_ids", "attention_mask", "token_type_ids")) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = _weights(artifact)
    ids, mask, types = input_names
    inits = [numpy_helper.from_array(w["embeddings.word_embeddings.weight"], "word"),
             numpy_helper.from_array(w["embeddings.token_type_embeddings.weight"], "types"),
             numpy_helper.from_array(np.ascontiguousarray(w[W1].T), "w1"),
             numpy_helper.from_array(w["encoder.layer.0.intermediate.dense.bias"], "b1"),
             numpy_helper.from_array(np.ascontiguousarray(w[W2].T), "w2"),
             numpy_helper.from_array(w["encoder.layer.0.output.dense.bias"], "b2"),
             numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2")]
    nodes = [helper.make_node("Gather", ["word", ids], ["e1"]),
             helper.make_node("Gather", ["types", types], ["e2"]),
             helper.make_node("Add", ["e1", "e2"], ["e"]),
             helper.make_node("Cast", [mask], ["maskf"], to=TensorProto.FLOAT),
             helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
             helper.make_node("Mul", ["e", "mask3"], ["h"]),
             helper.make_node("MatMul", ["h", "w1"], ["m1"]),
             helper.make_node("Add", ["m1", "b1"], ["a1"]),
             helper.make_node("Relu", ["a1"], ["r1"]),
             helper.make_node("MatMul", ["r1", "w2"], ["m2"]),
             helper.make_node("Add", ["m2", "b2"], ["output"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in input_names]
    output = helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "sequence", HIDDEN])
    graph = helper.make_graph(nodes, "toy", inputs, [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version)
    onnx.save(model, str(path))
    return path


def install_toy_exports(artifact, tmp: Path, forms: tuple[str, ...] = ("onnx-fp32",)) -> dict[str, Path]:
    """Put the toy's fp32 ONNX (and, if asked, ORT-quantized forms) and its reference into the export cache,
    as the torch environment would for a real model."""
    from bench import exports, recipes
    from bench.tokenizer import Tokenizer

    tmp.mkdir(parents=True, exist_ok=True)
    fp32 = toy_onnx(artifact, tmp / f"toy-{artifact.content_hash[:8]}.onnx")
    out = {"onnx-fp32": exports.install(artifact, "onnx-fp32", fp32, opset=14)}
    for form in forms:
        if form == "onnx-fp32":
            continue
        quantized = tmp / f"{form}-{artifact.content_hash[:8]}.onnx"
        quantize_toy(artifact, fp32, quantized, form)
        out[form] = exports.install(artifact, form, quantized)
    tok = Tokenizer.from_dir(artifact.path, vocab_size=artifact.vocab_size or None)
    encoded = recipes.probe(tok)
    exports.write_reference(artifact, encoded, toy_forward(artifact, encoded), runtime={"numpy": "toy"})
    return out


def quantize_toy(artifact, source: Path, out: Path, form: str) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    from bench import recipes
    from bench.tokenizer import Tokenizer

    if form == "onnx-int8-dynamic":
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
        return
    tok = Tokenizer.from_dir(artifact.path, vocab_size=artifact.vocab_size or None)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter([tok.encode([t], max_length=32).as_dict() for t in recipes.calibration_texts()])

        def get_next(self):
            return next(self.feeds, None)

    quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
