"""The ONNX Runtime adapter on a tiny exported BERT: fp32 parity with torch, INT8 drift reported, pruned
weights held, settings recorded; and bad ONNX files failing only their own cell, with the reason."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from adapters.base import Numerics, Options
from bench import exports, recipes
from bench.agreement import Agreement
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.errors import CellSkipped
from bench.plan import Cell, plan_from_dict
from bench.pruning import for_sparsity
from bench.records import RECORDS_FILE, read
from bench.runner import run
from tests.conftest import needs_torch
from tests.onnx_toy import install_toy_exports, make_toy_dir, toy_onnx

HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
pytestmark = pytest.mark.skipif(not HAS_ORT, reason="needs onnx and onnxruntime")
REPO = Path(__file__).resolve().parent.parent


def load(artifact, precision="fp32", device="cpu"):
    from adapters.ort_runtime import OrtAdapter

    adapter = OrtAdapter()
    adapter.load(artifact, Numerics(precision, "dense"), device, Options(threads=1))
    return adapter


def parity(adapter, precision="fp32"):
    from suites import parity

    cell = Cell(adapter.artifact.backbone, "onnxruntime", precision, "dense", "cpu", "parity")
    return parity.SUITE.run(adapter, cell, Agreement()).metrics


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return artifact_for(get_backbone(str(tiny_model_dir)))


@needs_torch
@pytest.mark.parametrize("sparsity", ["dense", "pruned90"])
def test_fp32_agrees_with_torch_within_1e4(tiny, sparsity):
    m = parity(load(for_sparsity(tiny, sparsity)))
    assert m["max_abs_diff"] <= 1e-4 and m["within_tolerance"] and m["cosine"] > 0.99999
    assert m["probe_sentences"] == 16 and m["probe_seq_len"] == recipes.PROBE_SEQ_LEN


@needs_torch
@pytest.mark.parametrize("precision", ["int8", "int8-static"])
def test_int8_reports_its_drift(tiny, precision):
    m = parity(load(tiny, precision), precision)
    assert 1e-4 < m["max_abs_diff"] < 1.0 and 0.95 < m["cosine"] < 1.0
    assert m["criterion"] is None and "within_tolerance" not in m


@needs_torch
def test_parameters_info_and_pruned_zeros(tiny):
    dense, pruned = load(tiny), load(for_sparsity(tiny, "pruned90"))
    assert dense.parameters().total == pruned.parameters().total > 0
    assert pruned.parameters().nonzero < 0.75 * dense.parameters().nonzero
    int8 = load(tiny, "int8").parameters()
    assert int8.bytes < dense.parameters().bytes
    info = dense.info()
    assert info["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert info["intra_op_threads"] == 1 and info["inter_op_threads"] == 1 and info["opset"] == 14
    out = dense.forward(dense.encode(["the film is good .", "rain fell"], max_length=12))
    assert out.shape == (2, 12, 32) and out.dtype == np.float32


@needs_torch
def test_cuda_without_the_cuda_provider_is_skipped_with_a_reason(tiny):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed: the skip path cannot be exercised")
    with pytest.raises(CellSkipped, match="CUDAExecutionProvider"):
        load(tiny, "fp16", device="cuda")


def test_bad_onnx_files_fail_their_cells_with_the_reason_and_the_run_goes_on(tmp_path):
    """Truncated, corrupt, wrong inputs, unsupported opset: one clear reason each; good cells still run."""
    base = artifact_for(get_backbone(str(make_toy_dir(tmp_path / "toy"))))
    pruned = for_sparsity(base, "pruned90")
    install_toy_exports(base, tmp_path / "x", ("onnx-fp32",))
    install_toy_exports(pruned, tmp_path / "y", ("onnx-fp32", "onnx-int8-static"))
    truncated = exports.onnx_path(base, "onnx-fp32")
    truncated.write_bytes(truncated.read_bytes()[:300])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07\x12\x04this is not an onnx model" * 10)
    exports.install(base, "onnx-int8-dynamic", garbage)
    exports.install(base, "onnx-int8-static", toy_onnx(base, tmp_path / "names.onnx",
                                                          input_names=("ids", "mask", "types")))
    exports.install(pruned, "onnx-int8-dynamic", toy_onnx(pruned, tmp_path / "op99.onnx", opset=99))
    plan = plan_from_dict({"matrix": {"backbones": [str(base.path)], "runtimes": ["onnxruntime"],
                                      "precisions": ["fp32", "int8", "int8-static"],
                                      "sparsities": ["dense", "pruned90"], "suites": ["parity"]},
                           "run": {"threads": 1, "timeout_s": 120}})
    summary = run(plan, tmp_path / "out")
    recs = {(r.cell.sparsity, r.cell.precision): r for r in read(tmp_path / "out" / RECORDS_FILE)}
    assert (summary.ok, summary.failed) == (2, 4)
    assert "truncated or modified" in recs["dense", "fp32"].reason
    assert "not a readable ONNX model" in recs["dense", "int8"].reason
    assert "model input 'ids' does not match the shared tokenizer's outputs" in recs["dense", "int8-static"].reason
    assert "unsupported ONNX opset 99" in recs["pruned90", "int8"].reason
    assert recs["pruned90", "fp32"].metrics["max_abs_diff"] <= 1e-4
    assert recs["pruned90", "fp32"].artifact["sparsity"] == 0.9
    assert recs["pruned90", "int8-static"].metrics["cosine"] > 0.9
    assert all("\n" not in r.reason for r in recs.values() if r.reason)
    from bench import report

    md = report.write(read(tmp_path / "out" / RECORDS_FILE), tmp_path / "report")["md"].read_text()
    assert "max_abs_diff" in md and "cosine" in md and "unsupported ONNX opset 99" in md


@needs_torch
@pytest.mark.parametrize("precision,fusions", [("fp32", {"LayerNormalization", "BiasGelu", "FusedMatMul"}),
                                               ("int8", {"DynamicQuantizeMatMul", "MatMulIntegerToFloat"})])
def test_info_counts_the_op_types_of_the_optimized_graph_and_the_fusions_among_them(tiny, precision, fusions,
                                                                                   tmp_path, monkeypatch):
    import onnx

    from adapters.ort_runtime import FUSED_OPS, op_counts

    adapter = load(tiny, precision)
    assert adapter._options.optimized_model_filepath == ""  # the timed session writes nothing
    graph = adapter.info()["optimized_graph"]
    exported = op_counts(onnx.load(str(adapter.model.path)).graph)
    assert graph["nodes"] == sum(graph["op_counts"].values()) > 0
    assert graph["fused"] == {op: n for op, n in graph["op_counts"].items() if op in FUSED_OPS}
    assert fusions <= set(graph["fused"]) and not fusions & set(exported)  # ORT made them: the export has none
    assert graph["op_counts"] != dict(exported)
    kept = list(adapter.model.path.parent.glob(adapter.model.path.name + ".ort-*-graph.json"))
    assert len(kept) == 1 and not list(adapter.model.path.parent.glob("*optimized*"))  # counted once, dump gone
    assert adapter.model_files == (adapter.model.path,)  # what bench.resources sizes on disk
    assert adapter.forward(adapter.encode(["rain fell"], max_length=8)).shape == (1, 8, 32)


def test_op_counts_reach_into_subgraphs():
    from onnx import TensorProto, helper

    from adapters.ort_runtime import op_counts

    def branch(name, op):
        out = helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, [1])
        return helper.make_graph([helper.make_node(op, ["x"], [f"{name}_y"])], name, [], [out])

    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", "Gelu"),
                            else_branch=branch("else", "Relu"))
    graph = helper.make_graph([node, helper.make_node("Identity", ["y"], ["z"])], "g",
                              [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])])
    assert op_counts(graph) == {"If": 1, "Identity": 1, "Gelu": 1, "Relu": 1}


@needs_torch
def test_an_optimized_graph_that_cannot_be_written_costs_the_counts_not_the_cell(tiny, monkeypatch):
    import subprocess

    from adapters import ort_runtime

    def refuses_to_save(command):
        return subprocess.CompletedProcess(command, 1, "", "Traceback ...\nRuntimeError: cannot serialize over 2 GiB\n")

    monkeypatch.setattr(ort_runtime, "_run_child", refuses_to_save)
    adapter = load(tiny, "int8-static")
    for kept in adapter.model.path.parent.glob(adapter.model.path.name + ".ort-*-graph.json"):
        kept.unlink()
    assert adapter.info()["optimized_graph"] == {
        "error": "writing the optimized graph failed (exit 1): RuntimeError: cannot serialize over 2 GiB"}
    assert adapter.forward(adapter.encode(["rain fell"], max_length=8)).shape == (1, 8, 32)
