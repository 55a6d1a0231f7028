"""What a variant costs besides its speed (peak memory, time to first inference, size on disk, ORT's fusions) in
the report and the leaderboard, records from before those fields existed staying blank, and unmaintained runtimes
marked wherever a runtime is named."""

import csv
from dataclasses import replace

import numpy as np
import pandas as pd

from bench import report
from bench.cell import Cell
from bench.records import Record
from bench.report import board, frame, recommendations, write_leaderboard
from bench.synthetic import glue, lognormal, params, timed

MINILM = "minilm-l6-h384"
MIB = 2**20
DEEPSPARSE_WHY = "DeepSparse deprecated upstream 2025-06-02, repository archived 2025-06-03"


def costed(rec: Record, peak_mib: float, first_s: float, disk_mib: float = 87.0, fused: dict | None = None) -> Record:
    """The record with the `runtime` fields the workers write (bench/resources.py)."""
    runtime = dict(rec.runtime) | {
        "memory": {"rss_after_load_bytes": int(0.8 * peak_mib * MIB),
                   "rss_after_first_bytes": int(0.9 * peak_mib * MIB), "peak_rss_bytes": int(peak_mib * MIB),
                   "source": "VmHWM"},
        "startup": {"load_s": first_s * 0.7, "prepare_s": first_s * 0.1, "first_forward_s": first_s * 0.2,
                    "first_inference_s": first_s, "shape": [1, 128]},
        "model_disk_bytes": int(disk_mib * MIB)}
    if fused is not None:
        runtime["optimized_graph"] = {"nodes": 300, "op_counts": {"MatMul": 40, **fused}, "fused": fused}
    return replace(rec, runtime=runtime)


def variant(runtime="torch", precision="fp32", sparsity="dense", seconds=0.01, seed=0):
    rng = np.random.default_rng(seed)
    cell = Cell(MINILM, runtime, precision, sparsity, "cpu", "latency", 1, 128)
    return [params(cell), timed(cell, lognormal(rng, seconds, 0.05, 40)),
            timed(replace(cell, suite="throughput", batch=32), lognormal(rng, 32 * seconds, 0.05, 10))]


def row(table: pd.DataFrame, runtime: str, precision: str = "fp32"):
    return table[(table.runtime == runtime) & (table.precision == precision)].iloc[0]


def test_report_shows_peak_memory_and_first_inference_per_variant(tmp_path):
    p, lat, tput = variant()
    recs = [costed(p, 300, 0.4), costed(lat, 350, 1.5), costed(tput, 420, 1.7),
            costed(glue(Cell(MINILM, "torch", "fp32", "dense", "cpu", "glue"), "sst2", accuracy=0.9), 2000, 0.3)]
    only_params = costed(variant("torch", "int8")[0], 250, 0.9, disk_mib=30)
    table = report.comparison(frame([*recs, only_params]))
    fp32 = row(table, "torch")
    assert fp32.peak_rss_MB == 420  # the largest over the speed suites; the GLUE evaluation's 2000 is not serving
    assert fp32.first_inference_ms == 1500  # the timed suites' smallest, though params started faster
    assert fp32.disk_MB == 87
    int8 = row(table, "torch", "int8")
    assert (int8.peak_rss_MB, int8.first_inference_ms, int8.disk_MB) == (250, 900, 30)  # no timed record: params'
    assert "fused_ops" not in table  # no runtime reported an optimized graph
    md = report.write([*recs, only_params], tmp_path)["md"].read_text()
    header = next(line for line in md.splitlines() if line.startswith("| backbone"))
    assert all(f" {c} " in header for c in ("disk_MB", "peak_rss_MB", "first_inference_ms"))
    words = " ".join(md.split())
    assert "`peak_rss_MB` the worker's peak resident memory" in words and "`first_inference_ms` load +" in words
    csv_row = pd.read_csv(tmp_path / "report.csv").set_index("precision").loc["fp32"]
    assert (csv_row.peak_rss_MB, csv_row.first_inference_ms) == (420, 1500)


def test_onnxruntime_rows_show_the_fusions_its_optimizer_applied():
    ort = [costed(r, 500, 0.8, fused={"SkipLayerNormalization": 12, "Attention": 12, "LayerNormalization": 1})
           for r in variant("onnxruntime", "int8")]
    nothing = [costed(r, 400, 0.5, fused={}) for r in variant("onnxruntime", "fp32")]
    torch = [costed(r, 600, 2.0) for r in variant()]
    table = report.comparison(frame([*ort, *nothing, *torch]))
    assert row(table, "onnxruntime", "int8").fused_ops == "Attention×12 SkipLayerNormalization×12 LayerNormalization×1"
    assert row(table, "onnxruntime").fused_ops == "none"
    assert pd.isna(row(table, "torch").fused_ops)


