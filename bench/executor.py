"""Executors: where the units of a run execute. The runner (bench/runner.py) decides *what* runs — the units, each a
variant's cells in one worker or one session of interleaved rounds — and an executor decides *where*: `local` runs
them one after the other on this machine; `ray` (adapters/ray_executor.py, loaded by name like a runtime's
adapter) spreads them over the nodes of a Ray cluster, one timed unit per host at a time, and trains on free nodes.

Everything here is framework-free data: what a node is, what a unit is, what a unit needs to run anywhere.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from bench.artifacts import Artifact
from bench.cell import Cell
from bench.errors import UsageError

EXECUTORS = {"local": "bench.local", "ray": "adapters.ray_executor"}  # name -> module with `make(address)`


@dataclass(frozen=True)
class Node:
    """A place units run: this machine, or one node of a cluster; what its records say about it."""

    name: str  # "local", or the Ray node id
    machine: str  # fingerprint (bench.environment.machine_fingerprint): part of every run key it measures
    environment: dict  # describe() + GEMM peaks, as its records carry it
    threads: int  # threads per cell there (the plan's, else the node's cores)
    settings: dict  # the record settings of cells it runs (they name the threads)
    host: str = ""  # the physical host: timed units never overlap on one host (local cluster nodes share one)
    gpu: bool = False
    runtimes: tuple[str, ...] = ()  # runtimes whose environment the node has (installed, or an interpreter given)


@dataclass
class Unit:
    """Work one node does alone. `variants` holds, per variant, its (cell, artifact, record it?) rows: one variant
    in one worker process, or several in one session of interleaved rounds (`session`); `decided`: the record
    fields of a cell decided without running (skipped, failed before it ran, a reused evaluation)."""

    variants: list[list[tuple[Cell, Artifact | None, bool]]]
    session: bool = False
    decided: dict | None = None

    @property
    def cells(self) -> list[Cell]:
        return [row[0] for v in self.variants for row in v]

    @property
    def runtimes(self) -> set[str]:
        return {c.runtime for c in self.cells}

    @property
    def cuda(self) -> bool:
        return any(c.device == "cuda" for c in self.cells)


@dataclass(frozen=True)
class Spec:
    """What every unit needs besides its cells, the same on every node."""

    timeout_s: float
    rounds: int
    seed: int
    budgets: dict = field(default_factory=dict)  # Cell -> bench.timing.Budget (the timed cells' block budgets)
    pythons: dict = field(default_factory=dict)  # extra -> interpreter of another runtime environment


@dataclass(frozen=True)
class TrainJob:
    """One training a suite needs before its cells run (a fine-tune, a sparse transfer); `needs` is the cell of
    the job whose model it reads (a sparse transfer distils from its dense fine-tune), which must finish first."""

    suite: str
    cell: Cell  # a cell that needs it (names backbone, task, sparsity)
    seed: int
    label: str
    needs: Cell | None = None
    cost: float = 1.0  # estimated work (training steps): an executor starts the longest chains first


Event = tuple[int, int, int, dict, Node]  # (unit index, variant index, cell index, record fields, where measured)


def parse_executor(text: str | None) -> tuple[str, str | None]:
    """`local`, `ray` or `ray=ADDRESS` (bench run --executor) → (name, address); unknown names → UsageError."""
    name, _, address = (text or "local").partition("=")
    if name not in EXECUTORS:
        raise UsageError(f"--executor {text}: unknown executor {name!r}; choose from: "
                         + ", ".join(f"{n}[=ADDRESS]" if n == "ray" else n for n in EXECUTORS))
    return name, address or None


def get_executor(text: str | None):
    """The executor `text` names (parse_executor), connected (a cluster that does not answer → UsageError)."""
    name, address = parse_executor(text)
    try:
        module = importlib.import_module(EXECUTORS[name])
    except ImportError as exc:
        raise UsageError(f"--executor {name}: {exc.name or exc} is not installed here (pip install -e '.[{name}]')"
                         ) from None
    return module.make(address)
