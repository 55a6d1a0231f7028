"""Upstream pruning in torch (run as `python -m adapters.build.torch_upstream SPEC.json`).

Called by bench/presparse.py, which owns the recipe, the corpus check, the cache key and the artifact directory;
this module only trains and writes config.json + model.safetensors. The student starts from `init` (the dense
backbone, or the upstream model of a lower sparsity), is magnitude-pruned on a cubic schedule from
max(one_shot, init sparsity) to the target (bench/pruning.py's rule, via the fine-tuner's Pruner) and learns the
dense backbone's hidden states (every layer, MSE over tokens) and optionally its last layer's attention
distributions (KL) on fixed-length windows of the corpus. The held-out corpus lines measure what was lost: the
distillation loss and the cosine between student and teacher mean-pooled embeddings (what all-MiniLM-L6-v2 is
used for), before and after.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel
from transformers.utils import logging as hf_logging

from adapters.build import torch_finetune as finetune_main
from adapters.build.torch_finetune import SAVE_EVERY_S, Pruner, save_state, seed_everything
from bench.glue.recipes import cubic_sparsity
from bench.presparse import Corpus, UpstreamRecipe
from bench.pruning import PruneScope
from bench.tokenizer import Tokenizer

HELD_OUT_WINDOWS = 64  # held-out windows scored before and after (a fixed prefix of the held-out text)

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()


def hidden_mse(student: tuple, teacher: tuple) -> torch.Tensor:
    """Mean squared error of every layer's output (embeddings excluded), summed over layers; windows are full."""
    return sum(torch.nn.functional.mse_loss(s, t) for s, t in zip(student[1:], teacher[1:], strict=True))


def attention_kl(student: tuple, teacher: tuple) -> torch.Tensor:
    """KL(teacher || student) of the last layer's attention distributions, averaged over heads and queries."""
    s, t = student[-1], teacher[-1]
    return (t * (torch.log(t.clamp_min(1e-9)) - torch.log(s.clamp_min(1e-9)))).sum(-1).mean()


def _batch(ids: np.ndarray, rows: np.ndarray) -> dict[str, torch.Tensor]:
    x = torch.from_numpy(np.ascontiguousarray(ids[rows]))
    return {"input_ids": x, "attention_mask": torch.ones_like(x), "token_type_ids": torch.zeros_like(x)}


@torch.inference_mode()
def held_out(student, teacher, ids: np.ndarray, recipe: UpstreamRecipe) -> dict:
    student.eval()
    losses, cosines = [], []
    for start in range(0, len(ids), 16):
        b = _batch(ids, np.arange(start, min(start + 16, len(ids))))
        so = student(**b, output_hidden_states=True)
        to = teacher(**b, output_hidden_states=True)
        losses.append(float(hidden_mse(so.hidden_states, to.hidden_states)))
        cosines += torch.nn.functional.cosine_similarity(so.last_hidden_state.mean(1),
                                                         to.last_hidden_state.mean(1)).tolist()
    student.train()
    return {"hidden_mse": float(np.mean(losses)), "embedding_cosine": float(np.mean(cosines)),
            "windows": len(ids)}