def test_old_records_without_memory_fields_render_blank(tmp_path):
    new = [costed(r, 420, 1.5) for r in variant()]
    old = variant("onnxruntime", "int8", seconds=0.005)  # written before the workers measured any of it
    table = report.comparison(frame(new + old))
    old_row = row(table, "onnxruntime", "int8")
    assert old_row[["disk_MB", "peak_rss_MB", "first_inference_ms"]].isna().all()
    md = report.write(new + old, tmp_path)["md"].read_text()
    ort_line = next(line for line in md.splitlines() if "| onnxruntime" in line)
    header = next(line for line in md.splitlines() if line.startswith("| backbone"))
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in ort_line.split("|")], strict=True))
    assert cells["peak_rss_MB"] == cells["first_inference_ms"] == cells["disk_MB"] == ""
    assert row(board(frame(new + old)), "onnxruntime", "int8")[["peak_rss_MB", "first_inference_ms"]].isna().all()
    only_old = report.comparison(frame(old))  # a result set from before: no empty cost columns at all
    assert not {"disk_MB", "peak_rss_MB", "first_inference_ms", "fused_ops"} & set(only_old.columns)
    write_leaderboard(old, tmp_path / "lb")
    odd = replace(variant("torch", "int8")[0],
                  runtime={"memory": "n/a", "startup": {"first_inference_s": None}, "model_disk_bytes": True})
    odd_row = row(report.comparison(frame([*new, odd])), "torch", "int8")  # odd values: blank, no crash
    assert odd_row[["disk_MB", "peak_rss_MB", "first_inference_ms"]].isna().all()


def test_leaderboard_carries_the_cost_columns_onto_accuracy_rows(tmp_path):
    recs = [costed(r, 420, 1.5) for r in variant()]
    recs.append(glue(Cell(MINILM, "torch", "fp32", "dense", "cpu", "glue"), "sst2", accuracy=0.9))
    table = board(frame(recs))
    sst2 = table[table.task == "sst2"].iloc[0]
    assert (sst2.peak_rss_MB, sst2.first_inference_ms, sst2.disk_MB) == (420, 1500, 87)
    paths = write_leaderboard(recs, tmp_path)
    page = paths.html.read_text()
    assert ">peak_rss_MB</button>" in page and '<td data-v="1500.0" class="num">1500</td>' in page
    assert "<dt>first_inference_ms</dt><dd>time to the first answer" in page
    assert "`disk_MB` size on disk of the model files" in paths.md.read_text()


def test_leaderboard_marks_unmaintained_runtimes_with_the_date(tmp_path):
    recs = [*variant(), *variant("deepsparse", "fp32", seconds=0.008), *variant("mxnet", "fp32", seconds=0.03),
            *variant("mxnet-deploy", "fp32", seconds=0.02)]
    paths = write_leaderboard(recs, tmp_path)
    md = paths.md.read_text()
    assert "| deepsparse †" in md and "| mxnet-deploy †" in md and "| torch " in md and "torch †" not in md
    assert f"† unmaintained: deepsparse: {DEEPSPARSE_WHY}" in md
    assert md.count("† unmaintained: mxnet, mxnet-deploy: Apache MXNet retired to the Apache Attic in 2023") == 1
    page = paths.html.read_text()
    assert '<td data-v="deepsparse †">deepsparse †</td>' in page
    assert '<option value="deepsparse †">deepsparse †</option>' in page  # the filter matches the cells
    assert f"<p class=note>† unmaintained: deepsparse: {DEEPSPARSE_WHY}</p>" in page
    runtimes = {r["runtime"] for r in csv.DictReader(paths.csv.read_text().splitlines())}
    assert runtimes == {"torch", "deepsparse", "mxnet", "mxnet-deploy"}  # the data keeps the names
    report_md = report.write(recs, tmp_path / "report")["md"].read_text()
    assert "| deepsparse †" in report_md and f"† unmaintained: deepsparse: {DEEPSPARSE_WHY}" in report_md


def test_runtime_names_the_registry_does_not_know_get_no_mark(tmp_path):
    recs = [*variant(), *variant("tvm", "fp32")]  # an old record of a runtime since removed
    md = write_leaderboard(recs, tmp_path).md.read_text()
    assert "| tvm " in md and "†" not in md


def test_a_recommendation_on_an_unmaintained_runtime_says_so():
    recs = [*variant(), *variant("deepsparse", "fp32", seconds=0.005)]
    for rt in ("torch", "deepsparse"):
        recs.append(glue(Cell(MINILM, rt, "fp32", "dense", "cpu", "glue"), "sst2", accuracy=0.9))
    pick = recommendations(board(frame(recs))).set_index("task").loc["sst2"]
    assert pick.recommendation == "deepsparse fp32 dense cpu"
    assert pick.note.endswith(f"; deepsparse is unmaintained: {DEEPSPARSE_WHY}")
    speed_only = recommendations(board(frame([*variant(), *variant("mxnet", "fp32", seconds=0.005)]))).iloc[0]
    assert "fastest measured: mxnet fp32 dense cpu" in speed_only.note and "mxnet is unmaintained" in speed_only.note
    torch_pick = recommendations(board(frame([*variant(), recs[-2]]))).set_index("task").loc["sst2"]
    assert "unmaintained" not in torch_pick.note
