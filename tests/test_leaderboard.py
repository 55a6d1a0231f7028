"""The leaderboard: accuracy beside speed, a recommendation that never trades away more accuracy than the
budget (and none without accuracy), merged machines, a Pareto plot, and record text that stays text."""

import csv
import re
from dataclasses import replace

import numpy as np
import pytest

from bench.cell import Cell
from bench.cli import main
from bench.records import RECORDS_FILE
from bench.report import NO_ACCURACY, board, frame, recommendations, write_leaderboard
from bench.report.plot import plot
from bench.stats import pareto_front
from bench.synthetic import glue, lognormal, params, timed

EVIL = "<script>window.__xss = 1</script>"


def config(backbone, runtime, precision, sparsity, machine="synthetic-01", seconds=0.01, pretrained=True,
           seed=0):
    """params + latency (s128) + throughput (b32) records of one configuration; throughput ∝ 1/seconds."""
    rng = np.random.default_rng(seed)
    cell = Cell(backbone, runtime, precision, sparsity, "cpu", "latency", 1, 128)
    return [params(cell, machine=machine, pretrained=pretrained),
            timed(cell, lognormal(rng, seconds, 0.05, 40), machine=machine, pretrained=pretrained),
            timed(replace(cell, suite="throughput", batch=32), lognormal(rng, 32 * seconds, 0.05, 10),
                  machine=machine, pretrained=pretrained)]


def scenario():
    recs = []
    speeds = {("torch", "fp32", "dense"): 0.020, ("torch", "int8", "dense"): 0.012,
              ("onnxruntime", "int8", "pruned90"): 0.006}
    for (rt, p, s), sec in speeds.items():
        recs += config("minilm-l6-h384", rt, p, s, seconds=sec)
    accuracy = {"sst2": (0.910, 0.905, 0.880), "cola": (0.550, 0.540, 0.400)}  # fp32, int8, pruned90
    for task, values in accuracy.items():
        metric = "accuracy" if task == "sst2" else "mcc"
        for (rt, p, s), value in zip(speeds, values, strict=True):
            recs.append(glue(Cell("minilm-l6-h384", rt, p, s, "cpu", "glue"), task, **{metric: value}))
    recs += config("bert-base-uncased", "torch", "fp32", "dense", seconds=0.05)
    recs += config("bert-base-uncased", "torch", "int8", "dense", seconds=0.03)
    recs += config("tiny-random", "torch", "fp32", "dense", seconds=0.001, pretrained=False)
    recs += config("minilm-l6-h384", "torch", "fp32", "dense", machine="second-box", seconds=0.015)
    return recs


def test_rows_are_configurations_times_tasks_and_accuracy_is_in_points():
    table = board(frame(scenario()))
    keys = set(map(tuple, table[["machine", "backbone", "task", "runtime", "precision", "sparsity"]].to_numpy()))
    minilm = {("synthetic-01", "minilm-l6-h384", t, r, p, s) for t in ("sst2", "cola")
              for r, p, s in [("torch", "fp32", "dense"), ("torch", "int8", "dense"),
                              ("onnxruntime", "int8", "pruned90")]}
    others = {("synthetic-01", "bert-base-uncased", "", "torch", p, "dense") for p in ("fp32", "int8")} | {
        ("synthetic-01", "tiny-random", "", "torch", "fp32", "dense"),
        ("second-box", "minilm-l6-h384", "", "torch", "fp32", "dense")}
    assert keys == minilm | others and len(table) == len(keys)
    sst2 = table[(table.task == "sst2")].set_index("precision")
    assert sst2.loc["fp32", "accuracy"] == pytest.approx(91.0) and sst2.loc["fp32", "acc_metric"] == "accuracy"
    assert sst2.loc["fp32", "acc_drop_%"] == 0
    assert table[table.task == "cola"].acc_metric.unique().tolist() == ["mcc"]
    # every accuracy row carries its configuration's speed
    assert table[table.task != ""].best_seq_per_s.notna().all()


