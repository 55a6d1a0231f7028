"""Accuracy drops with paired intervals in the report and the leaderboard: every drop vs torch fp32 dense carries
its 95% interval over the same dev examples; the budget is judged on the interval (a row is admitted unless the
whole interval lies beyond it); where a dev set cannot resolve the budget, the report says so."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cell import Cell
from bench.report import board, frame, recommendations
from bench.report.glue_scores import glue_scores, paired_changes
from bench.synthetic import glue_predictions, lognormal, timed

N = 800
RNG = np.random.default_rng(3)
LABELS = RNG.integers(0, 2, N)
REF = np.where(RNG.random(N) < 0.9, LABELS, 1 - LABELS)


def worse(k: int, seed: int) -> np.ndarray:
    """The reference's predictions with `k` of its right answers turned wrong."""
    out = REF.copy()
    right = np.flatnonzero(REF == LABELS)
    out[np.random.default_rng(seed).choice(right, k, replace=False)] ^= 1
    return out


def records(rows: dict) -> list:
    """(runtime, precision) -> (predictions, seconds per batch-1 call)."""
    recs = []
    for i, ((rt, p), (preds, sec)) in enumerate(rows.items()):
        cell = Cell("minilm-l6-h384", rt, p, "dense", "cpu", "latency", 1, 128)
        recs.append(timed(cell, lognormal(np.random.default_rng(i), sec, 0.03, 40)))
        recs.append(glue_predictions(cell, "sst2", preds, LABELS))
    return recs


ROWS = {("torch", "fp32"): (REF, 0.020), ("onnxruntime", "int8"): (worse(4, 1), 0.010),
        ("torch", "int8"): (worse(40, 2), 0.006)}


def test_every_drop_from_the_reference_gets_a_paired_interval_and_the_reference_none():
    changes = paired_changes(frame(records(ROWS)))
    assert {k[2:4] for k in changes} == {("onnxruntime", "int8"), ("torch", "int8")}
    c = next(v for k, v in changes.items() if k[2:4] == ("onnxruntime", "int8"))
    assert c.discordant == 4 and c.points == pytest.approx(-100 * 4 / N) and c.low_pct <= c.relative_pct <= c.high_pct


def test_a_row_whose_whole_interval_is_beyond_the_budget_is_never_recommended_even_when_fastest():
    table = board(frame(records(ROWS)), budget_pct=1.0)
    row = table[(table.runtime == "torch") & (table.precision == "int8")].iloc[0]
    assert row["acc_budget"] == "beyond" and row["acc_drop_low_%"] > 1.0
    rec = recommendations(table, 1.0).iloc[0]
    assert rec["recommendation"].startswith("onnxruntime int8")


def test_an_unresolved_row_is_admitted_and_the_recommendation_says_its_drop_is_unresolved():
    rows = dict(ROWS)
    rows[("onnxruntime", "int8")] = (worse(7, 1), 0.010)  # 7/720 right answers lost: about -1%, interval spans it
    table = board(frame(records(rows)), budget_pct=1.0)
    row = table[(table.runtime == "onnxruntime") & (table.precision == "int8")].iloc[0]
    assert row["acc_budget"] == "unresolved" and row["acc_drop_low_%"] < 1.0 < row["acc_drop_high_%"]
    rec = recommendations(table, 1.0).iloc[0]
    assert rec["recommendation"].startswith("onnxruntime int8") and "unresolved" in rec["note"]


def test_the_glue_table_shows_each_interval_and_notes_where_the_dev_set_cannot_resolve_the_budget():
    rows = dict(ROWS)
    rows[("onnxruntime", "int8")] = (worse(7, 1), 0.010)
    table, notes = glue_scores(frame(records(rows)))
    text = table.loc[table.runtime == "onnxruntime", "sst2 accuracy"].iloc[0]
    assert "95% CI" in text and "McNemar p=" in text
    assert any("cannot tell" in n and "onnxruntime int8" in n for n in notes)
    assert not any("torch int8" in n for n in notes)  # resolved: beyond


def test_records_without_predictions_fall_back_to_the_point_estimate():
    recs = [r.__class__(**{**r.__dict__, "samples": {}}) if r.cell.suite == "glue" else r for r in records(ROWS)]
    table = board(frame(recs), budget_pct=1.0)
    assert (table["acc_budget"].fillna("") == "").all()
    assert recommendations(table, 1.0).iloc[0]["recommendation"].startswith("onnxruntime int8")
