"""The DeepSparse adapter in its own environment (no torch there): a toy encoder made with numpy and
onnx.helper, so dense, pruned and static-INT8 graphs are checked against exact reference outputs.
Run with `nox -s tests_deepsparse`; skipped elsewhere."""

import importlib.util
import os
from pathlib import Path

import pytest

from bench import exports
from bench.agreement import Agreement
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.plan import Cell, plan_from_dict
from bench.pruning import for_sparsity
from bench.records import RECORDS_FILE, read
from tests.onnx_toy import install_toy_exports, make_toy_dir, toy_onnx

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")
HAS_DEEPSPARSE = importlib.util.find_spec("deepsparse") is not None
pytestmark = [pytest.mark.deepsparse,
              pytest.mark.skipif(not HAS_DEEPSPARSE, reason="deepsparse not importable: it needs its own "
                                 "environment (Python < 3.12, numpy < 2, onnx 1.14); run nox -s tests_deepsparse")]
FORMS = ("onnx-fp32", "onnx-int8-static")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ds")
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before conftest's per-test cache isolation
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        base = artifact_for(get_backbone(str(make_toy_dir(tmp / "toy"))))
        for sparsity in ("dense", "pruned90"):
            install_toy_exports(for_sparsity(base, sparsity), tmp / sparsity, FORMS)
    return base


def load(artifact, precision="fp32", threads=1):
    from adapters.base import Numerics, Options
    from adapters.deepsparse_runtime import DeepSparseAdapter

    adapter = DeepSparseAdapter()
    adapter.load(artifact, Numerics(precision), "cpu", Options(threads=threads))
    return adapter


def parity(adapter, precision):
    from suites import parity

    cell = Cell(adapter.artifact.backbone, "deepsparse", precision, "dense", "cpu", "parity")
    return parity.SUITE.run(adapter, cell, Agreement()).metrics


@pytest.mark.parametrize("sparsity", ["dense", "pruned90"])
def test_fp32_agrees_with_the_reference_within_1e4(toy, sparsity):
    m = parity(load(for_sparsity(toy, sparsity)), "fp32")
    assert m["max_abs_diff"] <= 1e-4 and m["within_tolerance"]


def test_static_int8_runs_and_reports_its_drift(toy):
    m = parity(load(toy, "int8-static"), "int8-static")
    assert 0 < m["max_abs_diff"] < 1.0 and m["cosine"] > 0.99 and m["criterion"] is None


def test_one_engine_per_shape_compiled_in_encode_and_the_cache_is_left_alone(toy):
    adapter = load(toy, threads=2)
    path = exports.onnx_path(toy, "onnx-fp32")
    before = path.read_bytes()
    a = adapter.encode(["the film is good ."], max_length=8)
    b = adapter.encode(["rain fell", "a boat"], max_length=16)
    assert adapter.forward(a).shape == (1, 8, 16) and adapter.forward(b).shape == (2, 16, 16)
    info = adapter.info()
    assert info["engines"] == ["b1 s8", "b2 s16"] and info["num_cores"] == 2 and info["isa"]
    assert path.read_bytes() == before  # deepsparse's shape override rewrites files in place: not ours
    pruned = load(for_sparsity(toy, "pruned90")).parameters()
    assert pruned.total == adapter.parameters().total and pruned.nonzero < adapter.parameters().nonzero
    adapter.close()


def test_ir_version_above_9_fails_with_the_reason(toy, tmp_path):
    from adapters.onnx_common import open_model
    from bench.errors import CellError

    with pytest.raises(CellError, match="IR version 10 > 9"):
        open_model(toy_onnx(toy, tmp_path / "ir10.onnx", ir_version=10), max_opset=19, max_ir=9)


def test_cells_run_through_the_runner_and_a_missing_export_fails_only_its_cells(toy, tmp_path, monkeypatch):
    from bench.runner import run

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    plan = plan_from_dict({"matrix": {"backbones": [str(toy.path)], "runtimes": ["deepsparse"],
                                      "precisions": ["fp32", "int8-static"], "sparsities": ["dense", "pruned90"],
                                      "suites": ["params", "parity"]},
                           "run": {"threads": 1, "timeout_s": 120}})
    summary = run(plan, tmp_path / "out")
    assert (summary.ok, summary.failed) == (8, 0)
    recs = read(tmp_path / "out" / RECORDS_FILE)
    assert all(r.runtime["deepsparse"] for r in recs)
    assert {r.metrics["target_sparsity"] for r in recs if r.cell.suite == "params"} == {0.0, 0.9}
    exports.onnx_path(toy, "onnx-fp32").unlink()
    if not exports.missing_build_modules("onnx-fp32"):
        pytest.skip("torch is installed here: a missing export would be rebuilt, not refused")
    summary = run(plan, tmp_path / "out2")
    failed = [r for r in read(tmp_path / "out2" / RECORDS_FILE) if r.status == "failed"]
    # only dense fp32 reads that export (the INT8 graphs were installed by hand): its params and parity cells
    assert (summary.ok, summary.failed) == (6, 2) and len(failed) == 2
    assert all((r.cell.sparsity, r.cell.precision) == ("dense", "fp32") and "bench(family='torch')" in r.reason
               for r in failed)


def test_deepsparse_declares_static_int8_only():
    from bench.runtimes import get_runtime

    ds = get_runtime("deepsparse")
    assert ds.supports("int8-static", "cpu", "pruned90") and not ds.supports("int8", "cpu", "dense")
    assert all(ds.form(p) for p in ds.precisions["cpu"])
