import itertools

import numpy as np
import pytest

from bench import timing
from bench.stats import summarize
from bench.timing import Budget, measure


def test_summary_matches_numpy_on_known_samples():
    s = summarize([0.001, 0.002, 0.003, 0.004])
    assert s["n"] == 4
    assert s["p50_ms"] == pytest.approx(2.5)
    assert s["mean_ms"] == pytest.approx(2.5)
    assert s["std_ms"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert s["cv"] == pytest.approx(s["std_ms"] / 2.5)
    assert s["min_ms"] == 1 and s["max_ms"] == 4


def test_empty_samples_are_an_error():
    with pytest.raises(ValueError):
        summarize([])


class FakeClock:
    """Each call to the timed function advances time by `step` seconds."""

    def __init__(self, step):
        self.t, self.step, self.calls = 0.0, step, 0

    def __call__(self):
        return self.t

    def fn(self):
        self.calls += 1
        self.t += self.step


@pytest.mark.parametrize("step,min_iters,min_time,expected", [
    (0.01, 5, 1.0, 100),  # time-bound: 1 s of 10 ms calls
    (0.5, 5, 1.0, 5),  # iteration-bound: 5 calls already exceed 1 s
])
def test_runs_until_at_least_n_iterations_and_t_seconds(monkeypatch, step, min_iters, min_time, expected):
    clock = FakeClock(step)
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    samples = measure(clock.fn, Budget(2, 0.0, min_iters, min_time, 100.0))
    assert len(samples) == expected
    assert all(s == pytest.approx(step) for s in samples)
    assert clock.calls == expected + 2  # warm-up calls are not samples


def test_max_time_caps_a_slow_function(monkeypatch):
    clock = FakeClock(10.0)
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    assert len(measure(clock.fn, Budget(0, 0.0, 1000, 1.0, 30.0))) == 3


def test_real_clock_smoke():
    counter = itertools.count()
    samples = measure(lambda: next(counter), Budget(1, 0.0, 10, 0.0, 5.0))
    assert len(samples) == 10 and all(s >= 0 for s in samples)
