"""The command line: bad input is one line on stderr and exit code 2, with nothing written."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.records import RECORDS_FILE, read
from tests.conftest import needs_torch


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv,message", [
    (["run", "--backbones", "bert-huge"], "unknown backbone 'bert-huge'; choose from: minilm-l6-h384"),
    (["run", "--runtimes", "tensorrt"], "unknown runtime 'tensorrt'; choose from: torch"),
    (["run", "--precisions", "fp4"], "unknown precision 'fp4'; choose from: fp32, fp16, bf16, int8"),
    (["run", "--suites", "glue2"], "unknown suite 'glue2'; choose from: params, latency, throughput"),
    (["run", "--precisions", "fp16", "--devices", "cpu"], "no runnable cell has precision 'fp16'"),
    (["run", "--precisions", "int8", "--devices", "cuda"], "no runnable cell has precision 'int8'"),
    (["run", "--preset", "nope"], "unknown preset 'nope'"),
    (["run", "--seq-lens", "0"], "argument --seq-lens"),
    (["run", "--timeout", "0"], "--timeout must be > 0"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["report", "does-not-exist", "--out", "x"], "does-not-exist: no such result file"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, argv, message):
    out_dir = tmp_path / "out"
    if argv[0] == "run":
        argv = [*argv, "--out", str(out_dir)]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("bench: error: ")
    assert message in err
    assert not out_dir.exists()


def test_cuda_without_gpu_is_refused_when_asked_for_explicitly(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("bench.environment.has_cuda_gpu", lambda: False)
    code, _, err = run_cli(capsys, "run", "--devices", "cuda", "--out", str(tmp_path / "o"))
    assert code == 2 and "no CUDA GPU" in err and not (tmp_path / "o").exists()


def test_missing_framework_names_the_extra(capsys, tmp_path, monkeypatch):
    from dataclasses import replace

    from bench.runtimes import RUNTIMES

    monkeypatch.setitem(RUNTIMES, "torch", replace(RUNTIMES["torch"], requires=("torch_not_installed_here",)))
    code, _, err = run_cli(capsys, "run", "--runtimes", "torch", "--out", str(tmp_path / "o"))
    assert code == 2 and "install the 'torch' extra" in err and not (tmp_path / "o").exists()


def test_list_shows_backbones_runtimes_and_presets(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert "bert-base-uncased" in out and "random (pretrained: false)" in out and "presets:" in out


def test_list_marks_unmaintained_runtimes_with_the_reason_and_date(capsys):
    code, out, _ = run_cli(capsys, "list", "runtimes")
    lines = out.splitlines()
    assert code == 0
    deepsparse = next(i for i, line in enumerate(lines) if line.split()[0] == "deepsparse")
    assert lines[deepsparse].startswith("  deepsparse †")
    assert lines[deepsparse + 1].strip() == ("† unmaintained: DeepSparse deprecated upstream 2025-06-02, repository "
                                             "archived 2025-06-03")
    assert sum("† unmaintained: Apache MXNet retired" in line for line in lines) == 2  # mxnet, mxnet-deploy
    torch = next(line for line in lines if line.split()[0] == "torch")
    assert "†" not in torch and "unmaintained" not in lines[lines.index(torch) + 1]


def test_runtimes_not_installed_here_are_left_to_their_environments(capsys, tmp_path, monkeypatch):
    from dataclasses import replace

    from bench.runtimes import RUNTIMES

    monkeypatch.setitem(RUNTIMES, "torch", replace(RUNTIMES["torch"], requires=("torch_not_installed_here",)))
    code, out, err = run_cli(capsys, "run", "--preset", "quick", "--runtimes", "torch,onnxruntime", "--dry-run",
                             "--out", str(tmp_path / "o"))
    assert code == 2 and "install the 'torch' extra" in err  # named explicitly: insisted on
    code, out, err = run_cli(capsys, "run", "--preset", "default", "--dry-run", "--out", str(tmp_path / "o"))
    assert code == 0 and "skipping runtimes torch" in err and " torch " not in out


def test_dry_run_lists_cells_without_running(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "--preset", "quick", "--dry-run", "--out", str(tmp_path / "o"))
    assert code == 0 and "6 cells" in out and not (tmp_path / "o").exists()


def test_tasks_flag_chooses_the_glue_tasks(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "--preset", "default", "--runtimes", "torch", "--precisions", "fp32",
                           "--devices", "cpu", "--suites", "glue", "--tasks", "rte,cola", "--dry-run",
                           "--out", str(tmp_path / "o"))
    assert code == 0 and "rte" in out and "cola" in out and "mrpc" not in out
    code, _, err = run_cli(capsys, "run", "--suites", "glue", "--tasks", "mnli-typo", "--dry-run",
                           "--out", str(tmp_path / "o"))
    assert code == 2 and "unknown GLUE task 'mnli-typo'" in err and "mrpc" in err


@needs_torch
def test_end_to_end_run_then_report(tmp_path, tiny_model_dir):
    preset = tmp_path / "tiny.toml"
    preset.write_text(f"""
[matrix]
backbones = ["{tiny_model_dir}"]
runtimes = ["torch"]
precisions = ["fp32", "int8"]
suites = ["params", "latency", "throughput"]
[latency]
seq_lens = [16]
warmup_iters = 1
warmup_s = 0.0
min_iters = 5
min_time_s = 0.0
[throughput]
seq_len = 16
batches = [2]
min_iters = 2
min_time_s = 0.0
[run]
threads = 1
""")
    out = tmp_path / "results"
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "bench.cli", "run", "--preset", str(preset), "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "done: 6 ok, 0 failed" in proc.stdout
    recs = read(out / RECORDS_FILE)
    assert {r.cell.suite for r in recs} == {"params", "latency", "throughput"}
    lat = next(r for r in recs if r.cell.suite == "latency")
    assert lat.environment["cpu"]["physical_cores"] >= 1 and lat.runtime["threads"] == 1
    assert lat.environment["gemm_peak"]["gflops"] > 0 and "torch" in lat.environment["libraries"]
    md = (out / "report.md").read_text()
    assert "| fp32" in md and "| int8" in md and "speedup_s16" in md
    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert "6 already recorded" in again.stdout


def test_progress_lines_show_record_text_literally():
    """Reasons and names are text, not rich markup: `[glue] train` must not vanish as a style tag."""
    from rich.console import Console

    from bench.cell import Cell
    from bench.cli.run import _result_line
    from bench.records import Record

    cell = Cell("[bold]x", "torch", "fp32", "pruned80", "cpu", "glue", task="rte")
    record = Record(cell=cell, status="skipped", reason="training is off (--no-train or [glue] train = false)")
    console = Console(record=True, width=300)
    console.print(_result_line(cell, record))
    text = console.export_text()
    assert "[bold]x" in text and "or [glue] train = false)" in text
