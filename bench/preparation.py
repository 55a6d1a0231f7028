"""Before any cell runs: the artifact of every (backbone, sparsity) and the derived files (ONNX exports, quantized
graphs, torch reference outputs) its cells read, each built once or found in the cache.

Nothing here stops a run: a file that cannot be built, is corrupt and cannot be rebuilt here, or fails its
agreement check becomes the reason of exactly the cells that need it (`Prepared.failed`); every other cell runs.
The torch environment builds for every environment (`bench prepare`), the others reuse the cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import exports
from bench.agreement import Agreement
from bench.artifacts import Artifact, artifact_for
from bench.catalogue import get_backbone
from bench.cell import Cell
from bench.environment import has_cuda_gpu
from bench.errors import CellError, CellSkipped, UsageError
from bench.pruning import pruned_twin, sparsity_of
from bench.runtimes import get_runtime
from suites import get_suite


@dataclass
class Prepared:
    artifacts: dict[tuple[str, str], Artifact] = field(default_factory=dict)  # (backbone, sparsity) -> artifact
    failed: dict[tuple[str, str], str] = field(default_factory=dict)  # (backbone, sparsity) -> why it has none
    forms: dict[tuple[str, str], str | None] = field(default_factory=dict)  # (content hash, form) -> None or why

    def reason(self, cell: Cell, artifact: Artifact | None = None) -> str | None:
        """Why `cell` cannot run (its artifact or a file it reads failed), or None."""
        if artifact is None:
            if (cell.backbone, cell.sparsity) in self.failed:
                return self.failed[cell.backbone, cell.sparsity]
            artifact = self.artifacts[cell.backbone, cell.sparsity]
        for form in needed_forms(cell):
            why = self.forms.get((artifact.content_hash, form))
            if why:
                return why
        return None


def needed_forms(cell: Cell) -> list[str]:
    """Derived files a cell reads: its runtime's model file for the precision, and what its suite reads."""
    form = get_runtime(cell.runtime).form(cell.precision)
    return ([form] if form else []) + list(get_suite(cell.suite).reads)


def plan_artifact(cell: Cell) -> bool:
    """Whether the cell runs the plan's artifact of its backbone and sparsity (not one its suite makes)."""
    return not get_suite(cell.suite).own_artifacts


def sparse_artifact(base: Artifact, sparsity: str, pruning: str = "magnitude", threads: int = 1,
                    build: bool = True) -> Artifact:
    """The artifact a cell on sparsity axis value `sparsity` runs: `base` itself (dense), its magnitude-pruned
    twin, or (pruning "upstream", pretrained backbones) its pre-sparsified backbone, trained on first use."""
    target = sparsity_of(sparsity)
    if pruning == "upstream" and target and base.pretrained:
        from bench.presparse import presparsified

        return presparsified(base, target, threads, build)
    return pruned_twin(base, target)


def prepare_artifacts(cells: list[Cell], plan, threads: int = 1) -> Prepared:
    """Dense artifacts built or read from the cache (corrupt copies rebuilt), pruned ones derived from them per
    the plan's [run] pruning (twins: numpy only, any environment; upstream: trained once in the torch environment
    unless training is off). Cells of suites with artifacts of their own (glue: fine-tuned) are left out."""
    out = Prepared()
    build = plan.settings_of("glue").train
    for backbone, sparsity in dict.fromkeys((c.backbone, c.sparsity) for c in cells if plan_artifact(c)):
        try:
            base = artifact_for(get_backbone(backbone), plan.seed)
            out.artifacts[backbone, sparsity] = sparse_artifact(base, sparsity, plan.pruning, threads, build)
        except (UsageError, CellError, CellSkipped, OSError) as exc:
            out.failed[backbone, sparsity] = f"artifact {backbone} {sparsity}: {exc}"
    return out


def resolve_forms(prepared: Prepared, cells: list[Cell], criterion: Agreement,
                  artifact_of=None, log=None) -> Prepared:
    """Make every derived file the cells read ready, or note why not (see `Prepared.forms`). `artifact_of`
    maps a cell to its artifact when it is not the plan's (glue cells' fine-tuned checkpoints)."""
    gpu = has_cuda_gpu()
    for cell in cells:
        if cell.device == "cuda" and not gpu:
            continue  # skipped without running: needs no files
        artifact = artifact_of(cell) if artifact_of else prepared.artifacts.get((cell.backbone, cell.sparsity))
        if artifact is None:
            continue
        for form in needed_forms(cell):
            key = (artifact.content_hash, form)
            if key not in prepared.forms:
                why = exports.resolve(artifact, form, criterion)
                prepared.forms[key] = why
                if log:
                    log(f"{artifact.backbone} {artifact.sparsity:g} {form}: "
                        + (f"FAILED: {why}" if why else str(exports.path_of(artifact, form))))
    return prepared


def prebuild(plan, log=print) -> tuple[int, int]:
    """Every artifact and derived file the plan's cells read, for every runtime of the plan whichever environment
    will run it: the torch environment runs this first (`bench prepare`, noxfile), so DeepSparse's environment
    finds e.g. the pruned80 exports that no torch or ONNX Runtime cell asked for. Returns (ready, failed)."""
    from bench.local import default_threads

    cells = [c for c in plan.cells() if plan_artifact(c)]  # the others' artifacts are made by their suite's run
    prepared = prepare_artifacts(cells, plan, plan.threads or default_threads())
    for (backbone, sparsity), why in prepared.failed.items():
        log(f"{backbone} {sparsity}: FAILED: {why}")
    resolve_forms(prepared, cells, plan.criterion, log=log)
    failed = len(prepared.failed) + sum(1 for why in prepared.forms.values() if why)
    return len(prepared.artifacts) + sum(1 for why in prepared.forms.values() if not why), failed
