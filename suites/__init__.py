"""Measurement suites: framework-free code that takes a loaded adapter and a cell and returns numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

SUITE_MODULES = {"params": "suites.params", "latency": "suites.latency", "throughput": "suites.throughput",
                 "parity": "suites.parity", "glue": "suites.glue"}


@dataclass
class SuiteResult:
    metrics: dict
    samples: dict[str, list[float]] = field(default_factory=dict)  # raw samples in seconds


def get_suite(name: str):
    """The suite module; each has `run(adapter, cell, settings) -> SuiteResult`."""
    import importlib

    return importlib.import_module(SUITE_MODULES[name])
