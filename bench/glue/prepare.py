"""The artifact each glue cell runs: the backbone fine-tuned on the cell's task (sparse-transfer checkpoint for
pruned80/pruned90), or the reason the cell is skipped. Called by the runner before any cell runs.

Glue cells never run the one-shot pruned twins of bench/pruning.py: a pruned model's accuracy is only meaningful
after pruning during fine-tuning (sparse transfer), which is what `pruned80`/`pruned90` mean for a glue cell.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import exports
from bench.agreement import Agreement
from bench.artifacts import Artifact, ensure
from bench.catalogue import get_backbone
from bench.errors import CellError, CellSkipped
from bench.glue import finetune
from bench.glue.tasks import get_task
from bench.plan import Cell
from bench.pruning import sparsity_of
from bench.runtimes import get_runtime


@dataclass(frozen=True)
class Prepared:
    """A glue cell's artifact; `reason` set: the cell is recorded with `status` and that reason, unrun."""

    artifact: Artifact
    reason: str | None = None
    status: str = "skipped"


def prepare(cells: list[Cell], seed: int, threads: int, train: bool = True,
            criterion: Agreement | None = None) -> dict[Cell, Prepared]:
    """Fine-tuned artifacts for every glue cell, trained once each (cached by recipe hash); with `train` off,
    only cached ones (the others are skipped with the reason)."""
    out: dict[Cell, Prepared] = {}
    done: dict[tuple[str, str, str], Prepared] = {}
    for cell in cells:
        if cell.suite != "glue":
            continue
        key = (cell.backbone, cell.task or "", cell.sparsity)
        if key not in done:
            done[key] = _artifact(cell, seed, threads, train)
        prepared = done[key]
        if prepared.reason is None:
            prepared = _forms_ready(cell, prepared, criterion or Agreement())
        out[cell] = prepared
    return out


def _artifact(cell: Cell, seed: int, threads: int, train: bool) -> Prepared:
    base = ensure(get_backbone(cell.backbone), seed)
    if not cell.task:
        return Prepared(base, "glue cell without a task", "failed")
    task = get_task(cell.task)
    why = finetune.glue_unavailable(base, task)
    if why:
        return Prepared(base, why)
    level = sparsity_of(cell.sparsity)
    try:
        if level:
            return Prepared(finetune.sparse_transfer(base, task, level, seed, threads, build=train))
        return Prepared(finetune.finetuned(base, task, seed, threads, build=train))
    except CellSkipped as exc:
        return Prepared(base, str(exc))
    except CellError as exc:
        return Prepared(base, str(exc), "failed")


def _forms_ready(cell: Cell, prepared: Prepared, criterion: Agreement) -> Prepared:
    """A runtime that runs an exported file (ONNX) needs it cached or buildable here, intact and agreeing with
    torch; otherwise the cell fails with the reason instead of stopping the whole run."""
    form = get_runtime(cell.runtime).form(cell.precision)
    why = exports.resolve(prepared.artifact, form, criterion) if form else None
    if why:
        return Prepared(prepared.artifact, f"{cell.task} checkpoint: {why}", "failed")
    return prepared
