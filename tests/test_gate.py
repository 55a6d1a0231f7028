"""The regression gate: a regression is a change beyond its threshold AND significant on the raw samples.

Quality is shown on synthetic runs that look like real ones (lognormal samples, CV 5-10%, 30-100 samples per
cell, 2% slow outliers): two runs of the same code never alarm, a 10% slowdown always does. A shared VM adds
run-to-run drift that no single run shows; with repeated runs the gate tests run medians against the pooled
run-to-run noise and says how large a change it can resolve. benchmarks/gate_quality.py measures real timings.
"""

from dataclasses import replace

import numpy as np
import pytest

from bench.cell import Cell
from bench.errors import UsageError
from bench.gate.change import (
    FAILED_IN_NEW,
    IMPROVED,
    NOT_SIGNIFICANT,
    REGRESSION,
    SKIPPED_IN_NEW,
    TOO_FEW,
    WITHIN,
    WITHIN_NOISE,
)
from bench.gate.judge import compare
from bench.gate.render import markdown
from bench.gate.rules import Rules, Thresholds, load_rules
from bench.stats import min_p_value
from bench.synthetic import glue, lognormal, result_set, timed

LAT = Cell("minilm-l6-h384", "torch", "fp32", "dense", "cpu", "latency", 1, 128)
TPUT = replace(LAT, suite="throughput", batch=32)


def pair(base_median, new_median, cv=0.05, n=50, seed=0, cell=LAT):
    rng = np.random.default_rng(seed)
    return ([timed(cell, lognormal(rng, base_median, cv, n, outliers=0))],
            [timed(cell, lognormal(rng, new_median, cv, n, outliers=0))])


def test_twenty_aa_comparisons_raise_no_false_alarm():
    for i in range(20):
        result = compare(result_set(seed=2 * i), result_set(seed=2 * i + 1))
        assert len(result.changes) == 12
        assert result.regressions == [], markdown(result)
        assert result.exit_code == 0


def test_an_injected_ten_percent_slowdown_is_detected():
    for i in range(20):
        result = compare(result_set(seed=100 + 2 * i), result_set(seed=101 + 2 * i, slowdown=1.10))
        assert result.exit_code == 1
        # nearly every cell on its own: a miss is a cell whose observed median moved < 5% by chance
        assert len(result.regressions) >= 11
        assert {c.verdict for c in result.regressions} == {REGRESSION}


def test_error_rates_per_cell_at_the_noisy_end():
    """Worst realistic case (CV 10%, 30 samples, 2% outliers), per single cell: false alarms are rare and a
    10% slowdown is usually caught; with CV 5% and 50 samples it is always caught."""
    rng = np.random.default_rng(7)
    trials, false_alarms, caught, caught_quiet = 200, 0, 0, 0
    for _ in range(trials):
        base = [timed(LAT, lognormal(rng, 0.01, 0.10, 30))]
        false_alarms += compare(base, [timed(LAT, lognormal(rng, 0.01, 0.10, 30))]).exit_code
        caught += compare(base, [timed(LAT, lognormal(rng, 0.011, 0.10, 30))]).exit_code
        quiet = [timed(LAT, lognormal(rng, 0.01, 0.05, 50))]
        caught_quiet += compare(quiet, [timed(LAT, lognormal(rng, 0.011, 0.05, 50))]).exit_code
    assert false_alarms / trials <= 0.01
    assert caught / trials >= 0.65
    assert caught_quiet == trials


def test_significant_but_small_change_is_within_threshold():
    base, new = pair(0.010, 0.0102, cv=0.02, n=2000)  # 2% slower, p ~ 0
    (change,) = compare(base, new).changes
    assert change.p_value < 1e-6 and 1 < change.worse < 3
    assert change.verdict == WITHIN and not change.is_regression


def test_large_but_noisy_change_is_not_significant():
    base, new = pair(0.010, 0.0115, cv=0.40, n=8, seed=3)
    (change,) = compare(base, new).changes
    assert change.worse > 5 and change.p_value >= 0.01
    assert change.verdict == NOT_SIGNIFICANT


def test_too_few_samples_can_never_be_significant():
    assert min_p_value(4, 4) == pytest.approx(2 / 70)
    assert min_p_value(1500, 1500) == 0.0  # too small for a float, not an OverflowError
    base, new = pair(0.010, 0.020, n=4)
    (change,) = compare(base, new).changes
    assert change.verdict == TOO_FEW and change.worse > 50


