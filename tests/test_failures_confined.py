"""A derived file that cannot be built, fails its agreement check or is corrupt fails exactly the cells that need
it, with the reason; every other cell runs, and `bench run` exits 1 (0 when every cell is ok or skipped)."""

from __future__ import annotations

import importlib.util

import pytest

from bench import exports
from bench.artifacts import artifact_for, sha256_file
from bench.catalogue import get_backbone
from bench.cli import main
from bench.plan import plan_from_dict
from bench.pruning import for_sparsity
from bench.records import RECORDS_FILE, read
from bench.runner import run
from tests.conftest import make_tiny_model, needs_torch

HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
pytestmark = [needs_torch, pytest.mark.skipif(not HAS_ORT, reason="needs onnx and onnxruntime (torch env)")]


_SEEDS = iter(range(100, 200))


@pytest.fixture
def tiny_model_dir(tmp_path):
    """A tiny model of its own per test (its own content hash, so its own exports)."""
    return make_tiny_model(tmp_path / "tiny", seed=next(_SEEDS))


def plan_for(model_dir, parity: dict | None = None, suites=("params", "parity")):
    return plan_from_dict({
        "matrix": {"backbones": [str(model_dir)], "runtimes": ["torch", "onnxruntime"],
                   "precisions": ["fp32", "int8"], "sparsities": ["dense", "pruned90"], "suites": list(suites)},
        "run": {"threads": 1, "timeout_s": 300}, **({"parity": parity} if parity else {})})


def by_status(out_dir):
    recs = read(out_dir / RECORDS_FILE)
    return ({r.cell.label for r in recs if r.status == "ok"},
            {r.cell.label: r.reason for r in recs if r.status == "failed"})


def test_an_export_that_fails_its_check_fails_only_the_cells_that_run_it(tmp_path, tiny_model_dir):
    """A criterion no export can meet: every ONNX Runtime cell (fp32 and the INT8 quantized from it) fails with
    the measured disagreement; every torch cell still runs."""
    summary = run(plan_for(tiny_model_dir, parity={"rel_tol": 1e-15}), tmp_path / "out")
    ok, failed = by_status(tmp_path / "out")
    assert summary.failed == len(failed) == 8 and summary.ok == len(ok) == 8
    assert all(" torch " in label for label in ok) and all(" onnxruntime " in label for label in failed)
    assert all("disagrees with torch fp32" in why and "allowed 1e-15" in why for why in failed.values())


def test_a_build_that_crashes_fails_its_cells_and_leaves_the_reason_for_other_environments(
        tmp_path, tiny_model_dir, monkeypatch):
    from adapters.build import onnx_export

    base = artifact_for(get_backbone(str(tiny_model_dir)))
    pruned = for_sparsity(base, "pruned90")
    real_build = onnx_export.build

    def build(artifact, form, tmp, source):
        if artifact.content_hash == pruned.content_hash and form == "onnx-fp32":
            raise RuntimeError("exporter exploded")
        return real_build(artifact, form, tmp, source)

    monkeypatch.setattr(onnx_export, "build", build)
    summary = run(plan_for(tiny_model_dir), tmp_path / "out")
    ok, failed = by_status(tmp_path / "out")
    assert set(failed) == {f"{tiny_model_dir.resolve()} onnxruntime {p} pruned90 cpu {s}"
                           for p in ("fp32", "int8") for s in ("params", "parity")}
    assert all("building onnx-fp32 failed: RuntimeError: exporter exploded" in why for why in failed.values())
    assert summary.ok == 12 and any(" onnxruntime fp32 dense " in label for label in ok)
    # an environment that cannot build (DeepSparse's) reads the reason instead of a bare "not cached"
    monkeypatch.setattr(exports, "missing_build_modules", lambda form: ["torch"])
    why = exports.resolve(pruned, "onnx-fp32", plan_for(tiny_model_dir).criterion)
    assert "could not be built in the torch environment" in why and "exporter exploded" in why


