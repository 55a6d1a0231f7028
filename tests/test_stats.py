"""bench.stats on its own: the gate's significance tests and noise estimate, and pytest-benchmark's statistics,
checked on hand-made samples whose answers are known."""

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu
from scipy.stats import t as student_t

from bench.stats import (
    RunMedians,
    RunNoise,
    cv_percent,
    mann_whitney_p,
    min_p_value,
    points,
    pooled_run_noise,
    pytest_benchmark_stats,
    quartiles,
)


def constant_runs(*log_medians: float, n: int = 5) -> RunMedians:
    """Runs whose samples are all equal: each run's log median is exact and its sampling variance zero."""
    return RunMedians([np.full(n, math.exp(m)) for m in log_medians])


def test_mann_whitney_p_is_one_for_identical_samples():
    same = np.full(10, 0.01)
    assert mann_whitney_p(same, same.copy()) == 1.0


def test_mann_whitney_p_is_scipys_two_sided_p_on_overlapping_samples():
    base = np.array([1.0, 2.0, 3.5, 4.0, 6.0, 7.5])
    new = np.array([3.0, 5.0, 5.5, 8.0, 9.0, 10.0, 11.0])
    expected = mannwhitneyu(new, base, alternative="two-sided").pvalue
    assert mann_whitney_p(base, new) == pytest.approx(expected)
    assert 0.01 < mann_whitney_p(base, new) < 0.5


def test_mann_whitney_p_does_not_depend_on_which_side_is_new():
    base, new = np.array([1.0, 2.0, 4.0, 7.0]), np.array([3.0, 5.0, 6.0, 8.0, 9.0])
    assert mann_whitney_p(base, new) == pytest.approx(mann_whitney_p(new, base))


def test_min_p_value_for_five_against_five_is_the_exact_two_sided_minimum():
    assert min_p_value(5, 5) == pytest.approx(2 / 252)  # two of the C(10, 5) orderings are complete separation
    separated = mann_whitney_p(np.arange(1.0, 6.0), np.arange(6.0, 11.0))
    assert separated == pytest.approx(min_p_value(5, 5))


def test_min_p_value_is_one_when_a_side_has_no_samples_or_one_each():
    assert min_p_value(0, 5) == 1.0
    assert min_p_value(5, 0) == 1.0
    assert min_p_value(1, 1) == 1.0


def test_min_p_value_is_zero_rather_than_an_error_for_thousands_of_samples():
    assert min_p_value(1500, 1500) == 0.0


def test_cv_percent_is_the_sample_sd_over_the_mean_in_percent():
    assert cv_percent(np.array([1.0, 2.0, 3.0, 4.0])) == pytest.approx(100 * math.sqrt(5 / 3) / 2.5)


def test_cv_percent_is_zero_for_one_sample_or_a_zero_mean():
    assert cv_percent(np.array([0.01])) == 0.0
    assert cv_percent(np.array([0.0, 0.0])) == 0.0


def test_points_are_a_hundred_times_the_stored_fraction():
    assert points(0.885) == pytest.approx(88.5)
    assert points(-0.25) == pytest.approx(-25.0)


def test_run_medians_keep_each_nonempty_runs_log_median_and_every_sample():
    runs = RunMedians([np.array([math.e, 1.0, math.e**2]), np.empty(0), np.array([math.e**3])])
    assert runs.logs == pytest.approx([1.0, 3.0])
    assert sorted(runs.samples) == pytest.approx([1.0, math.e, math.e**2, math.e**3])


def test_runs_of_equal_samples_have_no_sampling_variance():
    assert constant_runs(0.0, 0.5).sampling_var == pytest.approx([0.0, 0.0])


def test_sampling_variance_shrinks_with_the_number_of_samples():
    rng = np.random.default_rng(0)
    small = RunMedians([rng.lognormal(0, 0.1, 20)]).sampling_var[0]
    large = RunMedians([rng.lognormal(0, 0.1, 2000)]).sampling_var[0]
    assert large < small / 20


def test_pooled_run_noise_is_none_without_repeated_runs():
    assert pooled_run_noise([constant_runs(0.0), constant_runs(1.0)], tests=2) is None


def test_pooled_run_noise_is_the_pooled_sd_of_log_run_medians_around_each_cells_mean():
    # squared deviations 0.01 + 0 + 0.01 (first cell) and 0.01 + 0.01 (second): 0.04 over 2 + 1 df
    noise = pooled_run_noise([constant_runs(-0.1, 0.0, 0.1), constant_runs(1.0, 1.2), constant_runs(5.0)], tests=3)
    assert noise.sd == pytest.approx(math.sqrt(0.04 / 3))
    assert (noise.df, noise.tests) == (3, 3)


def test_run_noise_level_is_alpha_bonferroni_corrected_over_the_tests():
    assert RunNoise(sd=0.05, df=10, tests=20).level(0.01) == pytest.approx(0.0005)
    assert RunNoise(sd=0.05, df=10, tests=0).level(0.01) == pytest.approx(0.01)


def test_run_level_p_value_is_a_two_sided_t_test_on_log_run_medians():
    noise = RunNoise(sd=0.1, df=10)
    base, new = constant_runs(0.0, 0.0), constant_runs(0.3, 0.3)  # standard error sqrt(0.01/2 + 0.01/2) = 0.1
    assert noise.p_value(base, new) == pytest.approx(2 * student_t.sf(3.0, 10))
    assert noise.p_value(base, new) == pytest.approx(noise.p_value(new, base))


