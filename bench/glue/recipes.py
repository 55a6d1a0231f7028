"""Fine-tuning recipes: hyper-parameters per task and the sparse-transfer recipe, read from hparams.toml.

A leaf module: the core that keys and caches fine-tuned checkpoints (bench/glue/finetune.py) and the trainer that
runs them (adapters/build/torch_finetune.py) both read it, and neither imports the other. Every field is part of
the checkpoint's cache key.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from bench.config import from_table
from bench.errors import UsageError
from bench.glue.tasks import Task

HPARAMS_FILE = Path(__file__).with_name("hparams.toml")


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


@dataclass(frozen=True)
class SparseRecipe:
    """Gradual magnitude pruning during fine-tuning to `target` (cubic schedule), with optional distillation."""

    target: float = 0.8
    init: str = "finetuned"
    learning_rate: float = 5e-5
    epochs: int = 4
    prune_start: float = 0.0
    prune_end: float = 0.6
    prune_updates: int = 30
    distill_alpha: float = 0.5
    temperature: float = 2.0


def load_recipes(path: Path = HPARAMS_FILE) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: unreadable hyper-parameter file ({exc})") from exc


def hparams_for(task: Task, path: Path = HPARAMS_FILE) -> HParams:
    """[default] overlaid with [tasks.<task>] of the preset file."""
    doc = load_recipes(path)
    values = dict(doc.get("default", {})) | dict(doc.get("tasks", {}).get(task.name, {}))
    return from_table(HParams, values, f"{path} [tasks.{task.name}]")


def sparse_recipe_for(task: Task, target: float, path: Path = HPARAMS_FILE) -> SparseRecipe:
    doc = load_recipes(path).get("sparse", {})
    values = {k: v for k, v in doc.items() if k != "tasks"} | dict(doc.get("tasks", {}).get(task.name, {}))
    recipe = from_table(SparseRecipe, values, f"{path} [sparse.tasks.{task.name}]")
    if recipe.init not in ("finetuned", "pretrained"):
        raise UsageError(f"{path}: [sparse] init must be 'finetuned' or 'pretrained', got {recipe.init!r}")
    if not 0 <= recipe.prune_start < recipe.prune_end <= 1:
        raise UsageError(f"{path}: [sparse] needs 0 <= prune_start < prune_end <= 1")
    return replace(recipe, target=float(target))


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


