"""Interleaved rounds: timed cells of every variant measured in the same rounds by live workers, speed-ups paired
over rounds with their interval, and a worker that dies failing only its own variant, keeping its rounds."""

from __future__ import annotations

import pytest

from bench.plan import plan_from_dict
from bench.records import RECORDS_FILE, read
from bench.runner import run
from tests.test_runner import REPO, fake_model


@pytest.fixture
def steady(monkeypatch, tmp_path):
    monkeypatch.setenv("BENCH_PLUGINS", "tests.fault_adapter")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    import tests.fault_adapter  # noqa: F401  (registers the runtimes in this process too)
    from bench import runtimes

    # the steady runtime's fp32 plays the reference configuration here
    monkeypatch.setitem(runtimes.REFERENCE_CONFIG, "runtime", "steady")
    model = tmp_path / "model"
    model.mkdir()
    fake_model(model)
    from tests.conftest import write_vocab

    write_vocab(model)
    return model


def plan_for(model, rounds: int):
    return plan_from_dict({
        "matrix": {"backbones": [str(model)], "runtimes": ["steady"], "precisions": ["fp32", "int8"],
                   "suites": ["params", "latency", "throughput"]},
        "latency": {"seq_lens": [8], "warmup_iters": 1, "warmup_s": 0.0, "min_iters": 12, "min_time_s": 0.0},
        "throughput": {"seq_len": 8, "batches": [2], "warmup_iters": 1, "min_iters": 12, "min_time_s": 0.0},
        "run": {"threads": 1, "timeout_s": 60.0, "rounds": rounds},
    })


def by_cell(out):
    return {(r.cell.precision, r.cell.suite): r for r in read(out / RECORDS_FILE)}


def test_every_timed_cell_is_measured_in_every_round_and_its_speedup_is_paired_over_them(steady, tmp_path):
    summary = run(plan_for(steady, rounds=6), tmp_path / "out")
    assert summary.ok == 6 and summary.failed == 0
    recs = by_cell(tmp_path / "out")
    for precision in ("fp32", "int8"):
        for suite, key in (("latency", "latency_s"), ("throughput", "batch_s")):
            r = recs[precision, suite]
            assert sorted(set(r.samples["round"])) == list(range(6)) and len(r.samples["round"]) == len(r.samples[key])
            assert r.metrics["rounds"] == 6 and r.metrics["n"] >= 12 and r.runtime["interleaved"]["rounds"] == 6
    fast = recs["int8", "latency"].metrics
    assert fast["speedup_low"] <= fast["speedup"] <= fast["speedup_high"] and fast["paired_rounds"] == 6
    assert 1.3 < fast["speedup"] < 2.6  # int8 sleeps half as long; sleep overhead keeps it below 2
    assert recs["fp32", "latency"].metrics["speedup"] == 1.0
    assert "rounds" not in recs["fp32", "params"].metrics  # untimed cells run as before


def test_without_rounds_each_cell_is_measured_alone(steady, tmp_path):
    run(plan_for(steady, rounds=0), tmp_path / "out")
    r = by_cell(tmp_path / "out")["int8", "latency"]
    assert "round" not in r.samples and "speedup" not in r.metrics and r.settings["rounds"] == 0


def test_a_worker_that_dies_mid_rounds_fails_its_variant_keeping_the_rounds_it_completed(steady, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("STEADY_DIE_AFTER", "20")  # int8 dies a few rounds in; fp32 carries on
    summary = run(plan_for(steady, rounds=6), tmp_path / "out")
    recs = by_cell(tmp_path / "out")
    assert summary.failed == 2 and summary.ok == 4
    for suite in ("latency", "throughput"):
        dead = recs["int8", suite]
        assert dead.status == "failed" and "worker exited with code -9" in dead.reason
        assert "complete rounds kept" in dead.reason
        assert recs["fp32", suite].status == "ok" and recs["fp32", suite].metrics["rounds"] == 6
    kept = recs["int8", "latency"].samples
    assert kept.get("kept_s") and len(kept["kept_s"]) == len(kept["round"])
