"""Fine-tuning recipes: hyper-parameters per task and the sparse-transfer recipe, read from hparams.toml.

A leaf module: the core that keys and caches fine-tuned checkpoints (bench/glue/finetune.py) and the trainer that
runs them (adapters/build/torch_finetune.py) both read it, and neither imports the other. Every field is part of
the checkpoint's cache key.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from bench.config import from_table
from bench.errors import UsageError
from bench.glue.tasks import Task

HPARAMS_FILE = Path(__file__).with_name("hparams.toml")
HPARAMS_FILE_ENV = "BENCH_HPARAMS"  # another recipe file for a whole run (it reaches trainers and Ray nodes too)


@dataclass(frozen=True)
class HParams:
    """Fine-tuning hyper-parameters (one task); all part of the cache key."""

    learning_rate: float = 5e-5
    batch_size: int = 32
    epochs: int = 3
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_length: int = 128


SPARSE_METHODS = ("gmp", "transfer")


@dataclass(frozen=True)
class SparseRecipe:
    """How a task's pruned model is trained. `gmp`: gradual magnitude pruning to `target` while fine-tuning (cubic
    schedule from `one_shot`, optionally rewinding the learning rate at every pruning step, as oBERT does);
    `transfer`: seed 004's sparse transfer, fine-tuning the pre-sparsified backbone (bench/presparse.py) with its
    mask fixed. Both distil from the dense fine-tuned model (`distill_alpha`: the teacher's share of the loss,
    oBERT's hardness; 1.0 is pure logit distillation)."""

    target: float = 0.8
    method: str = "gmp"
    init: str = "finetuned"  # gmp only: start from the dense fine-tuned model or the base weights
    learning_rate: float = 5e-5
    epochs: int = 4
    prune_start: float = 0.0
    prune_end: float = 0.6
    prune_updates: int = 30
    one_shot: float = 0.0  # gmp: sparsity applied at once where pruning starts (oBERT: 30-70%)
    rewind: bool = False  # gmp: the learning rate restarts at every pruning step, decaying to 0 before the next
    distill_alpha: float = 0.5
    temperature: float = 2.0


@dataclass(frozen=True)
class SparseSelection:
    """[sparse.select]: the candidate recipes a task's pruned model is chosen from, on a hold-out of TRAIN (never
    dev). One candidate: no selection, it trains on the whole train split."""

    candidates: tuple[str, ...] = ("gmp",)
    holdout: float = 0.1  # share of train held out (cut once, seeded); candidates train on the rest
    seed: int = 0


def recipe_file(path: Path | None = None) -> Path:
    """The recipe file: `path`, else $BENCH_HPARAMS, else bench/glue/hparams.toml."""
    return Path(path or os.environ.get(HPARAMS_FILE_ENV) or HPARAMS_FILE)


def load_recipes(path: Path | None = None) -> dict:
    path = recipe_file(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: unreadable hyper-parameter file ({exc})") from exc


def hparams_for(task: Task, path: Path | None = None) -> HParams:
    """[default] overlaid with [tasks.<task>] of the recipe file."""
    path = recipe_file(path)
    doc = load_recipes(path)
    values = dict(doc.get("default", {})) | dict(doc.get("tasks", {}).get(task.name, {}))
    return from_table(HParams, values, f"{path} [tasks.{task.name}]")


_SPARSE_TABLES = ("tasks", "select", "candidates")


def sparse_selection(path: Path | None = None) -> SparseSelection:
    path = recipe_file(path)
    doc = load_recipes(path).get("sparse", {})
    sel = from_table(SparseSelection, doc.get("select", {}), f"{path} [sparse.select]")
    known = ("gmp", *doc.get("candidates", {}))
    unknown = [c for c in sel.candidates if c not in known]
    if unknown:
        raise UsageError(f"{path} [sparse.select]: unknown candidate(s) {unknown}; defined: {list(known)}")
    if len(sel.candidates) > 1 and not 0 < sel.holdout < 0.5:
        raise UsageError(f"{path} [sparse.select]: holdout must be in (0, 0.5) to choose between candidates")
    return sel


def sparse_recipe_for(task: Task, target: float, path: Path | None = None, candidate: str = "gmp") -> SparseRecipe:
    """[sparse] with [sparse.tasks.<task>] over it (candidate "gmp"), or [sparse] with [sparse.candidates.<name>]
    and its own [sparse.candidates.<name>.tasks.<task>] over it."""
    path = recipe_file(path)
    doc = load_recipes(path).get("sparse", {})
    values = {k: v for k, v in doc.items() if k not in _SPARSE_TABLES}
    where = f"{path} [sparse.tasks.{task.name}]"
    if candidate == "gmp":
        values |= dict(doc.get("tasks", {}).get(task.name, {}))
    else:
        table = doc.get("candidates", {}).get(candidate)
        if table is None:
            raise UsageError(f"{path}: no [sparse.candidates.{candidate}]; defined: "
                             f"{', '.join(['gmp', *doc.get('candidates', {})])}")
        values |= {k: v for k, v in table.items() if k != "tasks"} | dict(table.get("tasks", {}).get(task.name, {}))
        where = f"{path} [sparse.candidates.{candidate}]"
    recipe = from_table(SparseRecipe, values, where)
    if recipe.method not in SPARSE_METHODS:
        raise UsageError(f"{where}: method must be one of {', '.join(SPARSE_METHODS)}, got {recipe.method!r}")
    if recipe.init not in ("finetuned", "pretrained"):
        raise UsageError(f"{where}: init must be 'finetuned' or 'pretrained', got {recipe.init!r}")
    if not 0 <= recipe.prune_start < recipe.prune_end <= 1:
        raise UsageError(f"{where}: needs 0 <= prune_start < prune_end <= 1")
    if not 0 <= recipe.one_shot < 1 or not 0 <= recipe.distill_alpha <= 1:
        raise UsageError(f"{where}: one_shot must be in [0, 1) and distill_alpha in [0, 1]")
    return replace(recipe, target=float(target))


def sparsity_at(step: int, total: int, recipe: SparseRecipe) -> float:
    """A gmp recipe's sparsity at `step`: cubic from `one_shot` (applied where pruning starts) to the target."""
    if step < round(recipe.prune_start * total):
        return 0.0
    first = recipe.one_shot
    return first + (recipe.target - first) * cubic_sparsity(step, total, 1.0, recipe.prune_start, recipe.prune_end,
                                                            recipe.prune_updates)


def lr_factor(step: int, total: int, warmup: int, recipe: SparseRecipe | None = None) -> float:
    """The learning-rate multiplier at `step`: linear warm-up, then linear decay to 0 at the end; with a rewinding
    recipe, the pruning phase instead restarts at 1 at every sparsity update and decays to 0 before the next, and
    the recovery phase after it decays from 1 to 0 (oBERT's learning-rate rewinding)."""
    if step < warmup:
        return step / max(1, warmup)
    if recipe is None or not recipe.rewind:
        return max(0.0, (total - step) / max(1, total - warmup))
    first = round(recipe.prune_start * total)
    last = max(round(recipe.prune_end * total), first + 1)
    if first <= step < last:
        span = (last - first) / max(1, recipe.prune_updates)
        into = (step - first) - int((step - first) / span) * span
        return max(0.0, 1.0 - into / span)
    if step >= last:
        return max(0.0, (total - step) / max(1, total - last))
    return 1.0  # before pruning starts


def cubic_sparsity(step: int, total: int, target: float, start: float, end: float, updates: int) -> float:
    """Zhu & Gupta's schedule s_t = s_f (1 - (1 - p)^3), p the progress through [start, end] of the steps,
    held constant between `updates` evenly spaced update points; s_f from `end` on."""
    first, last = round(start * total), max(round(end * total), round(start * total) + 1)
    if step < first:
        return 0.0
    if step >= last:
        return target
    span = (last - first) / max(1, updates)
    progress = (int((step - first) / span) * span) / (last - first)
    return target * (1.0 - (1.0 - progress) ** 3)


