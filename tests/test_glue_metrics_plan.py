"""GLUE without a framework: official metrics, the tasks axis of plans, recipes and the pruning schedule, and the
accuracy columns of the report."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest

from bench.errors import UsageError
from bench.glue import finetune, metrics, recipes
from bench.glue.batching import eval_batches, padded_length, train_batches
from bench.glue.tasks import get_task
from bench.plan import plan_from_dict
from bench.records import Record
from bench.report import comparison, frame


def test_each_task_reports_its_official_metrics():
    labels, preds = np.array([1, 1, 0, 0, 1, 0, 1, 1]), np.array([1, 0, 0, 1, 1, 0, 1, 1])
    assert metrics.compute(get_task("rte"), preds, labels) == {"accuracy": 0.75}
    mrpc = metrics.compute(get_task("mrpc"), preds, labels)
    assert list(mrpc) == ["f1", "accuracy"] and mrpc["f1"] == pytest.approx(0.8)  # tp 4, fp 1, fn 1
    assert metrics.compute(get_task("cola"), preds, labels)["mcc"] == pytest.approx(7 / 15)
    scores = np.array([0.0, 1.0, 2.0, 3.0, 5.0])
    stsb = metrics.compute(get_task("stsb"), scores ** 2, scores)
    assert stsb["spearman"] == pytest.approx(1.0) and 0.9 < stsb["pearson"] < 1.0


def test_predictions_need_the_task_head():
    assert list(metrics.predictions(get_task("sst2"), np.array([[0.1, 0.9], [2.0, -1.0]]))) == [1, 0]
    assert metrics.predictions(get_task("stsb"), np.array([[4.5], [0.5]])).tolist() == [4.5, 0.5]
    with pytest.raises(ValueError, match=r"expected logits of shape \(n, 2\)"):
        metrics.predictions(get_task("rte"), np.zeros((3, 384)))  # hidden states: no head


def _plan(**matrix):
    return plan_from_dict({"matrix": {"backbones": ["minilm-l6-h384"], "precisions": ["fp32", "int8"]} | matrix})


def test_glue_cells_carry_their_task_and_other_suites_none():
    cells = _plan(suites=["params", "glue"], tasks=["mrpc", "SST-2"]).cells()
    glue = [c for c in cells if c.suite == "glue"]
    assert sorted({c.task for c in glue}) == ["mrpc", "sst2"] and len(glue) == 4
    assert all(c.task is None for c in cells if c.suite != "glue")
    assert "glue mrpc" in glue[0].label


def test_bad_task_settings_are_usage_errors():
    with pytest.raises(UsageError, match="unknown GLUE task 'mnli'"):
        _plan(suites=["glue"], tasks=["mnli"])
    with pytest.raises(UsageError, match="suite glue needs GLUE tasks"):
        _plan(suites=["glue"])
    with pytest.raises(UsageError, match=r"\[glue\]: unknown key"):
        plan_from_dict({"glue": {"batch": 3}})
    assert _plan(suites=["params"], tasks=["rte"]).cells()[0].task is None  # tasks only shape glue cells


def test_presets_include_glue():
    from bench.plan import load_preset

    default, full = load_preset("default"), load_preset("full")
    assert {c.task for c in default.cells() if c.suite == "glue"} == {"mrpc"}
    assert {c.task for c in full.cells() if c.suite == "glue"} == {"sst2", "mrpc", "cola", "stsb", "rte", "qnli"}


def test_recipes_come_from_the_preset_file_and_bad_keys_are_refused(tmp_path):
    hp = recipes.hparams_for(get_task("mrpc"))
    assert hp.batch_size == 16 and hp.learning_rate == 5e-5 and hp.max_length == 128
    bad = tmp_path / "h.toml"
    bad.write_text("[default]\nlearning_rate = 'fast'\n")
    with pytest.raises(UsageError, match="learning_rate must be a finite number >= 0, got 'fast'"):
        recipes.hparams_for(get_task("rte"), bad)
    bad.write_text("[tasks.rte]\nepoch = 3\n")
    with pytest.raises(UsageError, match=r"unknown key\(s\) \['epoch'\]"):
        recipes.hparams_for(get_task("rte"), bad)
    assert recipes.sparse_recipe_for(get_task("rte"), 0.9).target == 0.9


def test_bench_hparams_names_another_recipe_file_for_the_whole_run(tmp_path, monkeypatch):
    other = tmp_path / "select.toml"
    other.write_text(recipes.HPARAMS_FILE.read_text().replace('candidates = ["gmp"]',
                                                               'candidates = ["gmp", "obert", "transfer"]'))
    monkeypatch.setenv(recipes.HPARAMS_FILE_ENV, str(other))
    assert recipes.sparse_selection().candidates == ("gmp", "obert", "transfer")
    assert recipes.hparams_for(get_task("mrpc")).batch_size == 16  # the rest as shipped: same recipes, same keys
    monkeypatch.setenv(recipes.HPARAMS_FILE_ENV, str(tmp_path / "missing.toml"))
    with pytest.raises(UsageError, match="missing.toml: unreadable hyper-parameter file"):
        recipes.hparams_for(get_task("mrpc"))


def test_the_cache_key_changes_with_any_part_of_the_recipe():
    base = {"base": "abc", "task": "rte", "hparams": {"lr": 1e-5}, "seed": 0}
    keys = {finetune.recipe_key(base), finetune.recipe_key(base | {"seed": 1}),
            finetune.recipe_key(base | {"hparams": {"lr": 2e-5}}), finetune.recipe_key(base | {"base": "abd"})}
    assert len(keys) == 4 and finetune.recipe_key(dict(reversed(base.items()))) == finetune.recipe_key(base)


def test_cubic_schedule_rises_fast_then_flattens_and_holds_the_target():
    s = [recipes.cubic_sparsity(t, 1000, 0.9, 0.0, 0.6, 30) for t in range(1000)]
    assert s[0] == 0.0 and s[600] == s[999] == 0.9 and all(b >= a for a, b in pairwise(s))
    assert s[300] > 0.9 * 0.8  # cubic: most pruning early, while the weights can still recover
    assert len(set(s[:600])) == 30  # updated at 30 points, constant between them


def test_length_buckets_cover_every_example_once_and_are_seeded():
    lengths = np.random.default_rng(0).integers(3, 128, size=1000)
    a = train_batches(lengths, 32, np.random.default_rng(1))
    b = train_batches(lengths, 32, np.random.default_rng(1))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    spread = np.mean([lengths[x].max() - lengths[x].min() for x in a])
    assert spread < 10  # similar lengths per batch: little padding
    assert [padded_length(n, 128) for n in (5, 32, 33, 127, 128)] == [32, 32, 64, 128, 128]
    assert sorted(np.concatenate(eval_batches(lengths, 64)).tolist()) == list(range(1000))


def test_report_shows_accuracy_and_drop_against_torch_fp32_dense():
    from bench.cell import Cell

    def rec(precision, f1):
        cell = Cell("minilm-l6-h384", "torch", precision, "dense", "cpu", "glue", task="mrpc")
        return Record(cell=cell, status="ok", metrics={"f1": f1, "accuracy": 0.8, "metric": "f1", "n": 408},
                      artifact={"pretrained": True}, environment={"machine": "m"}, finished=precision)

    table = comparison(frame([rec("fp32", 0.89), rec("int8", 0.88)])).set_index("precision")
    assert table.loc["fp32", "mrpc_f1"] == pytest.approx(89.0) and table.loc["int8", "mrpc_drop"] == pytest.approx(1.0)


def test_glue_seeds_give_each_glue_cell_once_per_seed_and_leave_other_cells_and_one_seed_plans_as_they_were():
    one = _plan(suites=["params", "glue"], tasks=["rte"]).cells()
    three = plan_from_dict({"matrix": {"backbones": ["minilm-l6-h384"], "suites": ["params", "glue"],
                                       "tasks": ["rte"]}, "glue": {"seeds": [0, 1, 2]}}).cells()
    glue = [c for c in three if c.suite == "glue"]
    assert sorted(c.seed for c in glue) == [0, 1, 2] and all(c.seed is None for c in three if c.suite != "glue")
    assert glue[1].label.endswith("glue rte seed1")
    plain = next(c for c in one if c.suite == "glue")
    assert plain.seed is None and "seed" not in plain.label and "seed" not in plain.identity()
    assert plain.key() != replace(plain, seed=0).key()  # seed 0 asked for is a cell of its own


@pytest.mark.parametrize("seeds", [[], [-1], ["0"], [1, 1], 3])
def test_bad_glue_seeds_are_one_usage_error(seeds):
    with pytest.raises(UsageError, match=r"\[glue\]: seeds"):
        plan_from_dict({"glue": {"seeds": seeds}})


def test_a_score_over_several_seeds_is_their_median_with_the_range_and_its_change_and_interval_pool_every_seed():
    from bench.cell import Cell
    from bench.report import glue_scores
    from bench.report.glue_scores import paired_changes, unresolved_notes
    from bench.report.ranking import accuracy_rows
    from bench.synthetic import MACHINE, glue_predictions

    labels = np.array([0, 1] * 20)
    rng = np.random.default_rng(0)
    recs = []
    for seed, flips in ((0, 2), (1, 4), (2, 6)):  # torch fp32: 95%, 90%, 85% right; int8 one more wrong each
        ref = labels.copy()
        ref[:flips] = 1 - ref[:flips]
        new = ref.copy()
        new[flips] = 1 - new[flips]
        for runtime, precision, preds in (("torch", "fp32", ref), ("onnxruntime", "int8", new)):
            c = Cell("minilm-l6-h384", runtime, precision, "dense", "cpu", "glue", seed=seed)
            recs.append(glue_predictions(c, "rte", preds, labels))
    rng.shuffle(recs)
    df = frame(recs)
    table, _ = glue_scores(df)
    by = {r["runtime"]: r["rte accuracy"] for r in table.to_dict("records")}
    assert by["torch"].startswith("90.00 (median of 3 seeds, 85.00…95.00")
    # the change shown is the pooled pairs' change, the one its interval is about
    assert by["onnxruntime"].startswith("87.50 (median of 3 seeds, 82.50…92.50) (pooled over seeds: -2.50 pt")
    change = paired_changes(df)[(MACHINE, "minilm-l6-h384", "onnxruntime", "int8", "dense", "cpu", "rte")]
    assert change.n == 3 * len(labels) and change.discordant == 3 and change.points == pytest.approx(-2.5)
    assert change.seeds == 3
    note = unresolved_notes({("m", "b", "r", "p", "s", "d", "rte"): change}, budget_pct=1.0)
    assert note and note[0].startswith("rte (40 dev examples x 3 seeds pooled, one example = 2.50 pt of one seed's")
    acc = accuracy_rows(df).set_index("runtime")
    assert acc.loc["onnxruntime", "accuracy"] == pytest.approx(87.5) and acc.loc["onnxruntime", "acc_seeds"] == 3


def test_over_several_seeds_every_drop_column_is_the_pooled_change_its_interval_is_about_not_the_median_gap():
    from bench.cell import Cell
    from bench.report.ranking import board
    from bench.synthetic import glue_predictions

    labels = np.array([0, 1] * 20)
    recs = []
    # torch fp32 95 / 90 / 85% right; int8 loses nothing on seeds 0 and 1 and three examples on seed 2:
    # medians 90 and 90 (no gap), pooled over the 120 pairs 2.5 points lost
    for seed, flips, lost in ((0, 2, 0), (1, 4, 0), (2, 6, 3)):
        ref = labels.copy()
        ref[:flips] = 1 - ref[:flips]
        new = ref.copy()
        new[flips:flips + lost] = 1 - new[flips:flips + lost]
        for runtime, precision, preds in (("torch", "fp32", ref), ("onnxruntime", "int8", new)):
            c = Cell("minilm-l6-h384", runtime, precision, "dense", "cpu", "glue", seed=seed)
            recs.append(glue_predictions(c, "rte", preds, labels))
    df = frame(recs)
    table = comparison(df).set_index("runtime")
    assert table.loc["onnxruntime", "rte_accuracy"] == pytest.approx(90.0)
    assert table.loc["onnxruntime", "rte_drop"] == pytest.approx(2.5)
    lb = board(df).set_index("runtime").loc["onnxruntime"]
    assert lb["acc_drop_%"] == pytest.approx(2.5 / 90 * 100)
    assert lb["acc_drop_low_%"] <= lb["acc_drop_%"] <= lb["acc_drop_high_%"]
