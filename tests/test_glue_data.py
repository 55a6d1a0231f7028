"""GLUE data: import from a GLUE-layout copy, parquet cache, and one clear error for every kind of bad input.

Every test works on a tiny copy it writes itself (tests/glue_fixtures.py), never on ../shared/glue.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from bench.cli.data import add_parsers as add_data_parser
from bench.cli.data import cmd_data
from bench.errors import UsageError
from bench.glue import data, download, tasks
from bench.glue.tasks import Download, KnownFile, get_task, parse_tasks
from tests.glue_fixtures import known_table, write_glue

ALL = ["sst2", "cola", "rte", "stsb", "mrpc"]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A cache of this test's own; no $BENCH_GLUE_DIR from the environment."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(data.GLUE_DIR_ENV, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def glue(tmp_path) -> Path:
    return write_glue(tmp_path / "glue")


def _import(glue: Path, names=ALL, verify=True):
    return data.import_dir(glue, parse_tasks(names), known=known_table(glue), verify_checksum=verify)


def _use_fixture_table(monkeypatch, glue: Path, **changes) -> None:
    """Make the fixture's table the known-good one (the real table describes the real GLUE files)."""
    for name, files in known_table(glue).items():
        monkeypatch.setitem(tasks.TASKS, name, replace(tasks.TASKS[name], files=files, **changes.get(name, {})))


def _cache_files(cache: Path) -> list[str]:
    root = cache / "glue"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def test_import_stores_every_split_as_parquet_with_a_manifest(cache, glue):
    stored = _import(glue)
    assert set(stored) == set(ALL)
    for name in ALL:
        m = data.manifest(get_task(name))
        assert set(m["splits"]) == {"train", "dev"} and all(s["verified"] for s in m["splits"].values())
        assert (stored[name] / "train.parquet").is_file() and (stored[name] / "dev.parquet").is_file()
    rte = data.load_split("rte", "dev")
    assert len(rte) == 16 and rte.text_b is not None and set(rte.labels) <= {0, 1}
    assert rte.labels[0] == (0 if "good" in rte.text_a[0] else 1)  # entailment = 0, as in GLUE
    assert data.load_split("sst2", "train").text_b is None
    assert data.load_split("stsb", "dev").labels.dtype.kind == "f"


def test_mrpc_is_assembled_from_its_source_files_like_the_glue_script(cache, glue):
    train, dev = data.assemble_mrpc((glue / "MRPC/msr_paraphrase_train.txt").read_bytes(),
                                    (glue / "MRPC/dev_ids.tsv").read_bytes(), "MRPC")
    assert train.startswith("\ufeffQuality\t".encode()) and b"\r" not in train  # BOM kept, CRLF gone
    assert dev.decode().count("\n") - 1 == 16 and train.decode().count("\n") - 1 == 48
    _import(glue, ["mrpc"])
    assert len(data.load_split("mrpc", "dev")) == 16


def test_mrpc_dev_id_missing_from_the_source_is_an_error(glue):
    ids = glue / "MRPC/dev_ids.tsv"
    ids.write_text(ids.read_text() + "999\t998\n")
    with pytest.raises(UsageError, match=r"dev_ids.tsv: 1 dev id pair\(s\) not in msr_paraphrase_train.txt"):
        data.assemble_mrpc((glue / "MRPC/msr_paraphrase_train.txt").read_bytes(), ids.read_bytes(), str(glue))


def _rewrite(path: Path, edit) -> None:
    lines = path.read_text().split("\n")
    path.write_text("\n".join(edit(lines)))


@pytest.mark.parametrize(("name", "file", "edit", "message"), [
    ("rte", "RTE/train.tsv", lambda ls: [*ls[:-6], ""],
     r"RTE/train.tsv:\d+: ends after 43 data rows, GLUE RTE train has 48"),
    ("rte", "RTE/dev.tsv", lambda ls: [*ls[:5], ls[5][:12], *ls[6:]], r"RTE/dev.tsv:6: 2 tab-separated fields"),
    ("rte", "RTE/train.tsv", lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], r"RTE/train.tsv:2: index '1' where row 0"),
    ("sst2", "SST-2/train.tsv", lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], r"SST-2/train.tsv: sha256 .* not the known"),
    ("rte", "RTE/dev.tsv", lambda ls: ["index\tsentence2\tsentence1\tlabel", *ls[1:]], r"RTE/dev.tsv:1: header"),
    ("cola", "CoLA/train.tsv", lambda ls: [ls[0], "gj04\tmaybe\t\tA sentence .", *ls[2:]],
     r"CoLA/train.tsv:2: label 'maybe' is not one of GLUE CoLA's labels 0, 1"),
    ("rte", "RTE/dev.tsv", lambda ls: [*ls[:3], ls[3].replace("entailment", "contradiction"), *ls[4:]],
     r"RTE/dev.tsv:4: label '(not_)?contradiction' is not one of GLUE RTE's labels"),
    ("stsb", "STS-B/dev.tsv", lambda ls: [*ls[:2], ls[2].rsplit("\t", 1)[0] + "\t7.5", *ls[3:]],
     r"STS-B/dev.tsv:3: score '7.5' is not a number in \[0, 5\]"),
    ("sst2", "SST-2/dev.tsv", lambda ls: [ls[0], ""], r"SST-2/dev.tsv: empty split: no data rows"),
    ("rte", "RTE/train.tsv", lambda ls: [*ls[:10], "", *ls[10:]], r"RTE/train.tsv:11: empty line inside the data"),
])
def test_bad_input_is_one_error_naming_file_and_line_and_writes_nothing(cache, glue, name, file, edit, message):
    known = known_table(glue)  # the good copy's table: the edit below breaks the file against it
    _rewrite(glue / file, edit)
    with pytest.raises(UsageError, match=message):
        data.import_dir(glue, parse_tasks(ALL), known=known)
    assert _cache_files(cache) == []  # all tasks are checked before the first write: nothing half-written