def test_recommendation_is_fastest_within_the_accuracy_budget():
    table = board(frame(scenario()))
    recs = recommendations(table).set_index(["machine", "backbone", "task"])
    sst2 = recs.loc[("synthetic-01", "minilm-l6-h384", "sst2")]
    assert sst2.recommendation == "torch int8 dense cpu"  # pruned90 is faster but loses 3.3%
    assert "1.67× the torch fp32 dense speed" in sst2.note
    cola = recs.loc[("synthetic-01", "minilm-l6-h384", "cola")]
    assert cola.recommendation == "torch fp32 dense cpu"  # int8 loses 1.8% of mcc
    generous = recommendations(table, budget_pct=30).set_index(["machine", "backbone", "task"])
    assert generous.loc[("synthetic-01", "minilm-l6-h384", "sst2")].recommendation.startswith("onnxruntime int8")
    marked = table[table.recommended == "yes"]
    assert sorted(marked.task) == ["cola", "sst2"]


def test_without_accuracy_there_is_no_recommendation_on_speed_alone():
    recs = recommendations(board(frame(scenario()))).set_index(["machine", "backbone", "task"])
    bert = recs.loc[("synthetic-01", "bert-base-uncased", "")]
    assert bert.recommendation == NO_ACCURACY and not bert.recommended
    assert "fastest measured: torch int8 dense cpu" in bert.note and "speed only" in bert.note
    rand = recs.loc[("synthetic-01", "tiny-random", "")]
    assert rand.recommendation == NO_ACCURACY and "random weights" in rand.note
    assert recs.loc[("second-box", "minilm-l6-h384", "")].recommendation == NO_ACCURACY


def test_random_weights_never_get_an_accuracy_number():
    recs = config("tiny-random", "torch", "fp32", "dense", pretrained=False)
    recs.append(replace(glue(Cell("tiny-random", "torch", "fp32", "dense", "cpu", "glue"), "sst2", accuracy=0.5),
                        artifact={"pretrained": False}))
    table = board(frame(recs))
    assert table.accuracy.isna().all() and table.task.tolist() == [""]


def test_pareto_front_keeps_points_nothing_beats_on_both_axes():
    x = np.array([10.0, 20.0, 30.0, 15.0, 30.0])
    acc = np.array([90.0, 89.0, 80.0, 85.0, 70.0])
    assert pareto_front(x, acc, y_higher=True).tolist() == [0, 1, 2]
    size = np.array([100.0, 50.0, 60.0, 120.0, 55.0])  # lower is better; at equal x the smaller wins
    assert pareto_front(x, size, y_higher=False).tolist() == [1, 4]


