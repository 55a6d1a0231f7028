"""NNCF post-training INT8 of the fp32 ONNX export: the file OpenVINO's INT8 cells run (form onnx-int8-nncf).

NNCF is OpenVINO's own quantizer; its transformer recipe (model_type TRANSFORMER) places FakeQuantize-equivalent
QDQ pairs where OpenVINO's CPU plugin runs INT8 kernels and keeps the rest in floating point. It is calibrated on
the same inputs as ONNX Runtime's static INT8 (bench/recipes.py: calibration sentences, the fine-tuned task's train
examples, windows of real text at the timing length), never on dev. Its ONNX backend keeps the result one ONNX file,
so it is cached, hashed and checked like every other derived file, and OpenVINO reads it as it reads the fp32 export.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from adapters.build.ort_int8 import _Calibration, quiet_root_logger
from bench import recipes
from bench.artifacts import Artifact
from bench.tokenizer import Tokenizer


def quantize(artifact: Artifact, source: Path, out: Path) -> dict:
    import nncf
    import onnx

    recipe = recipes.NNCF_INT8
    proto = onnx.load(str(source))
    names = [i.name for i in proto.graph.input]
    tok = Tokenizer.from_dir(artifact.path, vocab_size=artifact.vocab_size or None)
    feeds = _Calibration(tok, names, artifact if artifact.task else None, recipe["task_examples"]).feeds()
    logging.getLogger("nncf").setLevel(logging.ERROR)  # progress bars and notes on every call
    with warnings.catch_warnings(), quiet_root_logger():
        warnings.simplefilter("ignore")
        quantized = nncf.quantize(proto, nncf.Dataset(feeds), preset=getattr(nncf.QuantizationPreset, recipe["preset"]),
                                  model_type=getattr(nncf.ModelType, recipe["model_type"]),
                                  subset_size=min(recipe["subset_size"], len(feeds)),
                                  fast_bias_correction=recipe["fast_bias_correction"])
    onnx.save(quantized, str(out))
    ops: dict[str, int] = {}
    for node in quantized.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"method": "nncf.quantize (ONNX backend)", "nncf": nncf.__version__,
            "recipe": recipes.nncf_ident(), "calibration_batches": len(feeds),
            "calibration_task_examples": recipe["task_examples"] if artifact.task else None,
            "quantize_linear": ops.get("QuantizeLinear", 0), "dequantize_linear": ops.get("DequantizeLinear", 0),
            "opset": next(o.version for o in quantized.opset_import if o.domain in ("", "ai.onnx")),
            "probe": _probe(artifact, source, out)}


def _probe(artifact: Artifact, source: Path, out: Path) -> dict:
    """How far the INT8 file's outputs are from the fp32 export's on the parity probe (real tokens only), run by
    OpenVINO at f32 (the runtime the file is for)."""
    import openvino as ov

    probe = recipes.probe(Tokenizer.from_dir(artifact.path, vocab_size=artifact.vocab_size or None))
    core = ov.Core()

    def run(path: Path) -> np.ndarray:
        compiled = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        feed = {p.get_any_name(): probe.as_dict()[p.get_any_name()] for p in compiled.inputs}
        return np.asarray(compiled(feed)[0], dtype=np.float64)

    ref, got = run(source), run(out)
    if ref.ndim == 3:
        keep = probe.attention_mask.astype(bool)
        ref, got = ref[keep], got[keep]
    cosine = float((ref * got).sum() / (np.linalg.norm(ref) * np.linalg.norm(got)))
    return {"cosine_vs_fp32_onnx": cosine, "max_abs_diff_vs_fp32_onnx": float(np.abs(ref - got).max())}
