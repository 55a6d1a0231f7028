"""Fine-tuning, sparse transfer and evaluation on a tiny model and a tiny GLUE copy (torch extra).

Recipes are the real ones from bench/glue/hparams.toml: on 48 training rows they take a few steps.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.environment import native_support
from bench.glue import data, finetune
from bench.glue.tasks import get_task, parse_tasks
from tests.conftest import HAS_TORCH, make_tiny_model, read_json_lines
from tests.glue_fixtures import known_table, write_glue

pytestmark = [pytest.mark.torch, pytest.mark.skipif(not HAS_TORCH, reason="needs the torch extra")]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A tiny model, a tiny RTE copy imported into a module cache, and the base artifact."""
    from bench.artifacts import artifact_for
    from bench.catalogue import get_backbone

    root = tmp_path_factory.mktemp("glue-ft")
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE", str(root / "cache"))
    mp.delenv(data.GLUE_DIR_ENV, raising=False)
    glue = write_glue(root / "glue")
    data.import_dir(glue, parse_tasks("rte"), known=known_table(glue))
    model = make_tiny_model(root / "tiny")
    yield {"root": root, "glue": glue, "base": artifact_for(get_backbone(str(model))), "mp": mp}
    mp.undo()


@pytest.fixture(autouse=True)
def _module_cache(env, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE", str(env["root"] / "cache"))
    monkeypatch.delenv(data.GLUE_DIR_ENV, raising=False)


@pytest.fixture(scope="module")
def rte_model(env):
    """Trained the way the runner trains: in a subprocess (adapters/build/torch_finetune.py)."""
    return finetune.finetuned(env["base"], get_task("rte"), seed=0)


@pytest.fixture
def in_process(monkeypatch):
    """Later fine-tunings run in the test process: same code, no second torch import (keeps tests fast)."""
    monkeypatch.setenv(finetune.INPROCESS_ENV, "1")


def _evaluate(artifact, precision="fp32") -> dict:
    from adapters.base import Numerics, Options
    from adapters.torch_hf.adapter import TorchHFAdapter
    from bench.cell import Cell
    from suites import glue

    adapter = TorchHFAdapter()
    adapter.load(artifact, Numerics(precision), "cpu", Options(threads=1))
    try:
        cell = Cell(artifact.backbone, "torch", precision, "dense", "cpu", "glue", task="rte")
        return glue.SUITE.run(adapter, cell, glue.GlueSettings(batch_size=8, max_length=64)).metrics
    finally:
        adapter.close()


def test_the_finetuned_checkpoint_is_a_canonical_task_artifact(env, rte_model):
    meta = json.loads((rte_model.path / "meta.json").read_text())
    config = json.loads((rte_model.path / "config.json").read_text())
    assert (rte_model.task, rte_model.num_labels, rte_model.pretrained) == ("rte", 2, True)
    assert rte_model.parent_hash == env["base"].content_hash and rte_model.sparsity == 0.0
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert meta["finetune"]["recipe"]["hparams"]["batch_size"] == 16  # from hparams.toml
    assert meta["finetune"]["stats"]["steps"] == 5 * 3  # 5 epochs of 48 rows at batch 16
    assert finetune.finetuned(env["base"], get_task("rte"), seed=0).path == rte_model.path  # cached


def test_with_training_off_only_cached_checkpoints_are_used(env, rte_model):
    """`--no-train` / `[glue] train = false`: a cached checkpoint is used, a missing one skips its cells."""
    from bench.errors import CellSkipped

    assert finetune.finetuned(env["base"], get_task("rte"), seed=0, build=False).path == rte_model.path
    with pytest.raises(CellSkipped, match="rte fine-tuned checkpoint is not cached .* training is off"):
        finetune.finetuned(env["base"], get_task("rte"), seed=7, build=False)
    with pytest.raises(CellSkipped, match=r"rte sparse-transfer \(80%\) checkpoint is not cached"):
        finetune.sparse_transfer(env["base"], get_task("rte"), 0.8, seed=0, build=False)


def test_finetuning_twice_gives_the_same_weights_and_dev_metric(env, rte_model, tmp_path, monkeypatch, in_process):
    """Determinism: same recipe, seed and thread count → bit-identical weights, so the dev metric is equal
    with tolerance 0 (the runs differ in their cache directory and in- vs out-of-process training)."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "other-cache"))
    data.import_dir(env["glue"], parse_tasks("rte"), known=known_table(env["glue"]))
    again = finetune.finetuned(env["base"], get_task("rte"), seed=0)
    assert again.path != rte_model.path and again.content_hash == rte_model.content_hash
    assert _evaluate(again)["accuracy"] == _evaluate(rte_model)["accuracy"]
    other_seed = finetune.finetuned(env["base"], get_task("rte"), seed=1)
    assert other_seed.content_hash != rte_model.content_hash


def test_the_suite_evaluates_dev_through_the_adapter_in_every_precision(rte_model):
    fp32, int8 = _evaluate(rte_model), _evaluate(rte_model, "int8")
    for m in (fp32, int8):
        assert m["n"] == 16 and m["split"] == "dev" and 0.0 <= m["accuracy"] <= 1.0 and m["eval_s"] > 0
        assert m["metric"] == "accuracy" and m["sequences_per_s"] > 0
    assert abs(fp32["accuracy"] - int8["accuracy"]) <= 2 / 16  # tiny dev set: at most two flips


def test_sparse_transfer_prunes_exactly_with_the_pruning_rule(env, rte_model, in_process):
    from safetensors.numpy import load_file

    from bench.pruning import DEFAULT_SCOPE

    pruned = finetune.sparse_transfer(env["base"], get_task("rte"), 0.8, seed=0)
    assert (pruned.task, pruned.sparsity, pruned.parent_hash) == ("rte", 0.8, rte_model.content_hash)
    tensors = load_file(pruned.path / "model.safetensors")
    scoped = {n: t for n, t in tensors.items() if DEFAULT_SCOPE.covers(n, t.shape)}
    assert scoped and all(t.size - np.count_nonzero(t) == round(0.8 * t.size) for t in scoped.values())
    assert np.count_nonzero(tensors["classifier.weight"]) == tensors["classifier.weight"].size  # head untouched
    meta = json.loads((pruned.path / "meta.json").read_text())
    assert "distilled from the dense fine-tuned model" in meta["pruning"]["recovery"]
    assert 0.0 <= _evaluate(pruned)["accuracy"] <= 1.0


def test_a_random_weight_backbone_or_missing_train_split_is_skipped_with_the_reason(env):
    from dataclasses import replace

    random = replace(env["base"], pretrained=False)
    assert "random weights (pretrained: false)" in finetune.glue_unavailable(random, get_task("rte"))
    assert "bench data glue --tasks mrpc --from DIR" in finetune.glue_unavailable(env["base"], get_task("mrpc"))


def test_runner_records_glue_metrics_skips_unprepared_tasks_and_resumes(env, rte_model, tmp_path):
    from bench import runner
    from bench.plan import plan_from_dict

    plan = plan_from_dict({"matrix": {"backbones": [str(env["base"].path)], "precisions": ["fp32", "int8"],
                                      "suites": ["glue"], "tasks": ["rte", "qnli"]},
                           "glue": {"batch_size": 8}, "run": {"threads": 1}})
    summary = runner.run(plan, tmp_path / "out")
    assert (summary.ok, summary.skipped, summary.failed) == (2, 2, 0)
    recs = read_json_lines(tmp_path / "out" / "records.jsonl")
    ok = [r for r in recs if r["status"] == "ok"]
    assert {r["cell"]["precision"] for r in ok} == {"fp32", "int8"}
    assert all(r["artifact"]["content_hash"] == rte_model.content_hash and r["metrics"]["n"] == 16 for r in ok)
    assert all("bench data glue --tasks qnli" in r["reason"] for r in recs if r["status"] == "skipped")
    assert runner.run(plan, tmp_path / "out").resumed == 4  # finished cells are not re-run; a skip keyed on the
    # base weights re-runs once the task is prepared (the fine-tuned artifact changes the run key)


def test_with_several_seeds_each_glue_cell_runs_its_own_seeds_fine_tune(env, rte_model, tmp_path, in_process):
    from bench import runner
    from bench.plan import plan_from_dict

    plan = plan_from_dict({"matrix": {"backbones": [str(env["base"].path)], "suites": ["glue"], "tasks": ["rte"]},
                           "glue": {"batch_size": 8, "seeds": [0, 1]}, "run": {"threads": 1}})
    assert runner.run(plan, tmp_path / "out").ok == 2
    recs = {r["cell"]["seed"]: r for r in read_json_lines(tmp_path / "out" / "records.jsonl")}
    assert recs[0]["artifact"]["content_hash"] == rte_model.content_hash  # seed 0 is the plan seed's model
    assert recs[1]["artifact"]["content_hash"] != rte_model.content_hash
    assert finetune.finetuned(env["base"], get_task("rte"), seed=1, build=False).content_hash == \
        recs[1]["artifact"]["content_hash"]


def test_a_rerun_elsewhere_reuses_the_same_dev_evaluation_and_says_so(env, rte_model, tmp_path, monkeypatch):
    """The dev score is a pure function of model bytes, runtime versions, machine, threads, code and data:
    a second result directory reuses it (marked, with when it really ran); other threads, --fresh-eval or a
    damaged cache entry evaluate again."""
    from dataclasses import replace

    from bench import runner
    from bench.glue import evalcache
    from bench.plan import plan_from_dict

    monkeypatch.setattr(evalcache, "_path", lambda k: tmp_path / "evals" / f"{k}.json")
    plan = plan_from_dict({"matrix": {"backbones": [str(env["base"].path)], "suites": ["glue"], "tasks": ["rte"]},
                           "glue": {"batch_size": 8}, "run": {"threads": 1}})
    runner.run(plan, tmp_path / "first")
    runner.run(plan, tmp_path / "second")
    first, second = (read_json_lines(tmp_path / d / "records.jsonl")[0] for d in ("first", "second"))
    assert "eval_cache" not in first["runtime"] and first["status"] == second["status"] == "ok"
    assert second["metrics"] == first["metrics"]
    assert second["runtime"]["eval_cache"]["measured_finished"] == first["finished"]

    runner.run(replace(plan, threads=2), tmp_path / "two-threads")
    runner.run(plan.with_settings("glue", reuse=False), tmp_path / "fresh")
    entries = sorted((tmp_path / "evals").glob("*.json"))
    assert len(entries) == 2  # 1 and 2 threads: different keys
    for entry in entries:
        entry.write_text("{not json")
    runner.run(plan, tmp_path / "damaged")
    for d in ("two-threads", "fresh", "damaged"):
        (rec,) = read_json_lines(tmp_path / d / "records.jsonl")
        assert rec["status"] == "ok" and "eval_cache" not in rec["runtime"], d


def test_the_int8_calibration_never_sees_dev(env):
    train = data.load_split("rte", "train")
    sample = data.calibration_sample(get_task("rte"), 8)
    pairs = set(zip(train.text_a, train.text_b, strict=True))
    assert len(sample[0]) == 8 and set(zip(*sample, strict=True)) <= pairs
    assert sample == data.calibration_sample(get_task("rte"), 8)  # fixed, not random per run



def test_a_killed_finetuning_resumes_to_the_same_weights(env, rte_model, tmp_path, monkeypatch, in_process):
    import adapters.build.torch_finetune as tf

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    data.import_dir(env["glue"], parse_tasks("rte"), known=known_table(env["glue"]))
    monkeypatch.setattr(tf, "SAVE_EVERY_S", 0)  # save the training state after every step
    real, calls = tf._inputs, []

    def killed_at_step_8(*args):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt  # stands in for a kill in the middle of the run
        return real(*args)

    monkeypatch.setattr(tf, "_inputs", killed_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        finetune.finetuned(env["base"], get_task("rte"), seed=0)
    monkeypatch.setattr(tf, "_inputs", real)
    resumed = finetune.finetuned(env["base"], get_task("rte"), seed=0)
    meta = json.loads((resumed.path / "meta.json").read_text())
    assert meta["finetune"]["stats"]["resumed_at_step"] == 7
    assert resumed.content_hash == rte_model.content_hash  # bit-identical to the uninterrupted run
    assert not list((tmp_path / "cache" / "finetune-state").glob("*.pt"))  # resume point removed once done


def test_the_int8_fallback_search_scores_train_examples_outside_every_calibration_set_and_dev(env):
    from bench import recipes

    train = data.load_split("rte", "train")
    cal = recipes.task_calibration("rte", recipes.MAX_TASK_EXAMPLES)
    search = recipes.search_sample("rte")
    dev = data.load_split("rte", "dev")
    pairs = lambda s: set(zip(*s, strict=True))  # noqa: E731
    assert search[0] and pairs(search) <= set(zip(train.text_a, train.text_b, strict=True))
    assert not pairs(search) & pairs(cal) and not pairs(search) & set(zip(dev.text_a, dev.text_b, strict=True))
    assert len(cal[0]) <= len(train) // 2  # a small train split keeps half for the search


@pytest.mark.parametrize("form", ["onnx-int8-dynamic", "onnx-int8-static"])
def test_a_fine_tuned_models_int8_file_records_the_search_that_chose_its_fp32_fallbacks(rte_model, form):
    import onnx

    from bench import exports

    path = exports.ready_file(rte_model, form)
    meta = exports.read_sidecar(path)
    found = meta["search"]
    assert found["search_examples"] > 0 and "never dev" in found["search_split"]
    assert found["evaluations"] + found["resumed_scores"] >= 2
    assert found["chosen"]["distance"] <= found["all_quantized"]["distance"]
    assert len(meta["kept_fp32"]) <= recipes_units(form)
    graph = onnx.load(str(path)).graph
    quantized = {n.name for n in graph.node if n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")}
    assert not quantized & set(meta["kept_fp32"])
    assert meta["recipe"]["reduce_range"] == (not native_support("int8"))  # 7-bit weights only without VNNI


def test_an_interrupted_int8_search_resumes_from_its_kept_scores_to_the_same_choice(rte_model):
    from bench import exports

    path = exports.ready_file(rte_model, "onnx-int8-dynamic")
    first = exports.read_sidecar(path)
    path.unlink()  # as if the build had died after the search measured everything
    exports.sidecar(path).unlink()
    again = exports.read_sidecar(exports.ready_file(rte_model, "onnx-int8-dynamic"))
    assert again["search"]["evaluations"] == 0 and again["search"]["resumed_scores"] > 0
    assert again["kept_fp32"] == first["kept_fp32"]


def recipes_units(form: str) -> int:
    """Nodes the recipe may keep fp32 at most (a role is one node per layer; the tiny model has 2 layers)."""
    from bench import recipes

    r = recipes.ort_int8(form)
    return r.max_fallback * (1 if r.search_unit == "node" else 2)