def test_a_wrong_checksum_is_refused_and_no_verify_accepts_a_copy_you_trust(cache, glue):
    known = known_table(glue)
    known["sst2"]["dev"] = KnownFile(16, "0" * 64)
    with pytest.raises(UsageError, match=r"SST-2/dev.tsv: sha256 .* is not the known-good 0000000000000000"):
        data.import_dir(glue, parse_tasks("sst2"), known=known)
    data.import_dir(glue, parse_tasks("sst2"), known=known, verify_checksum=False)
    m = data.manifest(get_task("sst2"))
    assert m["splits"]["dev"]["verified"] is False and m["splits"]["train"]["verified"] is True


def test_a_failed_reimport_keeps_the_good_cached_copy(cache, glue):
    _import(glue, ["rte"])
    before = (cache / "glue/rte/dev.parquet").read_bytes()
    known = known_table(glue)
    _rewrite(glue / "RTE/dev.tsv", lambda ls: [*ls[:-3], ""])
    with pytest.raises(UsageError, match="ends after"):
        data.import_dir(glue, parse_tasks("rte"), known=known)
    assert (cache / "glue/rte/dev.parquet").read_bytes() == before
    assert [p for p in _cache_files(cache) if "tmp" in p or "old" in p] == []


def test_unknown_task_names_say_which_exist():
    with pytest.raises(UsageError, match="unknown GLUE task 'mnli'; choose from: sst2, mrpc, cola, stsb, rte, qnli"):
        parse_tasks("rte,mnli")
    assert [t.name for t in parse_tasks("SST-2, sts-b,rte,rte")] == ["sst2", "stsb", "rte"]


def test_a_missing_split_says_how_to_prepare_it(cache):
    with pytest.raises(data.DataMissing, match=r"bench data glue --tasks mrpc --from DIR"):
        data.load_split("mrpc", "dev")


def test_a_dev_only_task_imports_without_train_and_says_so(cache, tmp_path):
    qnli = tmp_path / "q" / "QNLI"
    qnli.mkdir(parents=True)
    (qnli / "dev.tsv").write_text("index\tquestion\tsentence\tlabel\n0\tWhy ?\tBecause .\tentailment\n")
    data.import_dir(tmp_path / "q", parse_tasks("qnli"), known={"qnli": {"dev": KnownFile(1, "")}})
    assert len(data.load_split("qnli", "dev")) == 1
    with pytest.raises(data.DataMissing, match="no train split here"):
        data.load_split("qnli", "train")


def test_the_runner_default_imports_from_bench_glue_dir(cache, glue, monkeypatch):
    _use_fixture_table(monkeypatch, glue)
    assert data.task_manifest(get_task("rte"), env={}) is None
    assert data.task_manifest(get_task("rte"), env={data.GLUE_DIR_ENV: str(glue)})["splits"]["dev"]["rows"] == 16


def test_cli_data_glue_from_dir(cache, glue, monkeypatch, capsys):
    import argparse

    _use_fixture_table(monkeypatch, glue)
    parser = argparse.ArgumentParser(prog="bench")
    add_data_parser(parser.add_subparsers(dest="command"))
    assert cmd_data(parser.parse_args(["data", "glue", "--tasks", "rte,mrpc", "--from", str(glue)])) == 0
    out = capsys.readouterr().out
    assert "rte: dev 16 rows, train 48 rows" in out and "mrpc: dev 16 rows, train 48 rows" in out
    with pytest.raises(UsageError, match="not a directory"):
        cmd_data(parser.parse_args(["data", "glue", "--tasks", "rte", "--from", str(glue / "nope")]))


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, blob in members.items():
            z.writestr(name, blob)
    return buf.getvalue()


def test_download_checks_the_archive_sha256_before_unpacking(cache, glue, monkeypatch):
    blob = _zip({"RTE/train.tsv": (glue / "RTE/train.tsv").read_bytes(),
                 "RTE/dev.tsv": (glue / "RTE/dev.tsv").read_bytes()})
    served = {"https://example.invalid/RTE.zip": blob}

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(download.urllib.request, "urlopen", lambda url, timeout: Response(served[url]))
    _use_fixture_table(monkeypatch, glue, rte={"download": (Download(
        "https://example.invalid/RTE.zip", "f" * 64, len(blob)),)})
    task = get_task("rte")
    with pytest.raises(UsageError, match=r"RTE.zip: got \d+ bytes with sha256 .* expected"):
        download.download([task])
    assert data.manifest(task) is None
    task = replace(task, download=(Download("https://example.invalid/RTE.zip", hashlib.sha256(blob).hexdigest(),
                                            len(blob)),))
    download.download([task])
    m = data.manifest(task)
    assert m["splits"]["train"]["rows"] == 48 and "archive sha256 verified" in m["origin"]
    assert json.loads((cache / "glue/rte/manifest.json").read_text())["task"] == "rte"
