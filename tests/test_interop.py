"""pytest-benchmark interoperability: exported files hold the stats pytest-benchmark itself would compute from
the raw samples, and `pytest-benchmark compare` reads them (tables, CSV) like its own saved runs."""

import csv
import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from bench.errors import UsageError
from bench.pytest_benchmark import to_pytest_benchmark, write_pytest_benchmark
from bench.stats import pytest_benchmark_stats
from bench.synthetic import params, result_set

HAS_PYTEST_BENCHMARK = importlib.util.find_spec("pytest_benchmark") is not None
needs_pytest_benchmark = pytest.mark.skipif(not HAS_PYTEST_BENCHMARK,
                                            reason="pytest-benchmark not installed (pip install pytest-benchmark)")


@needs_pytest_benchmark
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 31, 100])
def test_stats_equal_pytest_benchmarks_own(n):
    from pytest_benchmark.stats import Stats

    data = np.random.default_rng(n).lognormal(-5, 0.1, n).tolist()
    theirs = Stats()
    for x in data:
        theirs.update(x)
    ours = pytest_benchmark_stats(data)
    for name in Stats.fields:
        assert ours[name] == pytest.approx(getattr(theirs, name)), name
    assert ours["data"] == data and ours["iterations"] == 1


def test_document_has_machine_commit_and_one_benchmark_per_timed_cell():
    recs = [*result_set(seed=1), params(result_set(seed=1)[0].cell)]
    doc = to_pytest_benchmark(recs)
    assert set(doc) >= {"machine_info", "commit_info", "benchmarks", "datetime", "version"}
    assert doc["machine_info"]["cpu"]["brand_raw"] == "Synthetic CPU @ 3.0GHz"
    assert doc["commit_info"]["id"] == "0123456789abcdef"
    assert len(doc["benchmarks"]) == 12  # params cells have no samples
    first = doc["benchmarks"][0]
    assert first["fullname"].startswith(("latency::", "throughput::")) and first["stats"]["rounds"] >= 30
    assert len({b["fullname"] for b in doc["benchmarks"]}) == 12


def test_one_machine_per_file():
    with pytest.raises(UsageError, match="2 machines .*--machine"):
        to_pytest_benchmark(result_set(seed=1) + result_set(seed=1, machine="other"))
    with pytest.raises(UsageError, match="no timed cell"):
        to_pytest_benchmark([params(result_set(seed=1)[0].cell)])


@needs_pytest_benchmark
def test_pytest_benchmark_compare_reads_exported_runs(tmp_path):
    a, b = tmp_path / "0001_base.json", tmp_path / "0002_slow.json"
    write_pytest_benchmark(result_set(seed=1), a)
    write_pytest_benchmark(result_set(seed=2, slowdown=1.10), b)
    out_csv = tmp_path / "cmp"
    proc = subprocess.run([sys.executable, "-m", "pytest_benchmark", "compare", str(a), str(b), "--group-by", "name",
                           "--columns", "min,median,mean,rounds", "--csv", str(out_csv)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Failed to load" not in proc.stdout + proc.stderr
    assert "minilm-l6-h384/torch/fp32/dense/cpu[b1-s32]" in proc.stdout
    rows = list(csv.DictReader(next(tmp_path.glob("cmp*.csv")).read_text().splitlines()))
    assert len(rows) == 24  # 12 cells x 2 runs