def test_report_writes_leaderboard_files_with_escaped_text(tmp_path, capsys):
    recs = scenario() + config(EVIL, "torch", "fp32", "dense", seconds=0.03) + config(
        "$x_1$ | pipe", "torch", "fp32", "dense", seconds=0.04)
    results = tmp_path / "results"
    results.mkdir()
    (results / RECORDS_FILE).write_text("".join(r.to_json() + "\n" for r in recs))
    assert main(["report", str(results), "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    for name in ("report.md", "report.csv", "leaderboard.md", "leaderboard.csv", "leaderboard.html", "pareto.png",
                 "pareto.svg"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (out / "pareto.svg").read_bytes()[:2000]
    page = (out / "leaderboard.html").read_text()
    assert page.count("<script") == 1  # only the page's own script
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert "http://" not in page.replace("http-equiv", "") and "https://" not in page  # nothing fetched
    md = (out / "leaderboard.md").read_text()
    assert EVIL not in md and "&lt;script&gt;" in md and "\\| pipe" in md
    rows = list(csv.DictReader((out / "leaderboard.csv").read_text().splitlines()))
    assert EVIL in {r["backbone"] for r in rows}  # CSV keeps the data as it is
    assert "report.md" in capsys.readouterr().out or True


def test_page_script_is_allowed_by_its_content_security_policy(tmp_path):
    import base64
    import hashlib

    paths = write_leaderboard(scenario(), tmp_path)
    page = paths.html.read_text()
    script = re.search(r"<script>(.*)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "default-src 'none'" in page


def test_plot_says_when_no_accuracy_exists(tmp_path):
    recs = config("bert-base-uncased", "torch", "fp32", "dense") + config("bert-base-uncased", "torch", "int8",
                                                                           "dense", seconds=0.006)
    table = board(frame(recs))
    note = plot(table, tmp_path / "p.png", tmp_path / "p.svg")
    assert note.startswith(f"{NO_ACCURACY} yet") and "throughput vs weight size" in note
    note = plot(table.drop(columns="best_seq_per_s"), tmp_path / "l.png", tmp_path / "l.svg")
    assert "batch-1 speed vs weight size" in note  # ranked by latency: the caption says so
    note = plot(board(frame(scenario())), tmp_path / "q.png", tmp_path / "q.svg")
    assert note.startswith("accuracy vs throughput per backbone and task")


@pytest.mark.parametrize("case", ["params-only", "failed-only", "glue-only", "no-environment", "one-failure"])
def test_thin_or_odd_result_sets_still_give_a_leaderboard(tmp_path, case):
    from bench.records import Record
    from bench.synthetic import result_set

    cell = Cell("b", "torch", "fp32", "dense", "cpu", "latency", 1, 128)
    recs = {
        "params-only": [params(cell)],
        "failed-only": [Record(cell=cell, status="failed", reason="boom")],
        "glue-only": [glue(cell, "sst2", accuracy=0.9), glue(replace(cell, precision="int8"), "sst2", accuracy=0.89)],
        "no-environment": [replace(r, environment={}) for r in result_set(seed=1)],
        "one-failure": [*result_set(seed=1), Record(cell=replace(cell, backbone="x"), status="failed",
                                                    reason="<b>boom</b>")],
    }[case]
    paths = write_leaderboard(recs, tmp_path)
    assert paths.html.stat().st_size and paths.png.stat().st_size
    if case == "one-failure":
        assert "&lt;b&gt;boom&lt;/b&gt;" in paths.html.read_text()  # the failure reason is shown, as text


def test_speed_ranks_by_the_column_most_rows_have():
    import pandas as pd

    from bench.report import speed_column

    both = pd.DataFrame({"best_seq_per_s": [30.0, 40.0], "p50_ms_s128": [30.0, 25.0], "p50_ms_s32": [9.0, 8.0]})
    assert speed_column(both) == ("best_seq_per_s", True)
    torch_only_sweep = both.assign(best_seq_per_s=[30.0, None])  # e.g. throughput swept for torch only
    assert speed_column(torch_only_sweep) == ("p50_ms_s128", False)
    assert speed_column(pd.DataFrame({"p50_ms_s32": [9.0]})) == ("p50_ms_s32", False)
    assert speed_column(pd.DataFrame({"x": [1]})) == (None, False)


def test_a_recommendation_whose_runner_up_overlaps_it_over_interleaved_rounds_names_both_as_tied():
    intervals = {("torch", "fp32", "dense"): (1.0, 1.0, 1.0), ("torch", "int8", "dense"): (1.60, 1.50, 1.72),
                 ("onnxruntime", "int8", "dense"): (1.65, 1.55, 1.80)}  # the best, by a hair

    def measured(apart: bool) -> list:
        recs = []
        for (rt, p, s), (ratio, low, high) in intervals.items():
            if apart and rt == "torch" and p == "int8":
                ratio, low, high = 1.30, 1.25, 1.35
            for r in config("minilm-l6-h384", rt, p, s, seconds=0.020 / ratio):
                if r.cell.suite in ("latency", "throughput"):
                    r = replace(r, metrics=r.metrics | {"speedup": ratio, "speedup_low": low, "speedup_high": high})
                recs.append(r)
            recs.append(glue(Cell("minilm-l6-h384", rt, p, s, "cpu", "glue"), "sst2", accuracy=0.91))
        return recs

    tied = recommendations(board(frame(measured(apart=False)))).iloc[0]
    assert tied.recommendation == "onnxruntime int8 dense cpu (tied with torch int8 dense cpu)"
    assert "95% intervals overlap" in tied.note
    clear = recommendations(board(frame(measured(apart=True)))).iloc[0]
    assert clear.recommendation == "onnxruntime int8 dense cpu" and "tied" not in clear.note
