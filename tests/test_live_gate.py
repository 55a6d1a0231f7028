"""The live A/B gate: two sides measured in the same rounds, judged on paired per-round ratios; bad sides are one
line and exit 2, a real slowdown is a regression (exit 1), the same code twice is not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.cell import Cell
from bench.cli import main
from bench.errors import UsageError
from bench.gate.change import IMPROVED, NOT_SIGNIFICANT, REGRESSION, WITHIN
from bench.gate.live import FAILED, judge, parse_side, verdict_of
from bench.gate.rules import Rules
from tests.test_rounds import steady  # noqa: F401  (fixture)

CELL = Cell("m", "torch", "fp32", "dense", "cpu", "latency", 1, 128)


def rounds(factor: float, seed: int, n: int = 12) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    drift = np.exp(rng.normal(0, 0.2, n))  # the machine's state moves between rounds, both sides alike
    base = {r: 0.02 * d * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
    new = {r: factor * 0.02 * d * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
    return base, new


def one(side: dict) -> list[dict]:
    return [side]


def processes(factor: float, offset_sd: float, seed: int, n: int = 4, rounds_: int = 20) -> tuple[list, list]:
    """n worker processes a side, every one measured in every round: each carries its own offset (log sd
    offset_sd) through all its rounds, beneath the rounds' shared drift."""
    rng = np.random.default_rng(seed)
    drift = np.exp(rng.normal(0, 0.2, rounds_))

    def side(f):
        return [{r: f * 0.02 * d * o * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
                for o in np.exp(rng.normal(0, offset_sd, n))]
    return side(1.0), side(factor)


def test_with_one_process_a_side_a_process_offset_is_taken_for_a_change_and_with_several_it_is_not():
    alarms_one = alarms_many = 0
    for s in range(20):
        base, new = processes(1.0, offset_sd=0.04, seed=s)
        alarms_one += judge(CELL, "latency", base[:1], new[:1], Rules()).verdict == REGRESSION
        alarms_many += judge(CELL, "latency", base, new, Rules()).verdict == REGRESSION
    assert alarms_one >= 5 and alarms_many <= 1


def test_several_processes_a_side_still_catch_a_real_slowdown_beyond_their_offsets():
    caught = [judge(CELL, "latency", *processes(1.15, offset_sd=0.01, seed=s), Rules()) for s in range(10)]
    assert all(c.verdict == REGRESSION and c.processes == 4 and c.rounds == 20 for c in caught)


def test_the_process_test_is_scipys_two_sample_t_test_on_the_processes_mean_log_times():
    from scipy.stats import ttest_ind

    from bench.stats import process_ratio

    base, new = processes(1.05, offset_sd=0.02, seed=1, n=3)
    interval, p = process_ratio(new, base, confidence=0.99)
    means = [np.array([np.log(list(d.values())).mean() for d in side]) for side in (new, base)]
    assert p == pytest.approx(ttest_ind(*means).pvalue)
    assert interval.ratio == pytest.approx(np.exp(means[0].mean() - means[1].mean()))
    assert interval.low < interval.ratio < interval.high and interval.rounds == 20


def test_the_process_test_uses_only_rounds_every_process_completed():
    from bench.stats import process_ratio

    base, new = processes(1.0, offset_sd=0.0, seed=2, n=2)
    del new[1][19], base[0][0]
    assert process_ratio(new, base)[0].rounds == 18
    assert process_ratio(new[:1], base) is None


@pytest.mark.parametrize(("factor", "verdict"), [(1.10, REGRESSION), (0.90, IMPROVED), (1.02, WITHIN)])
def test_a_change_beyond_its_threshold_and_significant_on_paired_rounds_gets_its_verdict(factor, verdict):
    base, new = rounds(factor, seed=3)
    change = judge(CELL, "latency", [base], [new], Rules())
    assert change.verdict == verdict and change.low <= change.ratio <= change.high
    assert abs(change.change_pct - 100 * (factor - 1)) < 1.5


def test_a_slowdown_of_the_thresholds_size_is_a_regression_whether_it_measures_just_above_or_below_it():
    changes = [judge(CELL, "latency", *map(one, rounds(1.05, seed=s, n=20)), Rules()) for s in range(20)]
    assert min(c.change_pct for c in changes) < 5 < max(c.change_pct for c in changes)  # a point rule: a coin flip
    assert all(c.verdict == REGRESSION for c in changes)


@pytest.mark.parametrize(("change", "low", "high", "p", "verdict"), [
    (4.6, 2.1, 7.2, 0.001, REGRESSION),  # shows a slowdown, cannot rule out 5%
    (2.0, 1.0, 3.0, 0.001, WITHIN),  # a real slowdown, shown smaller than 5%
    (6.0, -2.0, 14.0, 0.2, NOT_SIGNIFICANT),  # beyond 5% but the rounds cannot tell
    (1.0, -3.0, 5.5, 0.5, WITHIN),
    (-4.6, -7.2, -2.1, 0.001, IMPROVED),
])
def test_the_live_rule_needs_significance_and_an_interval_that_reaches_the_threshold(change, low, high, p, verdict):
    assert verdict_of(change, low, high, p, threshold=5.0, alpha=0.01) == verdict


def test_a_real_slowdown_the_rounds_show_to_be_smaller_than_the_threshold_passes():
    base, new = rounds(1.02, seed=6, n=40)
    change = judge(CELL, "latency", [base], [new], Rules())
    assert change.p < 0.01 and 100 * (change.high - 1) < 5 and change.verdict == WITHIN


def test_a_change_the_rounds_cannot_resolve_is_not_significant():
    base, new = rounds(1.10, seed=4, n=3)
    noisy = {r: v * f for (r, v), f in zip(new.items(), (0.8, 1.5, 1.1), strict=True)}
    assert judge(CELL, "latency", [base], [noisy], Rules()).verdict == NOT_SIGNIFICANT


def test_a_side_without_results_fails_the_cell():
    assert judge(CELL, "latency", None, [{0: 1.0}], Rules(), "died").verdict == FAILED


@pytest.mark.parametrize(("text", "message"), [
    ("speed=fast", "expected KEY=VALUE with KEY one of code, python, backbone"),
    ("python=/no/such/python", "not a file"),
    ("code=/", "not a checkout of this project"),
])
def test_a_side_that_cannot_be_built_is_one_line(text, message):
    with pytest.raises(UsageError, match=message):
        parse_side("base", text)


def live_preset(tmp_path, model):
    preset = tmp_path / "live.toml"
    preset.write_text(f"""[matrix]
backbones = ["{model}"]
runtimes = ["steady"]
precisions = ["fp32"]
suites = ["latency"]
[latency]
seq_lens = [8]
warmup_iters = 1
warmup_s = 0.0
min_iters = 24
min_time_s = 0.0
[run]
threads = 1
""")
    return preset


def test_live_gate_catches_a_real_slowdown_and_passes_the_same_model_twice(steady, tmp_path, capsys):  # noqa: F811
    slower = tmp_path / "slower"
    slower.mkdir()
    for f in steady.iterdir():
        (slower / f.name).write_bytes(f.read_bytes())
    config = json.loads((steady / "config.json").read_text())
    (steady / "config.json").write_text(json.dumps(config | {"steady_ms": 3.0}))
    # 50% slower per forward: far beyond the 5% threshold however much of a cell's time the harness's own work
    # takes, so at 10 rounds the paired test flags it on a noisy 2-core CI machine too (20% at 8 rounds missed
    # about 1 run in 8 there)
    (slower / "config.json").write_text(json.dumps(config | {"steady_ms": 4.5}))
    preset = live_preset(tmp_path, steady)
    code = main(["live", "--base", f"backbone={steady}", "--new", f"backbone={slower}", "--preset", str(preset),
                 "--rounds", "10", "--processes", "2", "--out", str(tmp_path / "ab")])
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("REGRESSION") and f"| {REGRESSION} |" in out and "2 worker processes" in out
    for side in ("base", "new"):
        records = [json.loads(line) for line in (tmp_path / "ab" / side / "records.jsonl").read_text().splitlines()]
        assert sorted(r["runtime"]["live_process"] for r in records) == [0, 1]
    code = main(["live", "--base", f"backbone={steady}", "--new", f"backbone={steady}", "--preset", str(preset),
                 "--rounds", "8", "--processes", "1", "--out", str(tmp_path / "aa")])
    assert code == 0 and capsys.readouterr().out.startswith("no regression")


@pytest.mark.parametrize(("args", "message"), [(["--processes", "0"], "--processes must be >= 1"),
                                               (["--rounds", "1"], "--rounds must be >= 2")])
def test_impossible_live_settings_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    code = main(["live", "--base", "backbone=m", "--new", "backbone=m", *args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
