"""The bad-input catalogue (files and arguments; more name/combination cases live in test_cli.py): each is
one line on stderr, exit code 2, and nothing written where the output would have gone."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from bench.cell import Cell
from bench.cli import main
from bench.records import Record, append


def model_dir(root, config='{"model_type": "bert", "vocab_size": 10}', weights="ok"):
    d = root / "model"
    d.mkdir()
    if config is not None:
        (d / "config.json").write_text(config)
    if weights == "ok":
        save_file({"w": np.ones((8, 8), np.float32)}, d / "model.safetensors")
    elif weights == "truncated":
        save_file({"w": np.ones((64, 64), np.float32)}, d / "model.safetensors")
        (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:500])
    elif weights == "garbage":
        (d / "model.safetensors").write_bytes(b"\xff" * 40)
    elif weights == "pickle":
        (d / "pytorch_model.bin").write_bytes(b"\x80\x04pickled")
    return str(d)


def preset(root, text):
    p = root / "p.toml"
    p.write_text(text)
    return str(p)


def records_file(root, extra_line=None, empty=False):
    d = root / "results"
    d.mkdir()
    path = d / "records.jsonl"
    if empty:
        path.write_text("")
        return str(d)
    append(path, Record(cell=Cell("m", "torch", "fp32", "dense", "cpu", "params"), status="ok"))
    if extra_line is not None:
        with open(path, "a") as f:
            f.write(extra_line + "\n")
    return str(d)


RUN_CASES = {
    "preset not TOML": (lambda r: ["--preset", preset(r, "[matrix\n")], "not valid TOML"),
    "preset unknown section": (lambda r: ["--preset", preset(r, "[gpu]\nx = 1\n")], "unknown section"),
    "preset negative iterations": (lambda r: ["--preset", preset(r, "[latency]\nmin_iters = -3\n")],
                                   "min_iters must be an integer >= 0"),
    "preset empty list": (lambda r: ["--preset", preset(r, "[matrix]\nbackbones = []\n")], "non-empty list"),
    "preset wrong type": (lambda r: ["--preset", preset(r, '[matrix]\nprecisions = [1, 2]\n')],
                          "list of strings"),
    "preset missing": (lambda r: ["--preset", str(r / "nope.toml")], "not found"),
    "model dir without config": (lambda r: ["--backbones", model_dir(r, config=None)],
                                 "not a from_pretrained directory"),
    "model dir corrupt config": (lambda r: ["--backbones", model_dir(r, config="{nope")], "not valid JSON"),
    "model dir config without model_type": (lambda r: ["--backbones", model_dir(r, config='{"a": 1}')],
                                            "no model_type"),
    "model dir pickled weights only": (lambda r: ["--backbones", model_dir(r, weights="pickle")],
                                       "pickled checkpoints are not loaded"),
    "model dir truncated safetensors": (lambda r: ["--backbones", model_dir(r, weights="truncated")],
                                        "truncated"),
    "model dir garbage safetensors": (lambda r: ["--backbones", model_dir(r, weights="garbage")],
                                      "not a valid safetensors file"),
    "sequence longer than the model allows": (lambda r: ["--backbones", "bert-base-uncased", "--seq-lens",
                                                         "128,1024"], "exceeds bert-base-uncased's max_position"),
    "sequence of one token": (lambda r: ["--seq-lens", "1"], "must be >= 2"),
    "zero threads": (lambda r: ["--threads", "0"], "argument --threads"),
    "negative rounds": (lambda r: ["--rounds", "-1"], "--rounds must be >= 0"),
    "preset negative rounds": (lambda r: ["--preset", preset(r, "[run]\nrounds = -2\n")],
                               "[run] rounds must be an integer >= 0"),
    "interpreter not a file": (lambda r: ["--python", f"deepsparse={r / 'nope' / 'python'}"], "is not a file"),
    "interpreter without extra": (lambda r: ["--python", "/usr/bin/python3"], "expected EXTRA=PATH"),
    "parity tolerance negative": (lambda r: ["--preset", preset(r, "[parity]\nrel_tol = -1e-4\n")],
                                  "rel_tol must be a finite number >= 0, got -0.0001"),
    "parity tolerance NaN": (lambda r: ["--preset", preset(r, "[parity]\nmin_cosine = nan\n")],
                             "min_cosine must be a finite number >= 0, got nan"),
    "parity cosine above one": (lambda r: ["--preset", preset(r, "[parity]\nmin_cosine = 1.5\n")],
                                "min_cosine must be <= 1"),
    "parity unknown key": (lambda r: ["--preset", preset(r, "[parity]\natol = 1e-3\n")],
                           "[parity]: unknown key(s) ['atol']; allowed: ['min_cosine', 'rel_tol']"),
    "non-numeric batches": (lambda r: ["--batches", "8,big"], "argument --batches"),
}


INT8_CASES = {
    "unknown key": ("[onnx-int8-dynamic]\nper_chanel = true\n", "unknown key(s) ['per_chanel']; allowed: "),
    "unknown table": ("[onnx-int8-qdq]\nmin_gain = 0.1\n", "unknown table(s) ['onnx-int8-qdq']; allowed: "),
    "unknown search unit": ('[onnx-int8-static]\nsearch_unit = "layer"\n', "search_unit 'layer' (allowed: node, role)"),
    "unknown calibration": ('[onnx-int8-static]\ncalibration = ["Entropy"]\n', "calibration 'Entropy' (allowed:"),
    "calibration too large": ("[onnx-int8-static]\ncalibration_sizes = [4096]\n", "calibration_sizes 4096"),
    "gain above one": ("[onnx-int8-dynamic]\nmin_gain = 1.5\n", "min_gain 1.5"),
    "not TOML": ("[onnx-int8-dynamic\n", "unreadable INT8 recipe file"),
}


@pytest.mark.parametrize("case", list(INT8_CASES))
def test_a_bad_int8_recipe_file_is_one_line_naming_the_key_and_the_allowed_values(case, tmp_path, capsys,
                                                                                  monkeypatch):
    from bench.recipes import INT8_FILE_ENV

    text, message = INT8_CASES[case]
    path = tmp_path / "int8.toml"
    path.write_text(text)
    monkeypatch.setenv(INT8_FILE_ENV, str(path))
    out = tmp_path / "out"
    code = main(["run", "--preset", "quick", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_bad_run_input(case, tmp_path, capsys):
    make_args, message = RUN_CASES[case]
    out = tmp_path / "out"
    code = main(["run", *make_args(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("bench: error: ") and err.count("\n") == 1
    assert message in err
    assert not out.exists()


REPORT_CASES = {
    "corrupt record line": (lambda r: records_file(r, "{not json"), "corrupt record"),
    "future schema version": (lambda r: records_file(r, json.dumps({"schema": 7, "cell": {}})),
                              "schema version 7 not supported"),
    "record with bad status": (lambda r: records_file(r, json.dumps(
        {"schema": 1, "status": "great", "cell": {}})), "invalid record"),
    "empty records file": (lambda r: records_file(r, empty=True), "no records in"),
    "directory without records": (lambda r: str(r), "no records.jsonl found"),
    "binary junk": (lambda r: records_file(r, "\x00\x01\x02"), "corrupt record"),
}


@pytest.mark.parametrize("case", list(REPORT_CASES))
def test_bad_result_files(case, tmp_path, capsys):
    make_input, message = REPORT_CASES[case]
    out = tmp_path / "report-out"
    code = main(["report", make_input(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert not out.exists()


def test_unknown_plugin_module(tmp_path, monkeypatch):
    import subprocess
    import sys

    env = {"BENCH_PLUGINS": "no_such_plugin_module", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "run", "--dry-run"], capture_output=True,
                          text=True, env=env, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "BENCH_PLUGINS: cannot import 'no_such_plugin_module'" in proc.stderr


@pytest.mark.parametrize("under", ["a file", "no permission"])
def test_an_output_path_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys, under):
    import os

    if under == "a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "x"
    else:
        if os.geteuid() == 0:
            out = "/proc/backbone-bench-out"  # root ignores permission bits; /proc refuses everyone
        else:
            (tmp_path / "ro").mkdir(mode=0o500)
            out = tmp_path / "ro" / "x"
    code = main(["run", "--preset", "quick", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"bench: error: --out {out}: cannot write")
    code = main(["report", records_file(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "cannot write there" in err


def test_a_run_never_appends_to_another_machines_records(tmp_path, capsys):
    """Published result sets (and any other machine's run) stay what they are: one line, exit 2, the file as it was."""
    path = tmp_path / "published" / "records.jsonl"
    path.parent.mkdir()
    append(path, Record(cell=Cell("m", "torch", "fp32", "dense", "cpu", "params"), status="ok",
                        environment={"machine": "another-machine"}))
    before = path.read_bytes()
    code = main(["run", "--preset", "quick", "--suites", "params", "--out", str(path.parent)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "holds records of machine another-machine" in err
    assert "choose another --out" in err and path.read_bytes() == before