def test_without_any_noise_equal_runs_are_not_significant_and_different_ones_are():
    noise = RunNoise(sd=0.0, df=4)
    assert noise.p_value(constant_runs(0.0, 0.0), constant_runs(0.0, 0.0)) == 1.0
    assert noise.p_value(constant_runs(0.0, 0.0), constant_runs(0.1, 0.1)) == 0.0


def test_floor_is_the_log_ratio_at_which_the_run_level_test_reaches_its_level():
    noise = RunNoise(sd=0.1, df=10, tests=4)
    base, new = constant_runs(0.0, 0.0), constant_runs(0.0, 0.0)
    floor = noise.floor(base, new, alpha=0.01)
    assert floor == pytest.approx(student_t.ppf(1 - 0.01 / 4 / 2, 10) * 0.1)
    assert noise.p_value(base, constant_runs(floor, floor)) == pytest.approx(noise.level(0.01))


@pytest.mark.parametrize(("data", "expected"), [
    ([3.0], (3.0, 3.0)),
    ([1.0, 2.0, 3.0, 4.0], (1.5, 3.5)),  # even n: medians of the lower and upper halves
    ([1.0, 2.0, 3.0, 4.0, 5.0], (1.75, 4.25)),  # n = 4k + 1
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], (2.25, 5.75)),  # n = 4k + 3
])
def test_quartiles_follow_pytest_benchmarks_definition(data, expected):
    assert quartiles(data) == pytest.approx(expected)


def test_pytest_benchmark_stats_flag_outliers_beyond_one_and_a_half_iqr_and_one_sd():
    s = pytest_benchmark_stats([4.0, 1.0, 100.0, 3.0, 2.0])
    assert (s["min"], s["max"], s["median"], s["rounds"]) == (1.0, 100.0, 3.0, 5)
    assert (s["q1"], s["q3"], s["iqr"]) == pytest.approx((1.75, 28.0, 26.25))  # q3 = 0.75 x 4 + 0.25 x 100
    assert (s["ld15iqr"], s["hd15iqr"]) == (1.0, 4.0)  # 100 is past q3 + 1.5 iqr = 67.375
    assert (s["iqr_outliers"], s["stddev_outliers"], s["outliers"]) == (1, 1, "1;1")
    assert s["mean"] == pytest.approx(22.0) and s["stddev"] == pytest.approx(math.sqrt(7610 / 4))
    assert s["ops"] == pytest.approx(5 / 110) and s["total"] == pytest.approx(110.0)
    assert s["data"] == [4.0, 1.0, 100.0, 3.0, 2.0]  # in measured order, as pytest-benchmark keeps them


def test_a_paired_ratio_over_rounds_cancels_drift_that_moves_both_sides():
    from bench.stats import paired_ratio, round_medians

    rng = np.random.default_rng(1)
    drift = np.exp(np.cumsum(rng.normal(0, 0.15, 12)))  # the machine slows and speeds up by tens of percent
    ref = {r: 10.0 * d * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
    row = {r: 5.0 * d * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
    paired = paired_ratio(ref, row)
    assert paired.rounds == 12 and paired.low < 2.0 < paired.high and paired.high - paired.low < 0.05
    unpaired = np.median(list(ref.values())[:6]) / np.median(list(row.values())[6:])  # measured in other minutes
    assert abs(unpaired - 2.0) > 0.1  # what measuring one after the other would have said
    assert round_medians([1.0, 3.0, 2.0, 10.0], [0, 0, 0, 1]) == {0: 2.0, 1: 10.0}


def test_a_paired_ratio_needs_shared_rounds_and_a_single_round_has_no_interval():
    from bench.stats import paired_ratio

    assert paired_ratio({0: 1.0}, {1: 1.0}) is None
    one = paired_ratio({0: 2.0}, {0: 1.0})
    assert one.ratio == 2.0 and one.high == float("inf")


def test_overlapping_intervals_are_a_tie():
    from bench.stats import RatioInterval

    assert RatioInterval(2.0, 1.8, 2.2, 5).overlaps(RatioInterval(2.1, 2.15, 2.4, 5))
    assert not RatioInterval(2.0, 1.8, 2.1, 5).overlaps(RatioInterval(2.5, 2.2, 2.8, 5))


def test_the_paired_log_test_finds_a_five_percent_slowdown_hidden_in_drift():
    from bench.stats import paired_log_test

    rng = np.random.default_rng(2)
    drift = np.exp(rng.normal(0, 0.2, 20))
    base = {r: d * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
    same = {r: d * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
    slower = {r: 1.05 * d * (1 + rng.normal(0, 0.01)) for r, d in enumerate(drift)}
    assert paired_log_test(base, slower) < 0.001 and paired_log_test(base, same) > 0.01


def test_process_effects_recover_a_per_process_offset_beneath_round_drift():
    from bench.stats import process_effects

    rng = np.random.default_rng(3)
    rounds = rng.normal(0, 0.3, 40)  # shared machine state: cancels, whatever its size
    offsets = rng.normal(0, 0.03, 8)
    logs = offsets[:, None] + rounds[None, :] + rng.normal(0, 0.02, (8, 40))
    fx = process_effects(logs)
    assert fx.p < 1e-6 and 0.015 < fx.between_sd < 0.06 and 0.015 < fx.within_sd < 0.025
    same = process_effects(rounds[None, :] + rng.normal(0, 0.02, (8, 40)))
    assert same.p > 0.01 and same.between_sd < 0.01


def test_process_effects_need_two_processes_and_two_rounds():
    from bench.stats import process_effects

    with pytest.raises(ValueError):
        process_effects(np.zeros((1, 5)))
