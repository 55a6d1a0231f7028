"""torch-compile: the torch adapter's model through torch.compile (inductor) on the tiny seeded BERT.

Inductor compiles a tiny BERT in 10-40 s on two cores, so one module-scoped adapter is compiled once, at two shapes,
and the tests read it; the failure paths replace torch.compile and compile nothing."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.base import Adapter, Numerics, Options
from bench.catalogue import get_backbone
from bench.errors import CellError, CellSkipped
from tests.conftest import needs_torch

pytestmark = needs_torch

TEXTS = ["the film is good .", "it was not bad , and the boat fell over ."]
SHAPES = {"b2 s12": (TEXTS, 12), "b1 s8": (TEXTS[:1], 8)}


def load(model_dir, precision="fp32", compiled=True):
    from adapters.torch_hf.adapter import TorchHFAdapter
    from adapters.torch_hf.compiled import TorchCompileAdapter
    from bench.artifacts import artifact_for

    adapter = TorchCompileAdapter() if compiled else TorchHFAdapter()
    adapter.load(artifact_for(get_backbone(str(model_dir))), Numerics(precision), "cpu", Options(threads=1))
    return adapter


def run(adapter, shape: str) -> np.ndarray:
    texts, seq_len = SHAPES[shape]
    return adapter.forward(adapter.encode(texts, max_length=seq_len))


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory):
    """The session's temporary bench cache (as the autouse fixture sets it, which a module fixture runs before),
    with TORCHINDUCTOR_CACHE_DIR unset as a user would leave it, and restored afterwards."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(cache))
        mp.setenv("TORCHINDUCTOR_CACHE_DIR", "placeholder")  # so that undoing the delenv restores an unset variable
        mp.delenv("TORCHINDUCTOR_CACHE_DIR")
        yield cache


@pytest.fixture(scope="module")
def compiled(tiny_model_dir, bench_cache):
    """The tiny BERT compiled at fp32, its first call made at each of SHAPES (the compiles), with those outputs."""
    adapter = load(tiny_model_dir)
    first = {shape: run(adapter, shape) for shape in SHAPES}
    yield adapter, first
    adapter.close()


def test_compiled_adapter_satisfies_the_protocol_and_holds_the_eager_parameters(compiled, tiny_model_dir):
    adapter, _ = compiled
    assert isinstance(adapter, Adapter) and adapter.name == "torch-compile"
    assert adapter.parameters() == load(tiny_model_dir, compiled=False).parameters()


def test_compiled_fp32_matches_eager_fp32_on_the_tiny_bert(compiled, tiny_model_dir):
    adapter, first = compiled
    eager = load(tiny_model_dir, compiled=False)
    for shape in SHAPES:
        ref, steady = run(eager, shape), run(adapter, shape)
        assert first[shape].shape == ref.shape and first[shape].dtype == np.float32
        assert np.abs(first[shape] - ref).max() < 1e-5  # the compiling call's output
        assert np.abs(steady - ref).max() < 1e-5  # and the compiled graph's afterwards


def test_compile_time_is_recorded_per_shape_apart_from_the_steady_state(compiled, bench_cache):
    adapter, _ = compiled
    for _ in range(3):  # steady-state calls: no new entries, no recompiles
        run(adapter, "b2 s12")
    info = adapter.info()
    comp = info["compile"]
    assert set(comp["first_call_s"]) == set(SHAPES) and all(t > 0 for t in comp["first_call_s"].values())
    assert comp["graphs"] == {shape: 1 for shape in SHAPES}  # fullgraph, static shapes: one graph each
    assert comp["recompiles_after_first_call"] == 0 and comp["failed"] == {}
    assert set(comp["fx_graph_cache"].values()) <= {"hit", "miss"}
    assert (comp["backend"], comp["mode"], comp["dynamic"], comp["fullgraph"]) == ("inductor", "default", False, True)
    assert comp["cache_dir"] == str((bench_cache / "inductor").resolve())
    assert (bench_cache / "inductor").is_dir() and comp["cxx"]
    assert info["torch"] and info["threads"] == 1


def test_compiled_bf16_stays_close_to_eager_fp32(tiny_model_dir, bench_cache):
    from bench.environment import native_support

    if not native_support("bf16"):
        with pytest.raises(CellSkipped, match="bf16"):  # the torch adapter's check, with its reason
            load(tiny_model_dir, "bf16")
        return
    low, ref = load(tiny_model_dir, "bf16"), load(tiny_model_dir, compiled=False)
    a, b = run(ref, "b1 s8"), run(low, "b1 s8")
    cos = (a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)
    assert 0.99 < cos < 1.0 and b.dtype == np.float32
    assert low.info()["compile"]["graphs"] == {"b1 s8": 1}


