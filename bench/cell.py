"""The cell: one measurement, the unit of a plan, of a record and of failure."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.keys import digest


@dataclass(frozen=True)
class Cell:
    """One measurement. `batch`/`seq_len` are 0 for suites that have no shape (params). `seed`: the fine-tuning
    seed of a glue cell when the plan asks for several ([glue] seeds); None everywhere else (the plan's seed)."""

    backbone: str
    runtime: str
    precision: str
    sparsity: str
    device: str
    suite: str
    batch: int = 0
    seq_len: int = 0
    task: str | None = None
    seed: int | None = None

    @property
    def label(self) -> str:
        shape = f" b{self.batch} s{self.seq_len}" if self.batch else ""
        task = f" {self.task}" if self.task else ""
        seed = f" seed{self.seed}" if self.seed is not None else ""
        return (f"{self.backbone} {self.runtime} {self.precision} {self.sparsity} {self.device} "
                f"{self.suite}{task}{seed}{shape}")

    def identity(self) -> dict:
        """The fields that name the cell in keys: without `seed` when it is None, so every cell of a one-seed
        plan keeps the key (and run key, and cached evaluation) it had before seeds existed."""
        fields = asdict(self)
        if fields["seed"] is None:
            del fields["seed"]
        return fields

    def key(self) -> str:
        return digest(self.identity(), 16)
