"""The vendor-tool comparisons (benchmarks/deepsparse_vs_cli.py, openvino_vs_benchmark_app.py): the harness side
samples worker processes as the tool samples its own processes."""

from __future__ import annotations

import pytest

from bench.errors import UsageError
from benchmarks.deepsparse_vs_cli import HarnessSide


class FakeWorker:
    def __init__(self, log: list, n: int):
        self.log, self.n, self.closed = log, n, False

    def ask(self, command, timeout_s):
        self.log.append((self.n, command["budget"]["warmup_s"]))
        return {"samples": [0.010 + self.n * 1e-3] * 11}

    def close(self):
        self.closed = True


def starter(log: list, workers: list, fail_at: int | None = None):
    def start():
        if len(workers) == fail_at:
            workers.append(None)
            raise UsageError("worker did not load")
        workers.append(FakeWorker(log, len(workers)))
        return workers[-1]
    return start


def test_fresh_harness_side_starts_a_new_worker_for_every_round_and_warms_each_one_up_like_the_tool():
    log, workers = [], []
    side = HarnessSide(starter(log, workers), fresh=True)
    medians = [side.block(1.0)["median_ms"] for _ in range(3)]
    side.close()
    assert [n for n, _ in log] == [0, 1, 2] and all(warm == 2.0 for _, warm in log)
    assert all(w.closed for w in workers)
    assert medians == pytest.approx([10.0, 11.0, 12.0])


def test_live_harness_side_keeps_its_one_worker_and_warms_it_up_once():
    log, workers = [], []
    side = HarnessSide(starter(log, workers), fresh=False)
    for _ in range(3):
        side.block(1.0)
    side.close()
    assert len(workers) == 1 and [warm for _, warm in log] == [2.0, 0.0, 0.0] and workers[0].closed


def test_a_fresh_worker_that_does_not_load_fails_its_round_and_the_next_round_tries_again():
    log, workers = [], []
    side = HarnessSide(starter(log, workers, fail_at=2), fresh=True)
    blocks = [side.block(1.0) for _ in range(4)]
    side.close()
    assert [b["status"] for b in blocks] == ["ok", "ok", "failed", "ok"]
    assert "did not load" in blocks[2]["reason"]
