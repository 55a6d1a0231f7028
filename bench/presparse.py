"""Pre-sparsified backbones: a base model pruned upstream, on general text, before any task sees it.

Seed 004's flow starts from a BERT pruned task-agnostically; none can be downloaded here, so the harness builds
one. all-MiniLM-L6-v2 has no MLM head, so "upstream" means representation distillation from the dense backbone
itself: the student (a copy being magnitude-pruned on the cubic schedule, bench/pruning.py's rule) learns to
reproduce the dense model's hidden states on windows of a plain-text corpus (../shared/corpus). The result is an
ordinary base artifact (HF layout, meta.json) cached by the hash of (base weights, recipe, corpus): it runs in
every runtime like any checkpoint, and sparse transfer (bench/glue/finetune.py) fine-tunes it with its mask fixed.
A 90% model starts from the 80% one (`init`), as published upstream runs continue pruning rather than restart.

Training runs in a subprocess (adapters/build/torch_upstream.py) and resumes where a killed run stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.artifacts import TOKENIZER_FILES, Artifact, cache_root, load_cached, sha256_file
from bench.config import from_table
from bench.errors import CellError, CellSkipped, UsageError
from bench.files import building
from bench.keys import digest
from bench.pruning import DEFAULT_SCOPE, check_fraction

UPSTREAM_VERSION = 1  # bump when the trainer changes the bytes it produces for the same recipe
CORPUS_ENV = "BENCH_CORPUS_DIR"  # a directory of UTF-8 .txt files (one paragraph a line)
HELD_OUT_EVERY = 50  # every 50th corpus line is held out: the distillation loss reported on text never trained on


@dataclass(frozen=True)
class UpstreamRecipe:
    """[upstream] of bench/glue/hparams.toml (overlaid by [upstream.targets."0.9"] etc.); all part of the key."""

    steps: int = 600  # optimizer steps at this target (a 90% model continues from its `init`)
    batch_size: int = 16
    seq_len: int = 128  # corpus windows of this many tokens, [CLS] ... [SEP]
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.05
    one_shot: float = 0.0  # sparsity applied at step 0 (oBERT starts one-shot at 30-70%)
    prune_end: float = 0.7  # share of the steps where the target is reached; the rest recovers with the mask fixed
    prune_updates: int = 30
    hidden_weight: float = 1.0  # MSE of every layer's hidden states (TinyBERT's general distillation)
    attention_weight: float = 0.0  # KL of the last layer's attention distributions (MiniLM's self-attention KD)
    init: float = 0.0  # the sparsity of the upstream model this one continues from (0: the dense backbone)

    def __post_init__(self):
        for name in ("one_shot", "init"):
            check_fraction(getattr(self, name))
        if not 0 < self.prune_end <= 1:
            raise UsageError("prune_end must be in (0, 1]")
        if self.steps < 1 or self.seq_len < 8:
            raise UsageError("steps must be >= 1 and seq_len >= 8")


def recipe_for(target: float, path: Path | None = None) -> UpstreamRecipe:
    """The upstream recipe for `target`: [upstream] with [upstream.targets."<target>"] over it."""
    from bench.glue.recipes import load_recipes, recipe_file

    path = recipe_file(path)
    target = check_fraction(target)
    doc = dict(load_recipes(path).get("upstream", {}))
    targets = doc.pop("targets", {})
    over = targets.get(f"{target:g}", {})
    recipe = from_table(UpstreamRecipe, doc | over, f"{path} [upstream]")
    if recipe.init >= target:
        raise UsageError(f"{path} [upstream]: init {recipe.init} must be below the target {target}")
    if recipe.one_shot >= target:
        raise UsageError(f"{path} [upstream]: one_shot {recipe.one_shot} must be below the target {target}")
    return recipe


@dataclass(frozen=True)
class Corpus:
    """The text upstream pruning reads: its files, their combined hash, and where it came from."""

    root: Path
    files: tuple[Path, ...]
    sha256: str
    lines: int
    words: int

    def texts(self) -> tuple[list[str], list[str]]:
        """(training lines, held-out lines): paragraphs, WikiText headings and blank lines dropped."""
        train, held = [], []
        n = 0
        for f in self.files:
            for line in f.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if not line or re.fullmatch(r"=+ .* =+", line):
                    continue
                (held if n % HELD_OUT_EVERY == HELD_OUT_EVERY - 1 else train).append(line)
                n += 1
        return train, held


def corpus_dir() -> Path:
    """$BENCH_CORPUS_DIR, else ../shared/corpus beside the checkout (what `nox -s bench` sets)."""
    env = os.environ.get(CORPUS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def load_corpus(root: Path | None = None) -> Corpus:
    """The corpus's .txt files (recursively, sorted), checked: missing, empty or not UTF-8 is a one-line
    UsageError naming the file."""
    root = Path(root or corpus_dir())
    if not root.is_dir():
        raise UsageError(f"corpus {root}: no such directory (set ${CORPUS_ENV} to a directory of UTF-8 .txt files)")
    files = tuple(sorted(p for p in root.rglob("*.txt") if p.is_file()))
    if not files:
        raise UsageError(f"corpus {root}: no .txt files in it")
    lines = words = 0
    hashes = []
    for f in files:
        try:
            text = f.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError(f"corpus file {f}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        except OSError as exc:
            raise UsageError(f"corpus file {f}: unreadable ({exc.strerror or exc})") from exc
        if "\x00" in text:
            raise UsageError(f"corpus file {f}: binary data (NUL bytes), not text")
        lines += sum(1 for line in text.splitlines() if line.strip())
        words += len(text.split())
        hashes.append((str(f.relative_to(root)), sha256_file(f)))
    if not words:
        raise UsageError(f"corpus {root}: its .txt files hold no text")
    return Corpus(root, files, digest(hashes, 64), lines, words)


def presparsified(base: Artifact, target: float, threads: int = 1, build: bool = True,
                  recipe: UpstreamRecipe | None = None, corpus: Corpus | None = None) -> Artifact:
    """`base` pruned upstream to `target` with representation distillation from its dense self, built once
    (its `init` model first, when it continues one). CellSkipped when it is not cached and cannot be built here."""
    target = check_fraction(target)
    if target == 0.0:
        return base
    if base.sparsity or base.task:
        raise UsageError(f"{base.path}: upstream pruning starts from a dense base model, not a pruned or "
                         "fine-tuned one")
    recipe = recipe or recipe_for(target)
    corpus = corpus or load_corpus()
    start = presparsified(base, recipe.init, threads, build, corpus=corpus) if recipe.init else base
    key = {"kind": "upstream", "base": base.content_hash, "init": start.content_hash, "target": target,
           "recipe": asdict(recipe), "corpus": corpus.sha256, "scope": asdict(DEFAULT_SCOPE),
           "version": UPSTREAM_VERSION}
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", base.backbone)[-60:]
    final = cache_root() / "artifacts" / f"{name}-upstream{round(target * 100)}-{digest(key, 16)}"
    cached = load_cached(final)
    if cached is not None:
        return cached
    if not build:
        raise CellSkipped(f"pre-sparsified {base.backbone} at {target:.0%} is not cached ({final.name}) and "
                          "training is off; run without --no-train once to build it")
    from bench.training import TORCH_HINT, remove_stale, run_training, torch_available

    if not torch_available():
        raise CellSkipped(f"pre-sparsified {base.backbone} ({final.name}) is not cached and this environment "
                          "has no torch; " + TORCH_HINT)
    remove_stale(final)
    with building(final) as tmp:
        print(f"bench: upstream pruning of {base.backbone} to {target:.0%} on {corpus.root} "
              f"({corpus.words:,} words), once (cached as {final.name})", file=sys.stderr, flush=True)
        state = cache_root() / "finetune-state" / f"{final.name}.pt"
        spec = {"mode": "upstream", "base": str(base.path), "init": str(start.path), "target": target,
                "recipe": asdict(recipe), "corpus": [str(f) for f in corpus.files], "corpus_root": str(corpus.root),
                "scope": asdict(DEFAULT_SCOPE), "seed": base.seed or 0, "out": str(tmp), "state": str(state),
                "task": f"upstream{round(target * 100)}"}
        stats = run_training(spec, threads, module="adapters.build.torch_upstream")
        for file in TOKENIZER_FILES:
            if (base.path / file).is_file():
                shutil.copy2(base.path / file, tmp / file)
        from bench.pruning import scope_sparsity

        held = scope_sparsity(tmp / "model.safetensors")
        if abs(held["scope_sparsity"] - target) > 1e-3:
            raise CellError(f"upstream pruning to {target:.0%} produced {held['scope_sparsity']:.1%} zeros")
        meta = base.summary() | {
            "content_hash": sha256_file(tmp / "model.safetensors"), "sparsity": target,
            "parent_hash": base.content_hash,
            "pruning": {"method": "upstream: gradual magnitude pruning with representation distillation from the "
                                  "dense backbone on a general-text corpus",
                        "recovery": "distillation with the mask fixed",
                        "recipe": asdict(recipe), "init": str(start.path), "init_sparsity": recipe.init,
                        "corpus": {"root": str(corpus.root), "sha256": corpus.sha256, "files": len(corpus.files),
                                   "words": corpus.words},
                        "scope": asdict(DEFAULT_SCOPE), "version": UPSTREAM_VERSION, "stats": stats,
                        "scope_sparsity": held["scope_sparsity"], "scope_params": held["scope_params"]}}
        meta.pop("path")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    state.unlink(missing_ok=True)
    return Artifact.load(final)
