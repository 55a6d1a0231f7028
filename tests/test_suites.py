"""The suite contract: typed settings that survive the trip through records to the worker, cells made by the
suite, and the GLUE evaluation cache keyed on code by module."""

from __future__ import annotations

import json

import pytest

from bench.cell import Cell
from bench.glue import evalcache
from bench.plan import RuntimeScope, plan_from_dict
from suites import NAMES, all_suites, get_suite


def test_every_suite_gets_back_its_typed_settings_from_what_records_carry():
    plan = plan_from_dict({"latency": {"seq_lens": [16, 64]}, "glue": {"batch_size": 8, "seeds": [0, 2]},
                           "parity": {"rel_tol": 1e-3}})
    settings = plan.record_settings(threads=2)
    for suite in all_suites():
        typed = plan.settings_of(suite.name)
        assert suite.settings_from_record(settings.get(suite.name)) == typed
        assert suite.settings_from_record(json.loads(json.dumps(settings.get(suite.name)))) == typed  # as workers
    assert plan.settings_of("latency").seq_lens == (16, 64) and plan.criterion.rel_tol == 1e-3


def test_records_carry_each_suites_settings_and_the_runs():
    settings = plan_from_dict({}).record_settings(threads=3)
    assert set(settings) == {"latency", "throughput", "glue", "parity", "threads", "timeout_s", "seed", "isolate",
                             "rounds", "live_workers", "pruning"}
    assert settings["parity"]["scale"] == "max|ref|" and settings["threads"] == 3


def test_suites_make_their_own_cells_from_their_settings():
    base = Cell("m", "torch", "fp32", "dense", "cpu", "params")
    plan = plan_from_dict({"throughput": {"batches": [2, 4], "seq_len": 32}})
    cells = get_suite("throughput").cells(base, plan.settings_of("throughput"), RuntimeScope(batches=(4,)), ())
    assert [(c.suite, c.batch, c.seq_len) for c in cells] == [("throughput", 4, 32)]
    glue = get_suite("glue").cells(base, plan.settings_of("glue"), RuntimeScope(), ("MRPC", "rte"))
    assert [c.task for c in glue] == ["mrpc", "rte"]


def test_the_registry_names_every_suite_once_and_refuses_others():
    assert [s.name for s in all_suites()] == list(NAMES)
    from bench.errors import UsageError

    with pytest.raises(UsageError, match="unknown suite 'speed'"):
        get_suite("speed")


def test_the_evaluation_cache_hashes_code_by_module_and_fails_loudly_when_one_is_missing(monkeypatch):
    assert evalcache.module_source("suites.glue").startswith(b'"""GLUE accuracy')
    before = evalcache._code_hash("torch")
    monkeypatch.setattr(evalcache, "CODE_MODULES", (*evalcache.CODE_MODULES, "bench.glue.no_such_module"))
    with pytest.raises(evalcache.CodeMissing, match="bench.glue.no_such_module"):
        evalcache._code_hash("torch")
    monkeypatch.setattr(evalcache, "CODE_MODULES", evalcache.CODE_MODULES[:-2])
    assert evalcache._code_hash("torch") != before  # a module less is other code
