"""The OpenVINO adapter on a tiny exported BERT: fp32 really runs f32 (the plugin's default would be bf16 here),
agrees with torch; NNCF INT8 is built from train-side text and runs INT8 kernels; precisions the plugin lacks are
skipped with the reason; a graph it cannot compile fails its cell; preset properties are validated at plan time."""

import importlib.util

import numpy as np
import pytest

from adapters.base import Numerics, Options
from bench import exports
from bench.agreement import Agreement
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.errors import CellError, CellSkipped, UsageError
from bench.plan import Cell, plan_from_dict
from bench.pruning import for_sparsity
from bench.records import RECORDS_FILE, read
from bench.runner import run
from tests.conftest import needs_torch

HAS_OV = all(importlib.util.find_spec(m) for m in ("openvino", "onnx", "onnxruntime"))
pytestmark = [pytest.mark.skipif(not HAS_OV, reason="needs the openvino extra (openvino, nncf) and onnx"),
              needs_torch]


def load(artifact, precision="fp32", sparsity="dense", properties=None):
    from adapters.openvino_runtime import OpenVINOAdapter

    adapter = OpenVINOAdapter()
    adapter.load(artifact, Numerics(precision, sparsity), "cpu", Options(threads=1, properties=properties))
    return adapter


def parity(adapter, precision="fp32"):
    from suites import parity

    cell = Cell(adapter.artifact.backbone, "openvino", precision, "dense", "cpu", "parity")
    return parity.SUITE.run(adapter, cell, Agreement()).metrics


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return artifact_for(get_backbone(str(tiny_model_dir)))