def test_a_missing_export_where_it_cannot_be_built_fails_its_cells_naming_the_torch_environment(
        tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(exports, "missing_build_modules", lambda form: ["torch", "transformers"])
    pruned = for_sparsity(artifact_for(get_backbone(str(tiny_model_dir))), "pruned80")
    why = exports.resolve(pruned, "onnx-int8-static", plan_for(tiny_model_dir).criterion)
    assert "lacks torch, transformers" in why and "bench(family='torch')" in why


def test_a_corrupt_cached_export_is_rebuilt_where_it_can_be_and_fails_its_cells_elsewhere(
        tmp_path, tiny_model_dir, monkeypatch):
    base = artifact_for(get_backbone(str(tiny_model_dir)))
    criterion = plan_for(tiny_model_dir).criterion
    path = exports.ready_file(base, "onnx-fp32")
    good = sha256_file(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the hash can tell
    path.write_bytes(bytes(data))
    assert exports.resolve(base, "onnx-fp32", criterion) is None and sha256_file(path) == good  # rebuilt
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    can_build = exports.missing_build_modules
    monkeypatch.setattr(exports, "missing_build_modules", lambda form: ["torch"])
    why = exports.resolve(base, "onnx-fp32", criterion)
    assert "truncated or modified" in why and "run the torch environment to rebuild it" in why
    monkeypatch.setattr(exports, "missing_build_modules", can_build)
    assert exports.resolve(base, "onnx-fp32", criterion) is None and sha256_file(path) == good


def test_a_corrupt_cached_artifact_is_rebuilt_with_the_same_content():
    art = artifact_for(get_backbone("bert-tiny"))
    weights = art.path / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    again = artifact_for(get_backbone("bert-tiny"))
    assert again.content_hash == art.content_hash == sha256_file(again.path / "model.safetensors")


def test_bench_run_exits_1_when_a_cell_failed_and_0_when_none_did(tmp_path, tiny_model_dir, capsys):
    strict = tmp_path / "strict.toml"
    strict.write_text(f'[matrix]\nbackbones = ["{tiny_model_dir}"]\nruntimes = ["torch", "onnxruntime"]\n'
                      'precisions = ["fp32"]\nsuites = ["params"]\n[parity]\nrel_tol = 1e-15\n'
                      '[run]\nthreads = 1\n')
    assert main(["run", "--preset", str(strict), "--out", str(tmp_path / "a"), "--no-report"]) == 1
    assert "1 ok, 1 failed" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "a"), "--check"]) == 1
    loose = tmp_path / "loose.toml"
    loose.write_text(strict.read_text().replace("rel_tol = 1e-15", "rel_tol = 1e-4"))
    assert main(["run", "--preset", str(loose), "--out", str(tmp_path / "b"), "--no-report"]) == 0
    assert main(["report", str(tmp_path / "b"), "--out", str(tmp_path / "b"), "--check"]) == 0


def test_an_fp32_parity_cell_outside_the_criterion_fails_with_the_measured_values(monkeypatch):
    """Scaled to the output: 1e-3 off on outputs of magnitude 1 fails the default criterion, the same 1e-3 on
    outputs of magnitude 1000 passes; INT8 cells are measured, never judged."""
    import numpy as np

    from bench.cell import Cell
    from bench.errors import CellError
    from bench.plan import Plan
    from bench.tokenizer import Encoded
    from suites import parity

    ids = np.ones((2, 4), dtype=np.int64)
    encoded = Encoded(ids, np.ones_like(ids), np.zeros_like(ids))

    class Adapter:
        artifact = None

        def __init__(self, out):
            self.out = out

        def encode(self, texts, max_length):
            return type("B", (), {"encoded": encoded, "shape": (2, 4)})()

        def forward(self, batch):
            return self.out + 1e-3

    settings = Plan().criterion
    for scale, passes in ((1.0, False), (1000.0, True)):
        ref = np.random.default_rng(0).standard_normal((2, 4, 8)).astype(np.float32) * scale
        monkeypatch.setattr(parity.exports, "load_reference", lambda _a, ref=ref: exports.Reference(encoded, ref, {}))
        fp32 = Cell("m", "onnxruntime", "fp32", "dense", "cpu", "parity")
        if passes:
            m = parity.SUITE.run(Adapter(ref), fp32, settings).metrics
            assert m["within_tolerance"] and m["criterion"]["rel_tol"] == 1e-4
        else:
            with pytest.raises(CellError, match="disagree with torch fp32 beyond the \\[parity\\] criterion"):
                parity.SUITE.run(Adapter(ref), fp32, settings)
        int8 = Cell("m", "onnxruntime", "int8", "dense", "cpu", "parity")
        m = parity.SUITE.run(Adapter(ref), int8, settings).metrics
        assert m["criterion"] is None and "within_tolerance" not in m
