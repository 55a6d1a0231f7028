"""The suite contract: what a suite measures, with which settings, on which cells, and what it needs first.

A suite owns its typed settings (a frozen dataclass whose defaults are the suite's defaults and whose fields are
the keys of its preset table `[<name>]`), how a matrix entry becomes its cells, which derived files its cells read
besides the runtime's own model file, how its result reads in one line, and the measurement itself. Plan, CLI and
runner only ever talk to this contract, so adding a suite touches `suites/` and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

from bench.cell import Cell
from bench.config import from_table


@dataclass
class SuiteResult:
    metrics: dict
    samples: dict[str, list[float]] = field(default_factory=dict)  # raw samples in seconds


@dataclass(frozen=True)
class NoSettings:
    """For suites without a preset table of their own."""


@dataclass(frozen=True)
class Ready:
    """What a suite's `prepare` decided for one of its cells: the artifact it runs instead of the plan's, or why it
    is recorded unrun (`status` with `reason`), and the key under which its outcome may be reused."""

    artifact: object | None = None  # bench.artifacts.Artifact
    reason: str | None = None
    status: str = "skipped"
    reuse_key: str | None = None


@dataclass(frozen=True)
class Context:
    """What `prepare` may use: the run's seed, thread count, machine, record settings and the plan's fp32
    agreement criterion (bench/agreement.py)."""

    seed: int
    threads: int
    machine: str
    settings: dict
    criterion: object
    train: bool = True  # False: an executor trained beforehand (Suite.trainings); prepare never trains itself
    train_failures: dict = field(default_factory=dict)  # (suite, backbone, task, sparsity, seed) -> why it failed


class Suite:
    """Base of every suite; a suite module exposes one instance as `SUITE`."""

    name: str = ""
    settings_type: type = NoSettings
    reads: tuple[str, ...] = ()  # derived files (bench/exports.py forms) every cell of the suite reads
    own_artifacts: bool = False  # its cells run artifacts its `prepare` makes, not the plan's (glue: fine-tuned)
    timed: bool = False  # measured in time: its cells can be interleaved in rounds (bench/rounds.py)
    forwards: bool = True  # runs the model (the first such cell of a worker records the first inference)

    def settings_from_table(self, table: dict, where: str):
        return from_table(self.settings_type, table, f"{where} [{self.name}]")

    def describe(self, settings) -> dict | None:
        """The settings as records carry them (None: the suite has none)."""
        return None if self.settings_type is NoSettings else asdict(settings)

    def settings_from_record(self, described: dict | None):
        """Back from `describe` to the typed settings (the worker gets them across a process boundary as JSON)."""
        # JSON gave lists where the settings hold tuples
        return self.settings_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in (described or {}).items()})

    def validate(self, settings, matrix) -> None:
        """UsageError for settings that cannot work with the matrix (beyond the table's own types)."""

    def shapes(self, settings, scope) -> list[tuple[int, int]]:
        """(batch, seq_len) of each cell per variant; [(0, 0)] for suites without a shape."""
        return [(0, 0)]

    def seq_lens(self, settings) -> Iterable[int]:
        """Sequence lengths the suite will feed (checked against each backbone's position embeddings)."""
        return ()

    def cells(self, base: Cell, settings, scope, tasks: tuple[str, ...]) -> list[Cell]:
        return [replace(base, suite=self.name, batch=b, seq_len=n) for b, n in self.shapes(settings, scope)]

    def prepare(self, cells: list[Cell], settings, context: Context) -> dict[Cell, Ready]:
        """Before any cell runs: what the suite's cells need beyond the plan's artifacts ({} for nothing)."""
        return {}

    def trainings(self, cells: list[Cell], settings, context: Context) -> list:
        """The trainings (bench.executor.TrainJob) `prepare` would do for these cells, for an executor that spreads
        them over a cluster first ([] for none: nothing to train, or all of it cached)."""
        return []

    def train(self, job, threads: int) -> str | None:
        """Do one of `trainings` here, with `threads`; why it failed, or None."""
        raise NotImplementedError

    def remember(self, key: str | None, fields: dict) -> None:
        """Keep a finished cell's outcome under its reuse key (suites whose outcome is a pure function of what ran)."""

    def recall(self, key: str | None, settings) -> dict | None:
        """The outcome kept under `key`, as record fields, or None."""
        return None

    def summary(self, cell: Cell, metrics: dict, runtime: dict) -> str:
        """The result in one line for the progress display."""
        return ""

    def run(self, adapter, cell: Cell, settings):
        raise NotImplementedError

    # timed suites only: a measurement split in what runs before timing, the budget, and the numbers from samples,
    # so the same suite can be measured in one go (`run`) or in interleaved blocks (bench/rounds.py)
    def budget(self, settings):
        """The cell's timing budget (bench.timing.Budget)."""
        raise NotImplementedError

    def inputs(self, adapter, cell: Cell):
        """(the call to time, extra metrics known before timing), built once per loaded adapter."""
        raise NotImplementedError

    def from_samples(self, cell: Cell, samples: list[float], extra: dict) -> SuiteResult:
        raise NotImplementedError