def train(spec: dict) -> dict:
    recipe = UpstreamRecipe(**spec["recipe"])
    target, seed, threads = float(spec["target"]), int(spec["seed"]), int(spec.get("threads") or 1)
    torch.set_num_threads(threads)
    started = time.perf_counter()
    config = json.loads((Path(spec["base"]) / "config.json").read_text())
    tok = Tokenizer.from_dir(spec["base"], vocab_size=config.get("vocab_size"))
    corpus = Corpus(Path(spec["corpus_root"]), tuple(Path(f) for f in spec["corpus"]), "", 0, 0)
    train_text, held_text = corpus.texts()
    ids = tok.windows(train_text, recipe.seq_len).input_ids
    held_ids = tok.windows(held_text, recipe.seq_len).input_ids[:HELD_OUT_WINDOWS]
    attention = recipe.attention_weight > 0
    kwargs = {"attn_implementation": "eager"} if attention else {}

    seed_everything(seed)
    teacher = AutoModel.from_pretrained(spec["base"], local_files_only=True, use_safetensors=True,
                                        dtype=torch.float32, **kwargs).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    student = AutoModel.from_pretrained(spec["init"], local_files_only=True, use_safetensors=True,
                                        dtype=torch.float32, **kwargs)
    pruner = Pruner(student, PruneScope(**{k: tuple(v) if isinstance(v, list) else v
                                           for k, v in spec["scope"].items()}))
    first = max(recipe.one_shot, recipe.init)
    total, warmup = recipe.steps, int(recipe.warmup_ratio * recipe.steps)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(ids)) for _ in range(-(-total * recipe.batch_size // len(ids)))])
    optimizer = torch.optim.AdamW(student.parameters(), lr=recipe.learning_rate, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup)))

    state_path = Path(spec["state"]) if spec.get("state") else None
    state = torch.load(state_path, weights_only=True) if state_path is not None and state_path.is_file() else None
    losses: list[float] = []
    start_step, elapsed = 0, 0.0
    if state is not None:
        student.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        pruner.masks, pruner.sparsity = state["masks"], state["sparsity"]
        losses, start_step, elapsed, before = list(state["losses"]), state["step"], state["elapsed"], state["before"]
    else:
        if first:
            pruner.update(first)
        before = held_out(student, teacher, held_ids, recipe)

    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    per_pass = len(ids) / recipe.batch_size
    bar = tqdm(total=total, desc=f"upstream {target:.0%}", unit="step", file=sys.stderr,
               mininterval=0.5 if interactive else 30, dynamic_ncols=interactive, initial=start_step)
    if start_step:
        bar.write(f"upstream {target:.0%}: resuming at step {start_step}/{total} from {state_path}", file=sys.stderr)
    student.train()
    saved = time.monotonic()
    for step in range(start_step, total):
        pruner.update(first + (target - first) * cubic_sparsity(step, total, 1.0, 0.0, recipe.prune_end,
                                                                recipe.prune_updates))
        b = _batch(ids, order[step * recipe.batch_size:(step + 1) * recipe.batch_size])
        with torch.no_grad():
            t = teacher(**b, output_hidden_states=True, output_attentions=attention)
        s = student(**b, output_hidden_states=True, output_attentions=attention)
        loss = recipe.hidden_weight * hidden_mse(s.hidden_states, t.hidden_states)
        if attention:
            loss = loss + recipe.attention_weight * attention_kl(s.attentions, t.attentions)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        pruner.apply()
        losses.append(loss.item())
        bar.update(1)
        if step % 10 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", sparsity=f"{pruner.sparsity:.1%}",
                            corpus_pass=f"{(step + 1) / per_pass:.2f}", refresh=False)
        if state_path is not None and time.monotonic() - saved > SAVE_EVERY_S and step + 1 < total:
            save_state(state_path, {
                "model": student.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "losses": losses,
                "step": step + 1, "elapsed": elapsed + time.perf_counter() - started, "masks": pruner.masks,
                "sparsity": pruner.sparsity, "before": before})
            saved = time.monotonic()
    bar.close()
    pruner.update(target)
    after = held_out(student, teacher, held_ids, recipe)
    print(f"upstream {target:.0%}: held-out embedding cosine to the dense model {before['embedding_cosine']:.4f} "
          f"-> {after['embedding_cosine']:.4f}, hidden MSE {before['hidden_mse']:.4f} -> {after['hidden_mse']:.4f}",
          file=sys.stderr, flush=True)
    student.save_pretrained(Path(spec["out"]), safe_serialization=True)
    return {"steps": total, "windows": len(ids), "corpus_passes": total / per_pass, "seq_len": recipe.seq_len,
            "final_loss": float(np.mean(losses[-50:])) if losses else None, "held_out_before": before,
            "held_out_after": after, "time_s": elapsed + time.perf_counter() - started,
            "resumed_at_step": start_step, "threads": threads, "torch": torch.__version__,
            "sparsity": pruner.sparsity}


def train_here(spec: dict) -> dict:
    return finetune_main.train_here(spec, train)


if __name__ == "__main__":
    sys.exit(finetune_main.main(sys.argv[1:], train))
