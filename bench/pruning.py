"""Unstructured magnitude pruning as a sparsity axis, in numpy: a pruned artifact every runtime loads.

Pruning happens once on the canonical safetensors checkpoint, not inside a runtime, so torch, ONNX Runtime
and DeepSparse all run the very same zeros and their numbers stay comparable. Each weight matrix in scope
(2-D `.weight` tensors of the encoder; embeddings, pooler and task heads untouched by default) loses exactly
round(sparsity * size) of its smallest-magnitude entries (uniform per-layer sparsity). No recovery
fine-tuning is done here: the artifact says `recovery: none`, so accuracy numbers of pruned random or
un-recovered weights are never mistaken for published pruned-model figures.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.artifacts import TOKENIZER_FILES, Artifact, cache_root, load_cached, sha256_file
from bench.errors import UsageError
from bench.files import building
from bench.keys import digest

PRUNE_VERSION = 1  # bump when pruning changes the bytes it writes
SPARSITY_LEVELS = {"dense": 0.0, "pruned80": 0.8, "pruned90": 0.9}


@dataclass(frozen=True)
class PruneScope:
    """Which tensors are pruned: 2-D weights whose name matches `include` and none of `exclude`."""

    include: str = r"\.weight$"
    exclude: tuple[str, ...] = (r"embeddings", r"pooler", r"classifier")

    def covers(self, name: str, shape: tuple[int, ...]) -> bool:
        return (len(shape) == 2 and re.search(self.include, name) is not None
                and not any(re.search(p, name) for p in self.exclude))


DEFAULT_SCOPE = PruneScope()


def sparsity_of(name: str) -> float:
    """The fraction a sparsity-axis name stands for ("pruned90" -> 0.9)."""
    if name not in SPARSITY_LEVELS:
        raise UsageError(f"unknown sparsity {name!r}; choose from: {', '.join(SPARSITY_LEVELS)}")
    return SPARSITY_LEVELS[name]


def check_fraction(sparsity: float) -> float:
    """A sparsity must be a number in [0, 1): 1.0 would delete every weight, negatives mean nothing."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, int | float) or not 0.0 <= sparsity < 1.0:
        raise UsageError(f"sparsity must be a number in [0, 1), got {sparsity!r}")
    return float(sparsity)


def magnitude_prune(tensors: dict[str, np.ndarray], sparsity: float,
                    scope: PruneScope = DEFAULT_SCOPE) -> tuple[dict[str, np.ndarray], dict]:
    """Zero the round(sparsity * size) smallest |w| of every tensor in scope; the others are returned as they
    are. Ties at the threshold are broken by position (argpartition), so the count is exact."""
    sparsity = check_fraction(sparsity)
    out, pruned, zeros, size = {}, [], 0, 0
    for name, t in tensors.items():
        if not scope.covers(name, t.shape):
            out[name] = t
            continue
        if not np.issubdtype(t.dtype, np.floating):
            raise UsageError(f"cannot prune {name}: dtype {t.dtype} is not floating point")
        k = round(sparsity * t.size)
        flat = np.array(t, copy=True).reshape(-1)
        if k:
            flat[np.argpartition(np.abs(flat), k - 1)[:k]] = 0
        out[name] = flat.reshape(t.shape)
        pruned.append(name)
        zeros += int(flat.size - np.count_nonzero(flat))
        size += flat.size
    if sparsity > 0 and not pruned:
        raise UsageError(f"nothing to prune: no 2-D weight matches the scope {scope}")
    return out, {"tensors": pruned, "scope_params": size, "scope_zeros": zeros,
                 "scope_sparsity": zeros / size if size else 0.0}


def scope_sparsity(path: Path, scope: PruneScope = DEFAULT_SCOPE) -> dict:
    """Zeros among the in-scope weights of a safetensors file (what a pruned artifact really holds)."""
    tensors = _load(path)
    size = zeros = 0
    for name, t in tensors.items():
        if scope.covers(name, t.shape):
            size += t.size
            zeros += int(t.size - np.count_nonzero(t))
    total = sum(t.size for t in tensors.values())
    nonzero = sum(int(np.count_nonzero(t)) for t in tensors.values())
    return {"scope_params": size, "scope_zeros": zeros, "scope_sparsity": zeros / size if size else 0.0,
            "total": total, "nonzero": nonzero}


def pruned_twin(base: Artifact, sparsity: float, scope: PruneScope = DEFAULT_SCOPE) -> Artifact:
    """The pruned twin of `base`, built once: same config and tokenizer, pruned model.safetensors, and a
    meta.json that inherits `pretrained` (pruning does not make random weights real, nor real ones random)."""
    sparsity = check_fraction(sparsity)
    if sparsity == 0.0:
        return base
    if base.sparsity:
        raise UsageError(f"{base.path}: already pruned to {base.sparsity}; prune the dense artifact")
    recipe = {"base": base.content_hash, "sparsity": sparsity, "scope": asdict(scope), "version": PRUNE_VERSION}
    key = digest(recipe, 16)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", base.backbone)[-60:]
    final = cache_root() / "artifacts" / f"{name}-pruned{round(sparsity * 100)}-{key}"
    cached = load_cached(final)
    if cached is not None:
        return cached
    with building(final) as tmp:
        from safetensors.numpy import save_file

        tensors, report = magnitude_prune(_load(base.path / "model.safetensors"), sparsity, scope)
        save_file(tensors, tmp / "model.safetensors", metadata={"format": "pt"})
        shutil.copy2(base.path / "config.json", tmp / "config.json")
        for file in TOKENIZER_FILES:
            if (base.path / file).is_file():
                shutil.copy2(base.path / file, tmp / file)
        meta = base.summary() | {
            "content_hash": sha256_file(tmp / "model.safetensors"), "sparsity": sparsity,
            "parent_hash": base.content_hash,
            "pruning": {"method": "magnitude, unstructured, uniform per tensor", "recovery": "none",
                        "scope": asdict(scope), "version": PRUNE_VERSION, "parent": str(base.path),
                        "tensors": len(report["tensors"]), "scope_params": report["scope_params"],
                        "scope_sparsity": report["scope_sparsity"]}}
        meta.pop("path")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return Artifact.load(final)


def for_sparsity(base: Artifact, name: str) -> Artifact:
    """The artifact a cell on sparsity axis value `name` runs."""
    return pruned_twin(base, sparsity_of(name))


def expected_zeros(size: int, sparsity: float) -> int:
    return round(check_fraction(sparsity) * size)


def _load(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(path)
    except (OSError, ValueError, TypeError) as exc:  # bf16 checkpoints cannot be read into numpy
        raise UsageError(f"{path}: cannot read as numpy safetensors ({exc})") from exc
    except Exception as exc:  # safetensors raises its own SafetensorError for corrupt headers
        raise UsageError(f"{path}: corrupt safetensors file ({exc})") from exc

