"""The report's GLUE section and its summary of cells without numbers: what a precision or a sparsity costs
reads across one row, the published row is there to hold the scores against, and a reason shared by dozens
of cells is one line (the full list stays in problems.csv)."""

from dataclasses import replace

import numpy as np
import pandas as pd

from bench import report
from bench.cell import Cell
from bench.records import Record
from bench.synthetic import environment, glue, lognormal, params, timed

MINILM = "minilm-l6-h384"


def cell(runtime="torch", precision="fp32", sparsity="dense", backbone=MINILM):
    return Cell(backbone, runtime, precision, sparsity, "cpu", "glue")


def scores(**configs):
    """glue records: configs maps 'runtime/precision/sparsity' to {task: fraction}."""
    recs = []
    for name, tasks in configs.items():
        runtime, precision, sparsity = name.split("__")
        for task, value in tasks.items():
            metric = {"mrpc": "f1", "cola": "mcc"}.get(task, "accuracy")
            recs.append(glue(cell(runtime, precision, sparsity), task, metric=metric, **{metric: value}))
    return recs


def skipped(c: Cell, reason: str, status: str = "skipped") -> Record:
    return Record(cell=c, status=status, reason=reason, artifact={"pretrained": True}, settings={"threads": 8},
                  environment=environment(), finished="2026-01-01T00:00:00+00:00", harness_version="0.1.0")


def test_glue_scores_show_each_rows_cost_against_torch_fp32_dense_and_the_published_row():
    recs = scores(torch__fp32__dense={"sst2": 0.90, "mrpc": 0.86},
                  onnxruntime__int8__dense={"sst2": 0.891, "mrpc": 0.86},
                  deepsparse__fp32__pruned80={"sst2": 0.8415})
    table, notes = report.glue_scores(report.frame(recs))
    assert list(table.columns) == ["backbone", "runtime", "precision", "sparsity", "device", "sst2 accuracy",
                                   "mrpc f1"]  # one machine: no machine column; tasks in GLUE order
    published, ref, *rest = table.to_dict("records")
    assert published["runtime"] == "published: MiniLM-L6-H384"
    assert (published["sst2 accuracy"], published["mrpc f1"]) == ("91.5", "88.9")
    assert "nearest published row" in notes[0] and "microsoft/unilm" in notes[0]
    assert (ref["runtime"], ref["precision"], ref["sparsity"]) == ("torch", "fp32", "dense")
    assert ref["sst2 accuracy"] == "90.00 (-1.50 vs published)"
    by_runtime = {r["runtime"]: r for r in rest}
    assert by_runtime["onnxruntime"]["sst2 accuracy"] == "89.10 (-0.90 pt, -1.00%)"
    assert by_runtime["onnxruntime"]["mrpc f1"] == "86.00 (+0.00 pt, +0.00%)"
    assert by_runtime["deepsparse"]["sst2 accuracy"] == "84.15 (-5.85 pt, -6.50%)"
    assert by_runtime["deepsparse"]["mrpc f1"] == ""  # not measured: blank, never a number


def test_glue_scores_without_a_reference_or_a_published_row_show_bare_scores():
    recs = [replace(r, cell=replace(r.cell, backbone="/models/local-bert")) for r in
            scores(onnxruntime__int8__dense={"sst2": 0.8}, torch__int8__dense={"sst2": 0.7})]
    table, notes = report.glue_scores(report.frame(recs))
    assert notes == [] and not table.runtime.str.startswith("published").any()
    assert sorted(table["sst2 accuracy"]) == ["70.00", "80.00"]


def test_random_weights_and_speed_records_never_reach_the_glue_table():
    recs = [params(Cell(MINILM, "torch", "fp32", "dense", "cpu", "params"))]
    table, _ = report.glue_scores(report.frame(recs))
    assert table.empty
    random = [replace(r, artifact={"pretrained": False}) for r in scores(torch__fp32__dense={"sst2": 0.5})]
    table, _ = report.glue_scores(report.frame(random + recs))
    assert table.empty


