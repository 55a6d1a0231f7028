from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.errors import UsageError
from bench.plan import Cell, Matrix, Plan, list_presets, load_preset, plan_from_dict, with_overrides


def test_presets_load_and_expand():
    assert {"default", "quick", "catalogue"} <= set(list_presets())
    for name in list_presets():
        assert load_preset(name).cells()


def test_default_preset_matches_the_embedded_default():
    plan = load_preset("default")
    assert plan.matrix.backbones == ("minilm-l6-h384", "bert-base-uncased")
    cells = plan.cells()
    # per backbone, CPU: torch fp32/int8 x dense/pruned90 (params, latency, throughput, parity);
    # onnxruntime fp32/int8/int8-static x dense/pruned90 and deepsparse fp32/int8-static x dense/pruned80/
    # pruned90 (params, latency, parity); CUDA: torch fp32/fp16 and onnxruntime fp32/fp16 (skipped without GPU)
    cpu = [c for c in cells if c.device == "cpu" and c.runtime in ("torch", "onnxruntime", "deepsparse")
           and c.suite != "glue"]
    assert len(cpu) == 2 * (6 * 4 + 6 * 3 + 6 * 3)  # torch fp32/bf16/int8 (bf16 skips without native bf16)
    assert {c.runtime for c in cpu} == {"torch", "onnxruntime", "deepsparse"}
    assert {c.sparsity for c in cpu if c.runtime == "onnxruntime"} == {"dense", "pruned90"}
    assert {c.sparsity for c in cpu if c.runtime == "deepsparse"} == {"dense", "pruned80", "pruned90"}
    assert not any(c.runtime == "deepsparse" and c.precision == "int8" for c in cells)  # aborts deepsparse
    assert not any(c.precision == "int8" and c.device == "cuda" for c in cells)
    assert not any(c.precision == "fp16" and c.device == "cpu" for c in cells)


def test_runtime_tables_narrow_the_matrix_and_reject_bad_names():
    data = {"matrix": {"backbones": ["minilm-l6-h384"], "runtimes": ["torch", "onnxruntime"],
                       "precisions": ["fp32", "int8"], "sparsities": ["dense", "pruned90"],
                       "suites": ["params", "latency", "parity"]},
            "latency": {"seq_lens": [32, 128]},
            "runtime": {"onnxruntime": {"precisions": ["int8"], "suites": ["latency"], "seq_lens": [128]}}}
    cells = plan_from_dict(data).cells()
    ort = {(c.precision, c.sparsity, c.suite, c.seq_len) for c in cells if c.runtime == "onnxruntime"}
    assert ort == {("int8", "dense", "latency", 128), ("int8", "pruned90", "latency", 128)}
    assert len([c for c in cells if c.runtime == "torch"]) == 4 * 4
    for bad, message in (({"nope": {}}, "unknown runtime 'nope'"),
                         ({"torch": {"colour": ["red"]}}, "unknown key"),
                         ({"torch": {"precisions": ["fp8"]}}, "unknown precision 'fp8'"),
                         ({"torch": {"seq_lens": [0]}}, "integer >= 1")):
        with pytest.raises(UsageError, match=message):
            plan_from_dict(data | {"runtime": bad})


def test_latency_cells_are_batch_one_at_each_sequence_length():
    plan = load_preset("quick").with_settings("latency", seq_lens=(32, 384))
    lat = [c for c in plan.cells() if c.suite == "latency"]
    assert {(c.batch, c.seq_len) for c in lat} == {(1, 32), (1, 384)}


@pytest.mark.parametrize("axis,value,message", [
    ("backbones", ("nope",), "unknown backbone 'nope'"),
    ("runtimes", ("tensorflow",), "unknown runtime 'tensorflow'; choose from: torch"),
    ("precisions", ("fp8",), "unknown precision 'fp8'"),
    ("suites", ("energy",), "unknown suite 'energy'"),
    ("devices", ("tpu",), "unknown device 'tpu'"),
    ("sparsities", ("pruned95",), "unknown sparsity 'pruned95'"),
])
def test_unknown_names_are_usage_errors(axis, value, message):
    with pytest.raises(UsageError, match=message):
        with_overrides(load_preset("quick"), **{axis: value})