def test_fp32_sets_the_f32_hint_explicitly_and_agrees_with_torch(tiny):
    adapter = load(tiny)
    metrics = parity(adapter)
    info = adapter.info()
    assert info["requested"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert info["properties"]["INFERENCE_PRECISION_HINT"] == "f32"  # read back from the compiled model
    assert metrics["max_abs_diff"] < 1e-4 and metrics["cosine"] > 0.99999
    assert set(info["executed"]["runtime_precisions"]) <= {"f32", "i32", "i64", "u8", "boolean", "dynamic"}
    adapter.close()


def test_each_shape_is_compiled_once_outside_the_forward(tiny):
    adapter = load(tiny)
    batch = adapter.encode(["the film is good"], max_length=16)
    again = adapter.encode(["the boat"], max_length=16)
    adapter.encode(["the rain fell"] * 2, max_length=16)
    assert adapter.forward(batch).shape == adapter.forward(again).shape
    assert sorted(adapter.info()["compile_s"]) == ["b1 s16", "b2 s16"]
    adapter.close()


def test_a_precision_the_plugin_lacks_is_skipped_with_its_capabilities(tiny, monkeypatch):
    import openvino as ov

    real = ov.Core.get_property

    def without_bf16(self, device, name):
        value = real(self, device, name)
        return [c for c in value if c != "BF16"] if name == "OPTIMIZATION_CAPABILITIES" else value

    monkeypatch.setattr(ov.Core, "get_property", without_bf16)
    with pytest.raises(CellSkipped, match="reports no BF16 capability here"):
        load(tiny, "bf16")


def test_nncf_int8_is_built_from_the_fp32_export_and_runs_int8_kernels(tiny):
    adapter = load(tiny, "int8-static")
    meta = exports.read_sidecar(exports.onnx_path(tiny, "onnx-int8-nncf"))
    assert meta["method"].startswith("nncf.quantize") and meta["quantize_linear"] > 0
    assert meta["recipe"]["model_type"] == "TRANSFORMER"
    assert meta["source"] == exports.onnx_path(tiny, "onnx-fp32").name
    metrics = parity(adapter, "int8-static")
    assert metrics["cosine"] > 0.9
    kernels = adapter.info()["executed"]["matmul_kernels"]
    assert any(kind.endswith(":i8") for kind in kernels), kernels
    adapter.close()


def test_pruned_int8_asks_for_sparse_weight_kernels_and_records_whether_they_applied(tiny):
    pruned = for_sparsity(tiny, "pruned90")
    adapter = load(pruned, "int8-static", "pruned90")
    adapter.forward(adapter.encode(["the film"], max_length=8))
    info = adapter.info()
    assert info["requested"]["CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"] == 0.5
    assert info["properties"]["CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE"] == pytest.approx(0.5)
    assert isinstance(info["executed"]["sparse_weight_layers"], int)  # 0 without AMX: recorded, not assumed
    adapter.close()
    dense = load(tiny, "int8-static")
    assert "CPU_SPARSE_WEIGHTS_DECOMPRESSION_RATE" not in dense.info()["requested"]
    dense.close()


def test_a_graph_openvino_cannot_compile_fails_with_the_reason(tiny, monkeypatch):
    import openvino as ov

    adapter = load(tiny)

    def refuse(self, *args, **kwargs):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:112:\nunsupported op")

    monkeypatch.setattr(ov.Core, "compile_model", refuse)
    with pytest.raises(CellError, match="OpenVINO cannot compile it for b1 s8: RuntimeError: Exception from"):
        adapter.encode(["the film"], max_length=8)
    adapter.close()


def test_preset_properties_reach_the_compiled_model(tiny):
    adapter = load(tiny, properties={"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": 1})
    adapter.forward(adapter.encode(["the film"], max_length=8))
    assert adapter.info()["properties"]["PERFORMANCE_HINT"] == "THROUGHPUT"
    adapter.close()


@pytest.mark.parametrize("properties,message", [
    ({"INFERENCE_NUM_THREAD": 2}, r"unknown openvino property \['INFERENCE_NUM_THREAD'\]; allowed: PERFORMANCE_HINT"),
    ({"INFERENCE_PRECISION_HINT": "bf16"}, "unknown openvino property"),  # the cell's precision decides it
    ({"NUM_STREAMS": [1]}, "NUM_STREAMS must be a string, number or boolean"),
])
def test_an_unknown_or_bad_openvino_property_is_a_usage_error_naming_the_allowed_ones(properties, message):
    with pytest.raises(UsageError, match=message):
        plan_from_dict({"matrix": {"backbones": ["minilm-l6-h384"], "runtimes": ["openvino"]},
                        "runtime": {"openvino": {"properties": properties}}})


def test_a_runtime_without_properties_refuses_them():
    with pytest.raises(UsageError, match="runtime 'torch' takes no properties"):
        plan_from_dict({"matrix": {"backbones": ["minilm-l6-h384"], "runtimes": ["torch"]},
                        "runtime": {"torch": {"properties": {"NUM_STREAMS": 1}}}})


def test_openvino_cells_run_end_to_end_with_startup_memory_and_parity_in_the_records(tiny_model_dir, tmp_path):
    plan = plan_from_dict({"matrix": {"backbones": [str(tiny_model_dir)], "runtimes": ["openvino"],
                                      "precisions": ["fp32", "int8-static"], "suites": ["params", "latency", "parity"]},
                           "runtime": {"openvino": {"properties": {"ENABLE_CPU_PINNING": False}}},
                           "latency": {"seq_lens": [8], "min_iters": 3, "min_time_s": 0.05, "warmup_s": 0.0},
                           "run": {"rounds": 2}})
    summary = run(plan, tmp_path)
    recs = {(r.cell.precision, r.cell.suite): r for r in read(tmp_path / RECORDS_FILE)}
    assert summary.failed == 0 and {r.status for r in recs.values()} == {"ok"}
    latency = recs["fp32", "latency"]
    assert latency.settings["properties"] == {"openvino": {"ENABLE_CPU_PINNING": False}}
    assert latency.runtime["properties"]["ENABLE_CPU_PINNING"] is False
    startup = latency.runtime["startup"]
    assert startup["shape"] == [1, 8] and startup["first_inference_s"] == pytest.approx(
        startup["load_s"] + startup["prepare_s"] + startup["first_forward_s"])
    assert latency.runtime["memory"]["peak_rss_bytes"] >= latency.runtime["memory"]["rss_after_load_bytes"] > 0
    assert latency.runtime["model_disk_bytes"] == exports.onnx_path(
        artifact_for(get_backbone(str(tiny_model_dir))), "onnx-fp32").stat().st_size
    assert recs["int8-static", "parity"].metrics["cosine"] < 1.0
    assert np.isfinite(recs["int8-static", "latency"].metrics["p50_ms"])
