"""Fine-tuned and sparse-transfer checkpoints: recipes, cache keys, and building them once (framework-free).

A fine-tuned checkpoint is a canonical artifact (HF layout, model.safetensors, meta.json with `task`,
`num_labels`, `pretrained: true`) keyed by the hash of (base weights' content hash, task, hyper-parameters,
seed, training data hash), so every runtime evaluates the same model and a re-run trains nothing. Training
itself runs in a subprocess (adapters/build/torch_finetune.py, torch environment only): a crash there fails the
cells that needed the model, not the run.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import asdict, replace
from pathlib import Path

from bench.artifacts import TOKENIZER_FILES, Artifact, cache_root, sha256_file
from bench.errors import CellSkipped
from bench.files import atomic_write, building
from bench.glue import data
from bench.glue.recipes import HParams, SparseRecipe, SparseSelection, hparams_for, sparse_recipe_for, sparse_selection
from bench.glue.tasks import Task
from bench.keys import digest
from bench.training import INPROCESS_ENV, TORCH_HINT, remove_stale, run_training, torch_available  # noqa: F401

FINETUNE_VERSION = 1  # bump when training code changes the bytes it produces for the same recipe
def recipe_key(parts: dict) -> str:
    return digest(parts, 16)


def _final_dir(base: Artifact, task: Task, tag: str, key: str) -> Path:
    name = "".join(c if c.isalnum() or c in "_.-" else "_" for c in base.backbone)[-60:]
    return cache_root() / "artifacts" / f"{name}-{task.name}-{tag}-{key}"


def glue_unavailable(base: Artifact, task: Task) -> str | None:
    """Why no fine-tuned model of `base` for `task` can exist (skip reason), or None."""
    if not base.pretrained:
        return (f"{base.backbone} has random weights (pretrained: false): it never gets an accuracy number "
                "(speed and size only)")
    m = data.task_manifest(task)
    if m is None:
        return data.prepare_hint(task)
    if "train" not in m["splits"]:
        return (f"GLUE {task.glue_dir}: no train split on this machine (only {', '.join(sorted(m['splits']))}), "
                f"so no {task.glue_dir}-fine-tuned model can be made; evaluating an un-fine-tuned head would be "
                "meaningless")
    if "dev" not in m["splits"]:
        return data.prepare_hint(task)
    return None


def finetuned(base: Artifact, task: Task, seed: int, threads: int = 1, build: bool = True,
              hparams: HParams | None = None) -> Artifact:
    """The dense fine-tuned artifact of `base` on `task`, trained on first use (CellSkipped if that cannot
    happen in this environment)."""
    hp = hparams or hparams_for(task)
    recipe = {"kind": "finetune", "base": base.content_hash, "task": task.name, "hparams": asdict(hp), "seed": seed,
              "train": data.split_hash(task, "train"), "version": FINETUNE_VERSION}
    final = _final_dir(base, task, "ft", recipe_key(recipe))
    spec = {"mode": "finetune", "base": str(base.path), "task": task.name, "hparams": asdict(hp), "seed": seed}
    return _trained(final, base, task, recipe, spec, threads, build, sparsity=0.0)


def sparse_transfer(base: Artifact, task: Task, target: float, seed: int, threads: int = 1, build: bool = True,
                    hparams: HParams | None = None, recipe: SparseRecipe | None = None,
                    holdout: SparseSelection | None = None) -> Artifact:
    """The pruned fine-tuned artifact of one recipe, distilled from the dense fine-tuned model (trained first when
    missing): gradual magnitude pruning to `target` while fine-tuning, or (method `transfer`) the pre-sparsified
    backbone fine-tuned with its mask fixed. With `holdout`, it trains on train minus the hold-out and its stats
    carry the hold-out score (a selection candidate)."""
    from bench.pruning import DEFAULT_SCOPE

    hp = hparams or hparams_for(task)
    sp = replace(recipe, target=target) if recipe else sparse_recipe_for(task, target)
    teacher = finetuned(base, task, seed, threads, build, hp)
    key = {"kind": "sparse-transfer", "base": base.content_hash, "teacher": teacher.content_hash, "task": task.name,
           "hparams": asdict(hp), "sparse": asdict(sp), "scope": asdict(DEFAULT_SCOPE), "seed": seed,
           "train": data.split_hash(task, "train"), "version": FINETUNE_VERSION}
    spec = {"mode": "sparse", "base": str(base.path), "teacher": str(teacher.path), "task": task.name,
            "hparams": asdict(hp), "sparse": asdict(sp), "scope": asdict(DEFAULT_SCOPE), "seed": seed}
    if sp.method == "transfer":
        from bench.presparse import presparsified

        init = presparsified(base, target, threads, build)
        key["init"], spec["init"] = init.content_hash, str(init.path)
    if holdout is not None:
        key["holdout"] = spec["holdout"] = {"fraction": holdout.holdout, "seed": holdout.seed}
    tag = f"pruned{round(target * 100)}" + ("" if sp.method == "gmp" else f"-{sp.method}") + ("-ho" if holdout else "")
    final = _final_dir(base, task, tag, recipe_key(key))
    return _trained(final, base, task, key, spec, threads, build, sparsity=target, parent=teacher)


def select_sparse(base: Artifact, task: Task, target: float, seed: int, threads: int = 1,
                  build: bool = True, selection: SparseSelection | None = None) -> Artifact:
    """The task's pruned model at `target`: the one recipe of [sparse.select], trained on the whole train split, or
    the best of several candidates, each trained on train minus a seeded hold-out and scored on it (never dev).
    The choice, every candidate's hold-out score and training time go to selections/<chosen>.json. `selection`
    overrides [sparse.select] (benchmarks/sparse_selection.py runs every candidate)."""
    sel = selection or sparse_selection()
    if len(sel.candidates) == 1:
        return sparse_transfer(base, task, target, seed, threads, build,
                               recipe=sparse_recipe_for(task, target, candidate=sel.candidates[0]))
    rows, best = [], None
    for name in sel.candidates:
        art = sparse_transfer(base, task, target, seed, threads, build,
                              recipe=sparse_recipe_for(task, target, candidate=name), holdout=sel)
        stats = json.loads((art.path / "meta.json").read_text())["finetune"]["stats"]
        score = stats["holdout"][task.headline]
        rows.append({"candidate": name, "holdout": stats["holdout"], "train_s": stats["time_s"],
                     "steps": stats["steps"], "artifact": art.path.name})
        if best is None or score > best[0]:
            best = (score, name, art)
    _, name, art = best
    record = {"task": task.name, "target": target, "metric": task.headline, "chosen": name,
              "holdout": asdict(sel), "candidates": rows}
    out = cache_root() / "selections"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / f"{art.path.name}.json", json.dumps(record, indent=1, sort_keys=True))
    return art


def selection_of(art: Artifact) -> dict | None:
    """The selection that chose `art` (select_sparse), or None for a model that was not chosen among candidates."""
    path = cache_root() / "selections" / f"{art.path.name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _trained(final: Path, base: Artifact, task: Task, recipe: dict, spec: dict, threads: int, build: bool,
            sparsity: float, parent: Artifact | None = None) -> Artifact:
    if (final / "meta.json").is_file():
        return Artifact.load(final)
    if not build:
        what = f"sparse-transfer ({sparsity:.0%})" if sparsity else "fine-tuned"
        raise CellSkipped(f"{task.name} {what} checkpoint is not cached ({final.name}) and training is off "
                          "(--no-train or [glue] train = false); run without it once to build it")
    if not torch_available():
        raise CellSkipped(f"{task.name} checkpoint {final.name} is not cached and this environment has no torch; "
                          + TORCH_HINT)
    remove_stale(final)
    with building(final) as tmp:
        what = f"sparse transfer to {sparsity:.0%}" if sparsity else "fine-tuning"
        print(f"bench: {what} of {base.backbone} on {task.name}, once (cached as {final.name})", file=sys.stderr,
              flush=True)
        state = cache_root() / "finetune-state" / f"{final.name}.pt"  # resume point of a killed run
        stats = run_training(spec | {"out": str(tmp), "state": str(state)}, threads)
        for name in TOKENIZER_FILES:
            if (base.path / name).is_file():
                shutil.copy2(base.path / name, tmp / name)
        meta = base.summary() | {
            "content_hash": sha256_file(tmp / "model.safetensors"), "task": task.name,
            "num_labels": task.num_labels, "pretrained": True, "sparsity": sparsity,
            "parent_hash": (parent or base).content_hash,
            "finetune": {"recipe": recipe, "stats": stats, "base": str(base.path)}}
        meta.pop("path")
        if sparsity:
            from bench.pruning import scope_sparsity

            held = scope_sparsity(tmp / "model.safetensors")
            transfer = spec["sparse"]["method"] == "transfer"
            meta["pruning"] = {"method": "sparse transfer: the pre-sparsified backbone fine-tuned with its mask "
                                         "fixed" if transfer else "gradual magnitude pruning during fine-tuning "
                                         "(cubic schedule)",
                               "recovery": "fine-tuning with a fixed mask" + (
                                   ", distilled from the dense fine-tuned model" if spec["sparse"]["distill_alpha"]
                                   else ""), "parent": str(parent.path) if parent else None,
                               "init": spec.get("init"),
                               "scope_sparsity": held["scope_sparsity"], "scope_params": held["scope_params"]}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    state.unlink(missing_ok=True)  # trained: the resume point is no longer needed
    return Artifact.load(final)