def test_impossible_combination_is_rejected():
    with pytest.raises(UsageError, match="no runnable cell has precision 'int8'.*torch:cuda:fp32/fp16/bf16"):
        with_overrides(load_preset("quick"), precisions=("int8",), devices=("cuda",))


def test_unsupported_combinations_inside_a_matrix_are_dropped_not_errors():
    plan = with_overrides(load_preset("quick"), precisions=("fp32", "int8"), devices=("cpu", "cuda"))
    assert {(c.precision, c.device) for c in plan.cells()} == {("fp32", "cpu"), ("int8", "cpu"),
                                                                ("fp32", "cuda")}


@pytest.mark.parametrize("data,message", [
    ({"matrix": {"backbones": "bert"}}, "must be a non-empty list"),
    ({"matrix": {"colour": ["red"]}}, "unknown key"),
    ({"latency": {"min_iters": -1}}, "must be an integer >= 0"),
    ({"latency": {"seq_lens": [0]}}, "must be an integer >= 1"),
    ({"latency": {"min_time_s": "soon"}}, "finite number"),
    ({"run": {"threads": 1.5}}, "integer"),
    ({"glue": {"train": 0}}, "train must be true or false, got 0"),
    ({"extra": {}}, "unknown section"),
])
def test_bad_preset_content_is_a_usage_error(data, message):
    with pytest.raises(UsageError, match=message):
        plan_from_dict(data)


def test_bad_preset_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[matrix\nbackbones = 1")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_preset(str(bad))
    with pytest.raises(UsageError, match="not found"):
        load_preset(str(tmp_path / "missing.toml"))
    with pytest.raises(UsageError, match="unknown preset 'fast'"):
        load_preset("fast")


def test_cell_keys_are_stable_and_distinct():
    a = Cell("m", "torch", "fp32", "dense", "cpu", "latency", 1, 128)
    assert a.key() == Cell("m", "torch", "fp32", "dense", "cpu", "latency", 1, 128).key()
    assert a.key() != replace(a, seq_len=32).key()


names = st.sampled_from(["minilm-l6-h384", "bert-base-uncased", "bogus"])
precisions = st.sampled_from(["fp32", "bf16", "int8", "fp16", "fp8"])
devices = st.sampled_from(["cpu", "cuda"])


@settings(max_examples=60, deadline=None)
@given(st.lists(names, min_size=1, max_size=3), st.lists(precisions, min_size=1, max_size=4),
       st.lists(devices, min_size=1, max_size=2), st.lists(st.integers(-2, 600), min_size=1, max_size=3))
def test_plan_parsing_either_expands_to_valid_cells_or_raises_usage_error(bbs, precs, devs, seqs):
    data = {"matrix": {"backbones": bbs, "precisions": precs, "devices": devs, "runtimes": ["torch"]},
            "latency": {"seq_lens": seqs}}
    try:
        plan = plan_from_dict(data)
    except UsageError:
        return
    cells = plan.cells()
    assert cells
    from bench.runtimes import get_runtime
    assert all(get_runtime(c.runtime).supports(c.precision, c.device, c.sparsity) for c in cells)
    assert all(c.seq_len >= 1 for c in cells if c.suite in ("latency", "throughput"))


def test_matrix_defaults_are_runnable():
    assert Plan(matrix=Matrix()).cells()


def test_isolation_is_per_variant_by_default_and_only_variant_or_cell():
    assert load_preset("default").isolate == "variant"
    assert plan_from_dict({"run": {"isolate": "cell"}}).isolate == "cell"
    with pytest.raises(UsageError, match=r"\[run\] isolate must be one of variant, cell, got 'thread'"):
        plan_from_dict({"run": {"isolate": "thread"}})


def test_pruned_cells_run_the_magnitude_twin_by_default_or_the_upstream_backbone_on_request():
    assert load_preset("default").pruning == "magnitude"
    plan = plan_from_dict({"run": {"pruning": "upstream"}})
    assert plan.pruning == "upstream" and plan.record_settings(1)["pruning"] == "upstream"
    with pytest.raises(UsageError, match=r"\[run\] pruning must be one of magnitude, upstream, got 'movement'"):
        plan_from_dict({"run": {"pruning": "movement"}})


def test_glue_training_is_on_by_default_and_can_be_turned_off():
    assert load_preset("full").settings_of("glue").train is True
    assert plan_from_dict({"glue": {"train": False}}).settings_of("glue").train is False
