"""ONNX export in the torch environment: checked against torch, dynamic axes, cached by content hash,
quantized forms, and a clear error where an export is missing and cannot be built."""

import importlib.util

import numpy as np
import pytest

from bench import exports, recipes
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.errors import CellError, UsageError
from bench.pruning import for_sparsity
from tests.conftest import needs_torch

HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
pytestmark = [needs_torch, pytest.mark.skipif(not HAS_ORT, reason="needs onnx and onnxruntime (torch env)")]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return artifact_for(get_backbone(str(tiny_model_dir)))


def test_fp32_export_matches_torch_and_has_dynamic_axes(tiny):
    import onnx

    from adapters.build.onnx_export import ort_run
    from bench.tokenizer import Tokenizer

    path = exports.ready_file(tiny, "onnx-fp32")
    meta = exports.read_sidecar(path)
    assert meta["max_abs_diff_vs_torch"] <= 1e-4 and meta["opset"] == 14 and meta["ir_version"] <= 9
    assert meta["content_hash"] == tiny.content_hash and path.stat().st_size == meta["size"]
    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == 14
    tok = Tokenizer.from_dir(tiny.path)
    for texts, length in ((["the film is good ."], 5), (["rain fell", "a boat", "the report", "it was"], 40)):
        out = ort_run(path, tok.encode(texts, max_length=length))
        assert out.shape == (len(texts), length, 32)
    # cached: a second call neither rebuilds nor rewrites
    mtime = path.stat().st_mtime_ns
    assert exports.ready_file(tiny, "onnx-fp32") == path and path.stat().st_mtime_ns == mtime


def test_exports_are_keyed_by_content_hash(tiny):
    pruned = for_sparsity(tiny, "pruned80")
    a, b = exports.ready_file(tiny, "onnx-fp32"), exports.ready_file(pruned, "onnx-fp32")
    assert a != b and exports.read_sidecar(b)["sparsity"] == 0.8
    assert exports.derived_dir(pruned) == pruned.path  # cache-built artifacts hold their own exports
    assert exports.derived_dir(tiny) != tiny.path  # a user's model directory is never written to


@pytest.mark.parametrize("form", ["onnx-int8-dynamic", "onnx-int8-static"])
def test_quantized_forms_are_built_from_the_fp32_export(tiny, form):
    import onnx

    path = exports.ready_file(tiny, form)
    meta = exports.read_sidecar(path)
    assert meta["ir_version"] <= 9 and meta["opset"] == 14
    assert 0.9 < meta["probe_cosine_vs_fp32_onnx"] <= 1.0 + 1e-6
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert ("MatMulInteger" in ops) if form == "onnx-int8-dynamic" else {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_reference_outputs_are_torch_fp32_on_the_probe(tiny):
    ref = exports.load_reference(tiny)
    assert ref.output.shape == (len(recipes.probe_texts()), recipes.PROBE_SEQ_LEN, 32)
    assert ref.encoded.input_ids.shape == ref.output.shape[:2] and np.isfinite(ref.output).all()


@pytest.mark.parametrize("opset", [9, 13, 99])
def test_unsupported_export_opset_is_a_usage_error(tiny, tmp_path, opset):
    from adapters.build.onnx_export import export_onnx

    with pytest.raises(UsageError, match=f"ONNX opset {opset} not supported"):
        export_onnx(tiny, tmp_path / "x.onnx", opset=opset)


def test_missing_export_without_torch_names_the_torch_environment(tiny, monkeypatch):
    pruned = for_sparsity(tiny, "pruned90")
    monkeypatch.setattr(exports, "missing_build_modules", lambda form: ["torch", "transformers"])
    with pytest.raises(CellError, match="run .*bench\\(family='torch'\\).* first"):
        exports.ready_file(pruned, "onnx-int8-static")
    with pytest.raises(CellError, match="lacks torch"):
        exports.ready_file(pruned, "reference")


def test_the_export_check_is_measured_and_stored_and_judged_by_the_plans_criterion(tiny):
    from bench.agreement import Agreement

    check = exports.read_sidecar(exports.ready_file(tiny, "onnx-fp32"))["check_vs_torch"]
    # the worst of the two checked shapes, each diff scaled by its own reference
    assert 0 < check["scaled_max_diff"] <= check["max_abs_diff"] / check["ref_max_abs"] < 1e-4
    assert exports.resolve(tiny, "onnx-fp32", Agreement()) is None
    assert "disagrees with torch fp32" in exports.resolve(tiny, "onnx-int8-dynamic", Agreement(rel_tol=0.0))
