"""Cells run in subprocesses, one per variant: crashes, hangs and framework errors fail one cell, never the
run, and the variant's other cells go on in a fresh process."""

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


def fault_plan(model_dir, precisions, timeout_s=60.0, seq_lens=(8,)):
    return plan_from_dict({
        "matrix": {"backbones": [str(model_dir)], "runtimes": ["fault"], "precisions": precisions,
                   "suites": ["params", "latency"]},
        "latency": {"seq_lens": list(seq_lens), "warmup_iters": 1, "warmup_s": 0.0, "min_iters": 3,
                    "min_time_s": 0.0},
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


def by_cell(out_dir):
    return {(r.cell.suite, r.cell.seq_len): r for r in read(out_dir / RECORDS_FILE)}


def test_a_variants_cells_share_one_process(tmp_path, vocab_dir, fault_runtime):
    fake_model(vocab_dir)
    run(fault_plan(vocab_dir, ["fp32"], seq_lens=(8, 12)), tmp_path)
    recs = by_cell(tmp_path)
    assert {r.status for r in recs.values()} == {"ok"}
    assert len({r.runtime["pid"] for r in recs.values()}) == 1  # loaded once for params and both latencies


def test_isolate_cell_gives_every_cell_its_own_process(tmp_path, vocab_dir, fault_runtime):
    from dataclasses import replace

    fake_model(vocab_dir)
    run(replace(fault_plan(vocab_dir, ["fp32"], seq_lens=(8, 12)), isolate="cell"), tmp_path)
    assert len({r.runtime["pid"] for r in by_cell(tmp_path).values()}) == 3


def test_a_killed_cell_fails_alone_and_the_rest_run_in_a_fresh_process(tmp_path, vocab_dir, fault_runtime,
                                                                         monkeypatch):
    fake_model(vocab_dir)
    monkeypatch.setenv("FAULT_SEQ_MOD", "8")  # the s8 latency cell dies as the OOM killer would
    summary = run(fault_plan(vocab_dir, ["fp32"], seq_lens=(8, 12)), tmp_path)
    recs = by_cell(tmp_path)
    assert recs["latency", 8].status == "failed" and "SIGKILL" in recs["latency", 8].reason
    assert recs["params", 0].status == recs["latency", 12].status == "ok"
    assert recs["params", 0].runtime["pid"] != recs["latency", 12].runtime["pid"]
    assert (summary.ok, summary.failed) == (2, 1)


def test_a_framework_error_fails_its_cell_and_the_rest_get_a_fresh_process(tmp_path, vocab_dir, fault_runtime,
                                                                           monkeypatch):
    fake_model(vocab_dir)
    monkeypatch.setenv("FAULT_RAISE_SEQ", "8")
    run(fault_plan(vocab_dir, ["fp32"], seq_lens=(8, 12)), tmp_path)
    recs = by_cell(tmp_path)
    assert recs["latency", 8].reason == "RuntimeError: simulated framework error in forward"
    assert recs["latency", 12].status == "ok"
    assert recs["params", 0].runtime["pid"] != recs["latency", 12].runtime["pid"]


def test_the_timeout_is_per_cell_and_hits_only_the_hanging_one(tmp_path, vocab_dir, fault_runtime):
    fake_model(vocab_dir)
    run(fault_plan(vocab_dir, ["bf16"], timeout_s=3.0), tmp_path)  # bf16 loads fine and hangs in forward
    recs = by_cell(tmp_path)
    assert recs["params", 0].status == "ok"
    assert recs["latency", 8].status == "failed" and recs["latency", 8].reason.startswith("timed out after 3 s")


def test_a_load_that_kills_the_worker_fails_every_cell_of_the_variant_with_one_attempt(tmp_path, vocab_dir,
                                                                                       fault_runtime):
    fake_model(vocab_dir)
    run(fault_plan(vocab_dir, ["fp16"], seq_lens=(8, 12)), tmp_path)  # fp16 aborts inside load()
    recs = by_cell(tmp_path)
    assert len(recs) == 3 and all("SIGABRT" in r.reason for r in recs.values())
    assert len({r.started for r in recs.values()}) == 1  # not retried once per cell


def test_every_record_carries_memory_and_the_first_inference_of_its_process(tmp_path, vocab_dir, fault_runtime):
    fake_model(vocab_dir)
    run(fault_plan(vocab_dir, ["fp32"], seq_lens=(8, 12)), tmp_path)
    recs = by_cell(tmp_path)
    params, first, second = recs["params", 0], recs["latency", 8], recs["latency", 12]
    assert params.runtime["startup"]["first_forward_s"] is None  # params never runs the model
    assert params.runtime["startup"]["load_s"] > 0
    assert first.runtime["startup"]["shape"] == [1, 8]  # the first cell that forwards, at its own shape
    assert second.runtime["startup"] == first.runtime["startup"]  # once per process
    for rec in recs.values():
        memory = rec.runtime["memory"]
        assert memory["source"] in ("VmHWM", "ru_maxrss") and memory["peak_rss_bytes"] > 0
        assert rec.runtime["model_disk_bytes"] == (vocab_dir / "model.safetensors").stat().st_size


def test_interleaved_records_carry_the_peak_memory_after_the_last_round(tmp_path, vocab_dir, fault_runtime):
    from dataclasses import replace

    fake_model(vocab_dir)
    run(replace(fault_plan(vocab_dir, ["fp32"], seq_lens=(8,)), rounds=2), tmp_path)
    latency = by_cell(tmp_path)["latency", 8]
    assert latency.runtime["interleaved"]["rounds"] == 2
    memory = latency.runtime["memory"]
    assert memory["peak_rss_bytes"] >= memory["rss_after_first_bytes"] > 0
    assert latency.runtime["startup"]["first_inference_s"] > 0
