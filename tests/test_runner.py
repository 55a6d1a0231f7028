"""Cells run in subprocesses: crashes, hangs and framework errors fail one cell, never the run."""

from pathlib import Path

import pytest

from bench.plan import plan_from_dict
from bench.records import RECORDS_FILE, read
from bench.runner import run

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fault_runtime(monkeypatch):
    monkeypatch.setenv("BENCH_PLUGINS", "tests.fault_adapter")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    import tests.fault_adapter  # noqa: F401  (registers the runtime in this process too)


def fake_model(directory):
    """A from_pretrained-shaped directory with one real safetensors tensor (the fault runtime runs none)."""
    import numpy as np
    from safetensors.numpy import save_file

    (directory / "config.json").write_text('{"model_type": "bert", "vocab_size": 40}')
    save_file({"encoder.layer.0.attention.self.query.weight": np.zeros((4, 4), np.float32)},
              directory / "model.safetensors")


def fault_plan(model_dir, precisions, timeout_s=60.0):
    return plan_from_dict({
        "matrix": {"backbones": [str(model_dir)], "runtimes": ["fault"], "precisions": precisions,
                   "suites": ["params", "latency"]},
        "latency": {"seq_lens": [8], "warmup_iters": 1, "warmup_s": 0.0, "min_iters": 3, "min_time_s": 0.0},
        "run": {"threads": 1, "timeout_s": timeout_s},
    })


def test_abort_and_exception_fail_their_cells_and_the_run_continues(tmp_path, vocab_dir, fault_runtime):
    fake_model(vocab_dir)
    summary = run(fault_plan(vocab_dir, ["fp16", "int8", "fp32"]), tmp_path)
    recs = {(r.cell.precision, r.cell.suite): r for r in read(tmp_path / RECORDS_FILE)}
    assert len(recs) == 6
    assert recs["fp16", "params"].status == "failed"
    assert "SIGABRT" in recs["fp16", "params"].reason
    assert recs["int8", "latency"].reason.startswith("RuntimeError: simulated framework error")
    assert recs["fp32", "latency"].status == "ok" and len(recs["fp32", "latency"].samples["latency_s"]) >= 3
    assert (summary.ok, summary.failed) == (2, 4)


def test_a_hanging_cell_times_out(tmp_path, vocab_dir, fault_runtime):
    fake_model(vocab_dir)
    plan = plan_from_dict({"matrix": {"backbones": [str(vocab_dir)], "runtimes": ["fault"],
                                      "precisions": ["bf16"], "suites": ["latency"]},
                           "latency": {"seq_lens": [8]}, "run": {"timeout_s": 5}})
    run(plan, tmp_path)
    (rec,) = read(tmp_path / RECORDS_FILE)
    assert rec.status == "failed" and rec.reason.startswith("timed out after 5 s")


def test_rerun_skips_finished_cells_and_retries_failed_ones(tmp_path, vocab_dir, fault_runtime):
    fake_model(vocab_dir)
    plan = fault_plan(vocab_dir, ["fp32", "int8"])
    run(plan, tmp_path)
    again = run(plan, tmp_path)
    assert (again.resumed, again.failed) == (2, 2)  # ok cells kept, failed cells tried again
    forced = run(plan, tmp_path, force=True)
    assert forced.resumed == 0 and len(read(tmp_path / RECORDS_FILE)) == 10