def test_throughput_is_worse_when_lower_and_uses_batch_samples():
    base, new = pair(0.100, 0.115, cell=TPUT)  # seconds per batch of 32: throughput drops ~13%
    (change,) = compare(base, new).changes
    assert change.metric == "sequences_per_s" and change.unit == "seq/s"
    assert change.new < change.base and change.verdict == REGRESSION
    assert change.base == pytest.approx(32 / np.median(base[0].samples["batch_s"]))
    base, new = pair(0.100, 0.080, cell=TPUT)
    assert compare(base, new).changes[0].verdict == IMPROVED


def test_accuracy_compares_points_against_its_own_threshold():
    cell = replace(LAT, suite="glue", batch=0, seq_len=0, task="sst2")
    base = [glue(cell, "sst2", accuracy=0.910, f1=0.905)]
    result = compare(base, [glue(cell, "sst2", accuracy=0.895, f1=0.900)])
    by_metric = {c.metric: c for c in result.changes}
    assert by_metric["accuracy"].worse == pytest.approx(1.5) and by_metric["accuracy"].verdict == REGRESSION
    assert by_metric["f1"].verdict == WITHIN and by_metric["f1"].p_value is None  # deterministic: no test
    loose = Rules(Thresholds(accuracy_points=2.0))
    assert compare(base, [glue(cell, "sst2", accuracy=0.895, f1=0.900)], loose).exit_code == 0


def test_thresholds_file_overrides_per_backbone_and_suite(tmp_path):
    path = tmp_path / "thresholds.toml"
    path.write_text("""
[default]
latency_pct = 4.0
alpha = 0.01

[[override]]
backbone = "bert-base-uncased"
latency_pct = 20.0

[[override]]
backbone = "bert-base-uncased"
suite = "throughput"
throughput_pct = 30.0
""")
    rules = load_rules(path)
    bert = replace(LAT, backbone="bert-base-uncased")
    assert rules.for_cell(LAT) == Thresholds(latency_pct=4.0)
    assert rules.for_cell(bert).latency_pct == 20.0 and rules.for_cell(bert).throughput_pct == 5.0
    assert rules.for_cell(replace(bert, suite="throughput")).throughput_pct == 30.0
    base, new = pair(0.010, 0.011)
    base_b, new_b = pair(0.010, 0.011, cell=bert)
    result = compare(base + base_b, new + new_b, rules)
    assert [c.cell.backbone for c in result.regressions] == ["minilm-l6-h384"]
    # command-line flags replace the defaults; the per-backbone override still wins for its cells
    cli = rules.with_defaults(latency_pct=15.0)
    assert cli.for_cell(LAT).latency_pct == 15.0 and cli.for_cell(bert).latency_pct == 20.0


@pytest.mark.parametrize("text,message", [
    ("[default]\nlatency = 5", "unknown threshold 'latency'"),
    ("[default]\nalpha = 2", "alpha must be between 0 and 1"),
    ("[default]\nlatency_pct = -1", "must be a finite number >= 0"),
    ("[[override]]\nlatency_pct = 3", "needs at least one cell field"),
    ("[gate]\nx = 1", "unknown section"),
    ("not toml [", "not a valid thresholds TOML"),
])
def test_bad_thresholds_files_are_usage_errors(tmp_path, text, message):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_rules(path)


def test_a_cell_that_fails_in_new_is_a_regression_and_a_skip_is_not():
    base, new = pair(0.01, 0.01)
    failed = replace(new[0], status="failed", reason="worker killed by SIGSEGV", metrics={}, samples={})
    (change,) = compare(base, [failed]).changes
    assert change.verdict == FAILED_IN_NEW and change.is_regression
    skipped = replace(failed, status="skipped", reason="no GPU")
    assert compare(base, [skipped]).changes[0].verdict == SKIPPED_IN_NEW
    assert compare(base, [skipped]).exit_code == 0


def test_latest_record_of_a_cell_wins_and_unmatched_cells_are_listed():
    base, new = pair(0.010, 0.013)
    rerun = replace(pair(0.010, 0.010, seed=5)[1][0], finished="2026-02-01T00:00:00+00:00")
    other = replace(base[0], cell=replace(LAT, seq_len=32))
    result = compare([*base, other], [*new, rerun])
    assert result.exit_code == 0 and len(result.changes) == 1
    assert result.only_base == [other.cell] and result.only_new == []


