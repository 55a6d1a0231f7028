import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.cell import Cell
from bench.errors import UsageError
from bench.records import Record, append, read, read_many

CELL = Cell("minilm-l6-h384", "torch", "fp32", "dense", "cpu", "latency", 1, 128)


def record(**kw) -> Record:
    return Record(cell=CELL, status="ok", metrics={"p50_ms": 1.5}, samples={"latency_s": [0.0015]}, **kw)


def test_round_trip_keeps_cell_metrics_and_raw_samples(tmp_path):
    path = tmp_path / "records.jsonl"
    append(path, record())
    append(path, record(run_key="b"))
    got = read(path)
    assert [r.run_key for r in got] == ["", "b"]
    assert got[0].cell == CELL and got[0].samples["latency_s"] == [0.0015] and got[0].schema == 1


def test_torn_last_line_is_ignored_with_a_warning(tmp_path):
    path = tmp_path / "records.jsonl"
    append(path, record())
    with open(path, "a") as f:
        f.write(record().to_json()[:40])  # a writer killed mid-line
    with pytest.warns(UserWarning, match="torn"):
        assert len(read(path)) == 1
    append(path, record(run_key="after"))  # the next append starts on a fresh line
    with pytest.warns(UserWarning, match="torn"):
        assert [r.run_key for r in read(path)] == ["", "after"]


@pytest.mark.parametrize("line,message", [
    ("not json at all", "corrupt record"),
    ('{"schema": 99, "cell": {}}', "schema version 99 not supported"),
    ('{"schema": 1, "status": "ok"}', "invalid record"),
    ('[1, 2]', "invalid record"),
])
def test_bad_lines_are_errors_naming_file_and_line(tmp_path, line, message):
    path = tmp_path / "records.jsonl"
    append(path, record())
    with open(path, "a") as f:
        f.write(line + "\n")
    with pytest.raises(UsageError, match=f"records.jsonl:2: .*{message}"):
        read(path)


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(UsageError, match="no such result file"):
        read(tmp_path / "nope.jsonl")
    with pytest.raises(UsageError, match="no records.jsonl found"):
        read_many([tmp_path])
    (tmp_path / "records.jsonl").write_text("")
    with pytest.raises(UsageError, match="no records"):
        read_many([tmp_path])


def test_nan_metrics_are_refused_at_write_time(tmp_path):
    with pytest.raises(ValueError):
        append(tmp_path / "r.jsonl", Record(cell=CELL, status="ok", metrics={"x": float("nan")}))


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=300))
def test_reader_never_crashes_on_arbitrary_bytes(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "records.jsonl"
    path.write_bytes(json.dumps(json.loads(record().to_json())).encode() + b"\n" + data)
    try:
        recs = read(path)
    except UsageError:
        return
    assert recs and recs[0].cell == CELL