class Broken:
    """What a monkeypatched torch.compile returns: a module whose every call raises `exc` (counted)."""

    def __init__(self, exc: Exception):
        self.exc, self.calls = exc, 0

    def __call__(self, **inputs):
        self.calls += 1
        raise self.exc


def backend_failure():
    from torch._dynamo.exc import BackendCompilerFailed

    def inductor(gm, example_inputs):  # named as the backend is in dynamo's message
        return gm

    return BackendCompilerFailed(inductor, RuntimeError("simulated lowering error\nwith more lines"), None)


@pytest.mark.parametrize("make_exc,why", [
    (backend_failure, "BackendCompilerFailed: RuntimeError: simulated lowering error"),
    (lambda: RuntimeError("graph break in forward\nset TORCHDYNAMO_VERBOSE=1"), "RuntimeError: graph break in forward"),
])
def test_a_compile_failure_fails_the_cell_with_one_line_and_the_shape_is_not_retried(
        tiny_model_dir, bench_cache, monkeypatch, make_exc, why):
    import torch

    broken = Broken(make_exc())
    monkeypatch.setattr(torch, "compile", lambda model, **settings: broken)
    adapter = load(tiny_model_dir)
    batch = adapter.encode(TEXTS[:1], max_length=8)
    for _ in range(2):
        with pytest.raises(CellError) as caught:
            adapter.forward(batch)
        assert str(caught.value) == f"torch.compile (inductor) failed for shape b1 s8: {why}"
        assert "\n" not in str(caught.value)
    assert broken.calls == 1  # the second cell of that shape gets the reason without a second compile
    assert adapter.info()["compile"]["failed"] == {"b1 s8": str(caught.value)}


def test_a_compile_failure_is_a_cell_error_so_the_worker_keeps_its_process():
    from bench.worker import failure_fields

    fields = failure_fields(CellError("torch.compile (inductor) failed for shape b1 s8: RuntimeError: x"))
    assert fields == {"status": "failed", "reason": "torch.compile (inductor) failed for shape b1 s8: RuntimeError: x"}


@pytest.mark.parametrize("precision", ["int8", "int8-static"])
def test_int8_is_refused(tiny_model_dir, precision):
    with pytest.raises(CellError, match=r"torch-compile runs fp32/bf16 \(and fp16 on CUDA\)"):
        load(tiny_model_dir, precision)


def test_without_a_cpp_compiler_the_cpu_cell_is_skipped_with_the_reason(tiny_model_dir, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(CellSkipped, match=r"needs a C\+\+ compiler: .*not found on PATH"):
        load(tiny_model_dir)


def test_a_user_set_inductor_cache_dir_is_kept(tmp_path, monkeypatch):
    from adapters.torch_hf.compiled import choose_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert choose_cache_dir() == str(tmp_path / "mine")


def test_inductors_own_default_counts_as_unset(tmp_path, monkeypatch):
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from adapters.torch_hf.compiled import choose_cache_dir

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what importing torch._dynamo writes
    assert choose_cache_dir() == str((tmp_path / "cache" / "inductor").resolve())


def test_a_torch_compile_cell_runs_end_to_end_through_the_worker(tmp_path, tiny_model_dir, bench_cache):
    """params and parity of torch-compile fp32 through `bench run`'s worker: ok, parity within the criterion, and the
    compile of the probe's shape in the record."""
    from bench.plan import plan_from_dict
    from bench.records import RECORDS_FILE, read
    from bench.runner import run as run_plan

    plan = plan_from_dict({"matrix": {"backbones": [str(tiny_model_dir)], "runtimes": ["torch-compile"],
                                      "precisions": ["fp32"], "suites": ["params", "parity"]},
                           "run": {"threads": 1, "timeout_s": 300}})
    summary = run_plan(plan, tmp_path / "out")
    recs = {r.cell.suite: r for r in read(tmp_path / "out" / RECORDS_FILE)}
    assert (summary.ok, summary.failed) == (2, 0), {s: r.reason for s, r in recs.items()}
    parity = recs["parity"]
    assert parity.metrics["within_tolerance"] and parity.metrics["max_abs_diff"] < 1e-5
    comp = parity.runtime["compile"]
    assert comp["first_call_s"] and comp["recompiles_after_first_call"] == 0 and not comp["failed"]
