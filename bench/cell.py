"""The cell: one measurement, the unit of a plan, of a record and of failure."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.keys import digest


@dataclass(frozen=True)
class Cell:
    """One measurement. `batch`/`seq_len` are 0 for suites that have no shape (params)."""

    backbone: str
    runtime: str
    precision: str
    sparsity: str
    device: str
    suite: str
    batch: int = 0
    seq_len: int = 0
    task: str | None = None

    @property
    def label(self) -> str:
        shape = f" b{self.batch} s{self.seq_len}" if self.batch else ""
        task = f" {self.task}" if self.task else ""
        return (f"{self.backbone} {self.runtime} {self.precision} {self.sparsity} {self.device} "
                f"{self.suite}{task}{shape}")

    def key(self) -> str:
        return digest(asdict(self), 16)