def test_cells_without_numbers_are_grouped_by_reason_failures_first():
    no_train = "GLUE QNLI: no train split on this machine"
    bad = [skipped(replace(cell(rt, p, s), task="qnli"), no_train) for rt in ("torch", "onnxruntime")
           for p in ("fp32", "int8") for s in ("dense", "pruned80", "pruned90")]
    bad.append(skipped(Cell(MINILM, "torch", "fp16", "dense", "cuda", "latency", 1, 128), "no CUDA GPU"))
    bad.append(skipped(Cell(MINILM, "deepsparse", "int8", "dense", "cpu", "latency", 1, 128), "abort (exit 1)",
                       status="failed"))
    summary = report.problem_summary(report.problems(report.frame(bad)))
    assert summary[["status", "cells"]].to_records(index=False).tolist() == [
        ("failed", 1), ("skipped", 12), ("skipped", 1)]
    qnli = summary.iloc[1]
    assert qnli.reason == no_train
    assert qnli.which == ("backbone minilm-l6-h384; runtime torch/onnxruntime; precision fp32/int8; "
                          "sparsity dense/pruned80/pruned90; device cpu; suite glue; task qnli")


def test_report_writes_glue_and_problem_files_and_drops_stale_ones(tmp_path):
    recs = [*scores(torch__fp32__dense={"sst2": 0.9}), skipped(cell("torch", "bf16"), "no bf16")]
    paths = report.write(recs, tmp_path)
    md = paths["md"].read_text()
    assert "## GLUE dev scores" in md and "90.00 (-1.50 vs published)" in md
    assert "1 cells, grouped by reason" in md
    assert pd.read_csv(paths["problems"]).reason.tolist() == ["no bf16"]
    assert pd.read_csv(paths["glue"])["sst2 accuracy"].tolist() == ["91.5", "90.00 (-1.50 vs published)"]
    report.write([params(cell())], tmp_path)  # the same directory, now without GLUE or problem cells
    assert not (tmp_path / "problems.csv").exists() and not (tmp_path / "glue.csv").exists()
    assert "GLUE dev scores" not in (tmp_path / "report.md").read_text()


def test_percent_of_peak_uses_the_machines_best_gemm_measurement_not_a_busy_one():
    """Each environment measures the GEMM peak once; one measured in a busy moment must not double every
    %_of_peak of its rows (the full preset on the development VM measured 107 GFLOP/s in one environment and
    207-214 in the others)."""
    rng = np.random.default_rng(0)
    recs = []
    for runtime, peak in (("torch", 100.0), ("onnxruntime", 200.0)):
        rec = timed(Cell(MINILM, runtime, "fp32", "dense", "cpu", "latency", 1, 128), lognormal(rng, 0.02, 0.05, 50))
        rec.environment["gemm_peak"]["gflops"] = peak
        recs.append(rec)
    assert report.machine_peaks(recs) == {("synthetic-01", "fp32"): 200.0}
    table = report.comparison(report.frame(recs))
    assert np.allclose(table["%_of_peak"], 100 * table["gflops_s128"] / 200.0)
    assert "GEMM peaks fp32 200 GFLOP/s" in report.environment_lines(recs)[0]


def test_percent_of_peak_holds_each_row_against_the_peak_of_its_own_precision():
    """An INT8 row is held against the machine's int8 GEMM peak and a bf16 row against bf16, never against fp32;
    a precision the machine has no measured peak for gets no percentage instead of a flattering one."""
    rng = np.random.default_rng(1)
    recs = []
    for precision in ("fp32", "int8", "bf16"):
        rec = timed(Cell(MINILM, "torch", precision, "dense", "cpu", "latency", 1, 128),
                    lognormal(rng, 0.02, 0.05, 50))
        rec.environment["gemm_peak"]["gflops"] = 100.0
        rec.environment["gemm_peaks"] = {"int8": {"gflops": 400.0}, "skipped": {"bf16": "no native bf16"}}
        recs.append(rec)
    assert report.machine_peaks(recs) == {("synthetic-01", "fp32"): 100.0, ("synthetic-01", "int8"): 400.0}
    table = report.comparison(report.frame(recs)).set_index("precision")
    assert np.isclose(table.loc["fp32", "%_of_peak"], table.loc["fp32", "gflops_s128"])
    assert np.isclose(table.loc["int8", "%_of_peak"], table.loc["int8", "gflops_s128"] / 4)
    assert np.isnan(table.loc["bf16", "%_of_peak"])
    assert "GEMM peaks fp32 100, int8 400 GFLOP/s" in report.environment_lines(recs)[0]
