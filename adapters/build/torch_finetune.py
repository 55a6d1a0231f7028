"""GLUE fine-tuning and sparse transfer in torch (run as `python -m adapters.build.torch_finetune SPEC.json`).

Called by bench/glue/finetune.py, which owns recipes, cache keys and the artifact directory; this module only
trains and writes config.json + model.safetensors. AdamW with linear warm-up and decay, gradient clipping,
dynamic padding over length buckets, seeded shuffling, dropout and head init (same seed, same threads → same
weights). Sparse transfer prunes gradually by magnitude with bench/pruning.py's own rule (which tensors, how
many zeros per tensor) and can distil from the dense fine-tuned model.
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification
from transformers.utils import logging as hf_logging

from bench.glue import data, metrics
from bench.glue.batching import eval_batches, train_batches
from bench.glue.recipes import HParams, SparseRecipe, lr_factor, sparsity_at
from bench.glue.tasks import Task, get_task
from bench.pruning import PruneScope, magnitude_prune
from bench.tokenizer import Encoded, Tokenizer

SAVE_EVERY_S = 120  # training state is saved this often, so a killed long run resumes instead of restarting

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_classifier(path: str | Path, task: Task, seed: int) -> torch.nn.Module:
    """The sequence-classification model of a checkpoint; a base checkpoint gets a new head initialised from
    `seed` (regression head for STS-B)."""
    seed_everything(seed)
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    labels = task.labels or ("score",)
    config.num_labels = task.num_labels
    config.id2label = dict(enumerate(labels))
    config.label2id = {v: i for i, v in enumerate(labels)}
    config.problem_type = "regression" if task.is_regression else "single_label_classification"
    return AutoModelForSequenceClassification.from_pretrained(path, config=config, dtype=torch.float32,
                                                              local_files_only=True, use_safetensors=True)


def _inputs(enc: Encoded, idx: np.ndarray, lengths: np.ndarray) -> dict[str, torch.Tensor]:
    width = int(lengths[idx].max())
    return {k: torch.from_numpy(np.ascontiguousarray(v[idx, :width])) for k, v in enc.as_dict().items()}


@torch.inference_mode()
def predict(model: torch.nn.Module, enc: Encoded, lengths: np.ndarray, batch_size: int = 64) -> np.ndarray:
    model.eval()
    out = np.zeros((len(lengths), model.config.num_labels), dtype=np.float32)
    for idx in eval_batches(lengths, batch_size):
        out[idx] = model(**_inputs(enc, idx, lengths)).logits.float().numpy()
    return out


def task_loss(task: Task, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task.is_regression:
        return torch.nn.functional.mse_loss(logits.squeeze(-1), labels)
    return torch.nn.functional.cross_entropy(logits, labels)


def distill_loss(task: Task, logits: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    if task.is_regression:
        return torch.nn.functional.mse_loss(logits, teacher)
    t = temperature
    return torch.nn.functional.kl_div(torch.log_softmax(logits / t, -1), torch.softmax(teacher / t, -1),
                                      reduction="batchmean") * t * t


class Pruner:
    """Masks for the weights bench/pruning.py would prune, recomputed as the sparsity target rises; pruned
    weights stay exactly zero after every optimizer step."""

    def __init__(self, model: torch.nn.Module, scope: PruneScope):
        self.scope = scope
        self.params = {n: p for n, p in model.named_parameters() if scope.covers(n, tuple(p.shape))}
        self.masks: dict[str, torch.Tensor] = {}
        self.sparsity = 0.0

    @torch.no_grad()
    def update(self, sparsity: float) -> None:
        if sparsity <= self.sparsity and self.masks:
            return
        arrays = {n: p.detach().numpy() for n, p in self.params.items()}
        pruned, _ = magnitude_prune(arrays, sparsity, self.scope)
        self.masks = {n: torch.from_numpy(pruned[n] != 0) for n in self.params}
        self.sparsity = sparsity
        self.apply()

    @torch.no_grad()
    def fix(self, sparsity: float) -> None:
        """Keep the checkpoint's own zeros as the mask (sparse transfer). A checkpoint whose in-scope tensors do not
        each hold exactly round(sparsity * size) zeros is not the pre-sparsified model the mask was recorded for:
        refused rather than trained with a mask that does not match it."""
        wrong = [f"{n} ({int((p == 0).sum())} zeros, expected {round(sparsity * p.numel())})"
                 for n, p in self.params.items() if int((p == 0).sum()) != round(sparsity * p.numel())]
        if wrong or not self.params:
            raise ValueError(f"the mask does not match the checkpoint: {len(wrong)} of {len(self.params)} pruned "
                             f"tensors differ from {sparsity:.0%} sparsity, e.g. {', '.join(wrong[:2])}")
        self.masks = {n: p.detach() != 0 for n, p in self.params.items()}
        self.sparsity = sparsity

    @torch.no_grad()
    def apply(self) -> None:
        for n, mask in self.masks.items():
            self.params[n].mul_(mask)


def _no_decay(name: str) -> bool:
    return name.endswith(".bias") or "LayerNorm" in name or "layer_norm" in name


def train(spec: dict) -> dict:
    """Fine-tune (or sparse-transfer) per `spec` and save the model to spec["out"]; returns training stats.
    Everything random derives from spec["seed"]; the state saved to spec["state"] lets a killed run resume."""
    task = get_task(spec["task"])
    hp = HParams(**spec["hparams"])
    sparse = SparseRecipe(**spec["sparse"]) if spec.get("sparse") else None
    seed, threads = int(spec["seed"]), int(spec.get("threads") or 1)
    torch.set_num_threads(threads)
    started = time.perf_counter()

    split = data.load_split(task, "train")
    held = None
    if spec.get("holdout"):  # a selection candidate: train on the rest, score the held-out rows at the end
        keep, rows = data.holdout_rows(len(split), spec["holdout"]["fraction"], spec["holdout"]["seed"])
        split, held = split.subset(keep), split.subset(rows)
    config = json.loads((Path(spec["base"]) / "config.json").read_text())
    tok = Tokenizer.from_dir(spec["base"], vocab_size=config.get("vocab_size"))
    enc = tok.encode(split.text_a, split.text_b, max_length=hp.max_length, pad_to_max=False)
    lengths = enc.attention_mask.sum(axis=1)
    labels = torch.from_numpy(split.labels.astype(np.float32 if task.is_regression else np.int64))

    state_path = Path(spec["state"]) if spec.get("state") else None
    state = torch.load(state_path, weights_only=True) if state_path is not None and state_path.is_file() else None
    teacher_logits = None
    if sparse is not None:
        if sparse.distill_alpha > 0 and state is not None and state.get("teacher_logits") is not None:
            teacher_logits = state["teacher_logits"]
        elif sparse.distill_alpha > 0:
            teacher = load_classifier(spec["teacher"], task, seed)
            teacher_logits = torch.from_numpy(predict(teacher, enc, lengths))
            del teacher
        if sparse.method == "transfer":
            init = spec["init"]  # the pre-sparsified backbone; its head is new
        else:
            init = spec["teacher"] if sparse.init == "finetuned" else spec["base"]
        model = load_classifier(init, task, seed)
        epochs, lr = sparse.epochs, sparse.learning_rate
    else:
        model = load_classifier(spec["base"], task, seed)
        epochs, lr = hp.epochs, hp.learning_rate
    seed_everything(seed)  # dropout and shuffling from here on
    rng = np.random.default_rng(seed)
    schedule = [b for _ in range(epochs) for b in train_batches(lengths, hp.batch_size, rng)]
    total, warmup = len(schedule), int(hp.warmup_ratio * len(schedule))

    groups = [{"params": [p for n, p in model.named_parameters() if not _no_decay(n)], "weight_decay": hp.weight_decay},
              {"params": [p for n, p in model.named_parameters() if _no_decay(n)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, warmup, sparse))
    pruner = Pruner(model, PruneScope(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in spec["scope"].items()})) if sparse else None
    fixed = sparse is not None and sparse.method == "transfer"
    if fixed and state is None:
        pruner.fix(sparse.target)

    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    bar = tqdm(total=total, desc=f"{task.name} {'sparse ' + format(sparse.target, '.0%') if sparse else 'fine-tune'}",
               unit="step", file=sys.stderr, mininterval=0.5 if interactive else 30, dynamic_ncols=interactive)
    model.train()
    losses: list[float] = []
    tokens, start, elapsed = 0, 0, 0.0
    if state is not None:  # a killed run of the same recipe: go on from there
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        losses, tokens, start, elapsed = list(state["losses"]), state["tokens"], state["step"], state["elapsed"]
        if pruner is not None:
            pruner.masks, pruner.sparsity = state["masks"], state["sparsity"]
        bar.write(f"{task.name}: resuming at step {start}/{total} from {state_path}", file=sys.stderr)
    bar.update(start)
    saved = time.monotonic()
    steps_per_epoch = total // max(1, epochs)
    for step, idx in enumerate(schedule):
        if step < start:
            continue
        if pruner is not None and not fixed:
            pruner.update(sparsity_at(step, total, sparse))
        batch = _inputs(enc, idx, lengths)
        logits = model(**batch).logits
        loss = task_loss(task, logits, labels[idx])
        if teacher_logits is not None:
            loss = (1 - sparse.distill_alpha) * loss + sparse.distill_alpha * distill_loss(
                task, logits, teacher_logits[idx], sparse.temperature)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), hp.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if pruner is not None:
            pruner.apply()
        losses.append(loss.item())
        tokens += int(batch["input_ids"].numel())
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False,
                            **({"sparsity": f"{pruner.sparsity:.1%}"} if pruner is not None else {}))
        if steps_per_epoch and (step + 1) % steps_per_epoch == 0:
            bar.write(f"{task.name}: epoch {(step + 1) // steps_per_epoch}/{epochs} done, mean loss of the epoch "
                      f"{np.mean(losses[-steps_per_epoch:]):.4f}, {time.perf_counter() - started:.0f} s",
                      file=sys.stderr)  # on its own line, not glued to the bar's
        if state_path is not None and time.monotonic() - saved > SAVE_EVERY_S and step + 1 < total:
            save_state(state_path, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(), "losses": losses, "tokens": tokens, "step": step + 1,
                "elapsed": elapsed + time.perf_counter() - started,
                "masks": pruner.masks if pruner else {}, "sparsity": pruner.sparsity if pruner else 0.0,
                "teacher_logits": teacher_logits})
            saved = time.monotonic()
    bar.close()
    if pruner is not None and not fixed:
        pruner.update(sparse.target)
    model.eval()
    out = Path(spec["out"])
    model.save_pretrained(out, safe_serialization=True)
    scored = {}
    if held is not None:
        henc = tok.encode(held.text_a, held.text_b, max_length=hp.max_length, pad_to_max=False)
        preds = metrics.predictions(task, predict(model, henc, henc.attention_mask.sum(axis=1)))
        scored = {"holdout": metrics.compute(task, preds, held.labels) | {"n": len(held)}}
    return scored | {"steps": total, "epochs": epochs, "train_examples": len(split), "train_tokens_padded": tokens,
            "final_loss": float(np.mean(losses[-50:])) if losses else None,
            "time_s": elapsed + time.perf_counter() - started, "resumed_at_step": start,
            "threads": threads, "torch": torch.__version__,
            "sparsity": pruner.sparsity if pruner is not None else 0.0}


def save_state(path: Path, state: dict) -> None:
    """Training state for resuming a killed run, replaced atomically (a kill mid-write keeps the previous one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train_here(spec: dict, trainer=None) -> dict:
    """`trainer` (this module's `train` by default) in the calling process, leaving torch's thread setting as it
    was."""
    threads = torch.get_num_threads()
    try:
        return (trainer or train)(spec)
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str], trainer=None) -> int:
    """A trainer subprocess: SPEC.json in; its stats, or its error's one line, written where the spec says."""
    spec = json.loads(Path(argv[0]).read_text())
    try:
        stats = (trainer or train)(spec)
    except BaseException as exc:
        traceback.print_exc()
        Path(spec["error"]).write_text(f"{type(exc).__name__}: {exc}")
        return 1
    Path(spec["stats"]).write_text(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
