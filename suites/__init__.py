"""Measurement suites: framework-free code that takes a loaded adapter and a cell and returns numbers.

Each module exposes `SUITE`, an instance of suites.base.Suite; the registry below is the one list of them, in the
order cells of one variant run (params first: it needs no warm-up).
"""

from __future__ import annotations

import importlib

from bench.errors import UsageError

SUITE_MODULES = {"params": "suites.params", "latency": "suites.latency", "throughput": "suites.throughput",
                 "parity": "suites.parity", "glue": "suites.glue"}
NAMES = tuple(SUITE_MODULES)


def get_suite(name: str):
    """The suite object (suites.base.Suite) of `name`."""
    if name not in SUITE_MODULES:
        raise UsageError(f"unknown suite {name!r}; choose from: {', '.join(SUITE_MODULES)}")
    return importlib.import_module(SUITE_MODULES[name]).SUITE


def all_suites() -> list:
    return [get_suite(name) for name in NAMES]