def test_different_machines_are_refused_unless_allowed():
    base = result_set(seed=1, machine="box-a")
    new = result_set(seed=2, machine="box-b")
    with pytest.raises(UsageError, match="box-a .*box-b.*not comparable.*--allow-cross-machine"):
        compare(base, new)
    assert compare(base, new, allow_cross_machine=True).exit_code == 0


def test_no_overlapping_cells_is_a_usage_error():
    base, _ = pair(0.01, 0.01)
    _, new = pair(0.01, 0.01, cell=replace(LAT, backbone="other"))
    with pytest.raises(UsageError, match="no overlapping cells"):
        compare(base, new)


def test_markdown_escapes_record_text_and_puts_regressions_first():
    evil = replace(LAT, backbone="<script>alert(1)</script>|x")
    base, new = pair(0.010, 0.0101, cell=evil)
    base2, new2 = pair(0.010, 0.012, cell=LAT)
    md = markdown(compare(base + base2, new + new2))
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;\\|x" in md
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert rows[0].startswith("| **REGRESSION**") and rows[1].startswith("| within threshold")


def drifting(seed: int, runs: int, drift: float, slowdown: float = 1.0) -> list[list]:
    """`runs` runs of the 12-cell matrix on a machine whose speed moves by `drift` (sd) from run to run."""
    return [result_set(seed=seed + i, drift=drift, slowdown=slowdown) for i in range(runs)]


def test_run_to_run_drift_fools_single_runs_but_not_repeated_ones():
    """5% drift between runs: one run per side alarms on nearly every A/A pair; three runs per side, judged on
    run medians against the pooled run-to-run noise, on none, and the rows say why."""
    single = sum(compare(drifting(10 * i, 1, 0.05), drifting(10 * i + 5, 1, 0.05)).exit_code for i in range(20))
    assert single >= 15
    for i in range(20):
        result = compare(drifting(10 * i, 3, 0.05), drifting(10 * i + 5, 3, 0.05))
        assert result.exit_code == 0, markdown(result)
    assert WITHIN_NOISE in {c.verdict for c in result.changes}
    change = result.changes[0]
    assert (change.runs_base, change.runs_new) == (3, 3) and 3 < change.noise < 7 and change.floor > change.noise


def test_a_ten_percent_slowdown_is_caught_through_two_percent_drift():
    """A quieter machine (2% drift, three runs a side): every slowed comparison fails, nearly every cell. The
    run-level test holds the family-wise error of a whole comparison at alpha (0.01): about one A/A pair in a
    hundred alarms (1 of 200 on these synthetic runs; one of them is among these 20)."""
    flagged, false_alarms = 0, 0
    for i in range(20):
        result = compare(drifting(10 * i, 3, 0.02), drifting(10 * i + 5, 3, 0.02, slowdown=1.10))
        assert result.exit_code == 1
        flagged += len(result.regressions)
        false_alarms += compare(drifting(10 * i, 3, 0.02), drifting(10 * i + 5, 3, 0.02)).exit_code
    assert flagged >= 0.8 * 20 * 12
    assert false_alarms <= 1


def test_the_floor_is_the_smallest_change_repeated_runs_can_resolve():
    """More drift or fewer runs raise the floor; with it above the change, the change is 'within noise'."""
    quiet = compare(drifting(1, 5, 0.02), drifting(50, 3, 0.02)).changes[0].floor
    noisy = compare(drifting(1, 5, 0.10), drifting(50, 3, 0.10)).changes[0].floor
    fewer = compare(drifting(1, 2, 0.10), drifting(50, 1, 0.10)).changes[0].floor
    assert quiet < 10 < noisy < fewer
    slowed = compare(drifting(1, 3, 0.10), drifting(50, 1, 0.10, slowdown=1.15))
    assert slowed.exit_code == 0 and WITHIN_NOISE in {c.verdict for c in slowed.changes}
    assert "run noise" in markdown(slowed) and "(3/1 runs)" in markdown(slowed)


def test_a_failure_in_any_new_run_fails_the_cell_and_failed_base_runs_are_left_out():
    base, new = pair(0.01, 0.01)
    failed = replace(new[0], status="failed", reason="worker killed by SIGSEGV", metrics={}, samples={})
    (change,) = compare([base, base], [new, [failed]]).changes
    assert change.verdict == FAILED_IN_NEW
    base_failed = replace(base[0], status="failed", metrics={}, samples={})
    (change,) = compare([[base_failed], base], [new]).changes
    assert change.verdict == WITHIN and change.runs_base == 1
