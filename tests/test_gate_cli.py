"""`bench compare` / `bench baseline` / `bench export` on files: exit 0 no regression, 1 regression, 2 bad input
(one line on stderr)."""

import json

import pytest

from bench.cli import main
from bench.records import RECORDS_FILE
from bench.synthetic import result_set


def write(directory, records):
    """A result directory as `bench run` leaves it (one JSON line per record)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / RECORDS_FILE, "a", encoding="utf-8") as f:
        f.writelines(r.to_json() + "\n" for r in records)
    return directory


@pytest.fixture
def runs(tmp_path):
    return (write(tmp_path / "base", result_set(seed=1)), write(tmp_path / "same", result_set(seed=2)),
            write(tmp_path / "slow", result_set(seed=3, slowdown=1.10)))


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_0_without_regression_and_1_with_one(capsys, runs, tmp_path):
    base, same, slow = runs
    code, out, _ = cli(capsys, "compare", base, same)
    assert code == 0 and out.startswith("**no regression: 12 metrics in 12 matched cells")
    code, out, _ = cli(capsys, "compare", base, slow, "--markdown", tmp_path / "diff.md")
    assert code == 1 and out.startswith("**REGRESSION") and "| **REGRESSION** |" in out
    assert (tmp_path / "diff.md").read_text() == out


def test_threshold_flags_change_the_verdict(capsys, runs):
    base, _, slow = runs
    assert cli(capsys, "compare", base, slow, "--latency-threshold", "25", "--throughput-threshold", "25")[0] == 0


def test_baseline_is_stored_per_machine_and_compared_against(capsys, runs, tmp_path):
    base, same, slow = runs
    store = tmp_path / "baselines"
    code, out, _ = cli(capsys, "baseline", base, "--baselines", store)
    assert code == 0 and "baseline for machine synthetic-01: 1 run of 12 cells" in out
    assert (store / "synthetic-01" / "run-01" / RECORDS_FILE).is_file()
    assert cli(capsys, "compare", "--baseline", same, "--baselines", store)[0] == 0
    assert cli(capsys, "compare", "--baseline", slow, "--baselines", store)[0] == 1
    # storing again replaces the baseline (the slow run becomes the reference)
    cli(capsys, "baseline", slow, "--baselines", store)
    assert cli(capsys, "compare", "--baseline", slow, "--baselines", store)[0] == 0


def repeated(directory, seeds, drift=0.05, slowdown=1.0):
    """A directory of repeated runs as `nox -s gate` leaves it: run-1/, run-2/, ... each a result directory."""
    for i, seed in enumerate(seeds, start=1):
        write(directory / f"run-{i}", result_set(seed=seed, drift=drift, slowdown=slowdown))
    return directory


def test_repeated_runs_are_judged_against_their_run_to_run_noise(capsys, tmp_path):
    """5% drift between runs: single runs alarm, three runs a side do not (and show the noise), while a
    30% slowdown still fails."""
    base, same = repeated(tmp_path / "base", [1, 2, 3]), repeated(tmp_path / "same", [4, 5, 6])
    assert cli(capsys, "compare", base / "run-1", same / "run-1")[0] == 1
    code, out, _ = cli(capsys, "compare", base, same)
    assert code == 0 and "(3/3 runs)" in out and "run noise" in out
    slow = repeated(tmp_path / "slow", [7, 8, 9], slowdown=1.30)
    assert cli(capsys, "compare", base, slow)[0] == 1


def test_a_rolling_baseline_adds_runs_and_keeps_the_newest(capsys, tmp_path):
    store, machine = tmp_path / "baselines", tmp_path / "baselines" / "synthetic-01"
    code, out, _ = cli(capsys, "baseline", repeated(tmp_path / "first", [1, 2, 3]), "--baselines", store)
    assert code == 0 and "3 runs of 12 cells" in out
    for seed in (4, 5, 6):
        cli(capsys, "baseline", repeated(tmp_path / f"more{seed}", [seed]), "--baselines", store, "--add",
            "--keep", "4")
    assert sorted(p.name for p in machine.iterdir()) == ["run-01", "run-02", "run-03", "run-04"]
    kept = [(machine / f"run-0{i}" / RECORDS_FILE).read_text() for i in (1, 2, 3, 4)]
    assert kept[-1] == (tmp_path / "more6" / "run-1" / RECORDS_FILE).read_text()
    assert kept[0] == (tmp_path / "first" / "run-3" / RECORDS_FILE).read_text()
    code, out, _ = cli(capsys, "compare", "--baseline", repeated(tmp_path / "new", [7, 8]), "--baselines", store)
    assert code == 0 and "(4/2 runs)" in out
    assert not [p for p in store.iterdir() if p.name.startswith(".")]  # no temporary directory left


def test_a_one_file_baseline_of_an_older_version_still_loads_and_is_kept_on_add(capsys, tmp_path, runs):
    base, same, _ = runs
    machine = tmp_path / "baselines" / "synthetic-01"
    machine.mkdir(parents=True)
    (machine / RECORDS_FILE).write_text((base / RECORDS_FILE).read_text())
    assert cli(capsys, "compare", "--baseline", same, "--baselines", tmp_path / "baselines")[0] == 0
    code, out, _ = cli(capsys, "baseline", same, "--baselines", tmp_path / "baselines", "--add")
    assert code == 0 and "2 runs" in out
    assert sorted(p.name for p in machine.iterdir()) == ["run-01", "run-02"]
    assert (machine / "run-01" / RECORDS_FILE).read_text() == (base / RECORDS_FILE).read_text()


def test_export_to_pytest_benchmark_json(capsys, runs, tmp_path):
    base, _, _ = runs
    code, out, _ = cli(capsys, "export", base, "--format", "pytest-benchmark", "--out", tmp_path / "b.json")
    doc = json.loads((tmp_path / "b.json").read_text())
    assert code == 0 and "wrote 12 benchmarks" in out and len(doc["benchmarks"]) == 12


@pytest.mark.parametrize("case,message", [
    ("missing", "no such result file"),
    ("empty", "no records in"),
    ("empty-dir", "no records.jsonl found"),
    ("corrupt", "records.jsonl:2: corrupt record (not JSON"),
    ("future-schema", "records.jsonl:1: invalid record (schema version 99 not supported"),
    ("no-overlap", "no overlapping cells"),
    ("other-machine", "not comparable (pass --allow-cross-machine"),
    ("params-only", "none has a timing or accuracy metric"),
    ("one-path", "compare takes BASE and NEW (got 1 paths)"),
    ("no-baseline", "no baseline for machine synthetic-01"),
    ("bad-alpha", "--alpha must be between 0 and 1"),
    ("bad-threshold", "argument --latency-threshold"),
    ("thresholds-missing", "thresholds file"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, runs, tmp_path, case, message):
    base, same, _ = runs
    new = tmp_path / "new"
    new.mkdir()
    extra = []
    if case == "missing":
        new = tmp_path / "nope.jsonl"
    elif case == "empty":
        (new / RECORDS_FILE).write_text("")
    elif case == "corrupt":
        (new / RECORDS_FILE).write_text((same / RECORDS_FILE).read_text().splitlines()[0] + "\n{oops}\n")
    elif case == "future-schema":
        obj = json.loads((same / RECORDS_FILE).read_text().splitlines()[0]) | {"schema": 99}
        (new / RECORDS_FILE).write_text(json.dumps(obj) + "\n")
    elif case == "no-overlap":
        write(new, [r for r in result_set(seed=2, n_cells=40)[20:]])
    elif case == "other-machine":
        write(new, result_set(seed=2, machine="elsewhere"))
    elif case == "params-only":
        from bench.synthetic import params
        base = write(tmp_path / "pbase", [params(r.cell) for r in result_set(seed=1)[:1]])
        write(new, [params(r.cell) for r in result_set(seed=1)[:1]])
    elif case == "one-path":
        new = None
    elif case == "no-baseline":
        new, extra = same, ["--baseline", "--baselines", tmp_path / "empty-store"]
        base = None
    elif case == "bad-alpha":
        new, extra = same, ["--alpha", "1.5"]
    elif case == "bad-threshold":
        new, extra = same, ["--latency-threshold", "fast"]
    elif case == "thresholds-missing":
        new, extra = same, ["--thresholds", tmp_path / "nope.toml"]
    paths = [p for p in (base, new) if p is not None]
    code, out, err = cli(capsys, "compare", *paths, *extra)
    assert code == 2, out
    assert err.startswith("bench: error: ") and err.count("\n") == 1
    assert message in err


def test_older_minimal_records_still_compare(capsys, tmp_path, runs):
    """A schema-1 line written before optional fields existed (no settings/runtime/run_key/started) loads."""
    base, same, _ = runs
    lines = []
    for line in (same / RECORDS_FILE).read_text().splitlines():
        obj = json.loads(line)
        lines.append(json.dumps({k: obj[k] for k in ("schema", "cell", "status", "metrics", "samples",
                                                    "environment")}))
    (tmp_path / "old.jsonl").write_text("\n".join(lines) + "\n")
    assert cli(capsys, "compare", base, tmp_path / "old.jsonl")[0] == 0


def test_baseline_refuses_records_without_a_machine(capsys, tmp_path):
    from dataclasses import replace

    write(tmp_path / "r", [replace(r, environment={}) for r in result_set(seed=1)])
    code, _, err = cli(capsys, "baseline", tmp_path / "r", "--baselines", tmp_path / "store")
    assert code == 2 and "no machine fingerprint" in err
    code, _, err = cli(capsys, "baseline", tmp_path / "r", "--baselines", tmp_path / "store", "--keep", "0")
    assert code == 2 and "--keep must be at least 1" in err and not (tmp_path / "store").exists()


def test_big_comparisons_print_only_notable_rows_unless_all(capsys, tmp_path):
    base = write(tmp_path / "b", result_set(seed=1, n_cells=48))
    new = write(tmp_path / "n", result_set(seed=2, n_cells=48))
    code, out, _ = cli(capsys, "compare", base, new, "--markdown", tmp_path / "full.md")
    assert code == 0 and "rows within threshold not shown (`--all` shows them)" in out
    full = (tmp_path / "full.md").read_text()

    def rows(md):
        return [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| verdict")]

    assert len(rows(full)) == 48 and len(rows(out)) < 48
    assert cli(capsys, "compare", base, new, "--all")[1] == full
