"""Sparse-transfer recipe search on a held-out slice of TRAIN, never dev (no model selection on what is scored).

The task's train split is cut once (10%, seed 0) into train' and a hold-out; every candidate trains on train'
and is scored on the hold-out, so dev stays untouched until the chosen recipe goes into
bench/glue/hparams.toml. Experiments (one per call, appended as a JSON line to OUT/results.jsonl):

  dense      fine-tune all-MiniLM-L6-v2 on train' (the teacher and the reference score; saved in OUT)
  oneshot    magnitude-prune the dense model to several sparsities, no recovery (how fragile is it?)
  gmp        gradual magnitude pruning while fine-tuning from the dense model, distilled from it (logits,
             `alpha`; optional hidden states of every layer, `beta`): the recipe bench/glue/finetune.py runs
  upstream   task-agnostic pruning: distil the dense encoder's hidden states (every layer) into a pruned copy
             on unlabelled TRAIN text of five GLUE tasks (the hold-out rows excluded), saved in OUT
  transfer   fine-tune an `upstream` model with its mask fixed, optionally distilled from the dense model

    python benchmarks/sparse_recipe_search.py dense mrpc epochs=3 lr=5e-5 bs=16
    python benchmarks/sparse_recipe_search.py gmp mrpc target=0.8 epochs=4 lr=5e-5 alpha=0.5 [beta=1]
    python benchmarks/sparse_recipe_search.py upstream mrpc target=0.8 steps=2000 lr=1e-4
    python benchmarks/sparse_recipe_search.py transfer mrpc src=up80 epochs=3 lr=5e-5 alpha=0.5
    python benchmarks/sparse_recipe_search.py oneshot mrpc

Runs in the torch environment (`.nox/tests/bin/python`), 2 threads; OUT is $RECIPE_OUT (default
/tmp/sparse-recipe-search). Needs the task prepared in the cache (BENCH_GLUE_DIR=../shared/glue imports it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("BENCH_CACHE", str(ROOT / ".cache" / "backbone-bench"))
os.environ.setdefault("BENCH_GLUE_DIR", str(ROOT.parent / "shared" / "glue"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModel  # noqa: E402

from adapters.build.torch_finetune import (  # noqa: E402
    Pruner,
    _no_decay,
    distill_loss,
    load_classifier,
    seed_everything,
    task_loss,
)
from bench.artifacts import TOKENIZER_FILES, artifact_for  # noqa: E402
from bench.catalogue import get_backbone  # noqa: E402
from bench.glue import data, metrics  # noqa: E402
from bench.glue.batching import eval_batches, train_batches  # noqa: E402
from bench.glue.recipes import cubic_sparsity  # noqa: E402
from bench.glue.tasks import get_task  # noqa: E402
from bench.pruning import DEFAULT_SCOPE  # noqa: E402
from bench.tokenizer import Tokenizer  # noqa: E402

CORPUS_TASKS = ("sst2", "cola", "mrpc", "stsb", "rte")  # their TRAIN text feeds upstream pruning
OUT = Path(os.environ.get("RECIPE_OUT", "/tmp/sparse-recipe-search"))

torch.set_num_threads(2)
base = artifact_for(get_backbone("minilm-l6-h384"))
tok = Tokenizer.from_dir(base.path, vocab_size=30522)


def inputs(enc, idx, lengths):
    width = int(lengths[idx].max())
    return {k: torch.from_numpy(np.ascontiguousarray(v[idx, :width])) for k, v in enc.as_dict().items()}


def holdout(task, frac=0.1, seed=0):
    """(train' rows, hold-out rows, the train split): a fixed cut of TRAIN."""
    data.task_manifest(task)
    train = data.load_split(task, "train")
    perm = np.random.default_rng(seed).permutation(len(train))
    n = round(frac * len(train))
    return np.sort(perm[n:]), np.sort(perm[:n]), train


def encode(split, rows, max_length=128):
    a = [split.text_a[i] for i in rows]
    b = [split.text_b[i] for i in rows] if split.text_b is not None else None
    enc = tok.encode(a, b, max_length=max_length, pad_to_max=False)
    return enc, enc.attention_mask.sum(axis=1)


@torch.inference_mode()
def predict(model, enc, lengths, bs=64):
    model.eval()
    out = np.zeros((len(lengths), model.config.num_labels), np.float32)
    for idx in eval_batches(lengths, bs):
        out[idx] = model(**inputs(enc, idx, lengths)).logits.float().numpy()
    return out


def score(task, model, enc, lengths, labels):
    return metrics.compute(task, metrics.predictions(task, predict(model, enc, lengths)), labels)


def linear_schedule(optimizer, total, warmup):
    def factor(s):
        return s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def hidden_mse(student_states, teacher_states, mask):
    """Mean squared error over real tokens, summed over layers (embeddings excluded)."""
    m = mask.unsqueeze(-1).float()
    return sum(((s - t) ** 2 * m).sum() / (m.sum() * s.shape[-1])
               for s, t in zip(student_states[1:], teacher_states[1:], strict=True))


def finetune(task, model, enc, lengths, labels, epochs, lr, bs, seed=0, pruner=None, target=0.0, prune_end=0.6,
             teacher=None, alpha=0.0, temperature=2.0, warmup=0.1, hidden_teacher=None, beta=0.0, updates=30):
    """AdamW, linear warm-up/decay, clipping 1.0 (as adapters/build/torch_finetune.py); prunes on the cubic schedule
    when `target` is set, keeps a pruner's mask otherwise; returns seconds."""
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    schedule = [b for _ in range(epochs) for b in train_batches(lengths, bs, rng)]
    total = len(schedule)
    groups = [{"params": [p for n, p in model.named_parameters() if not _no_decay(n)], "weight_decay": 0.01},
              {"params": [p for n, p in model.named_parameters() if _no_decay(n)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=lr)
    sch = linear_schedule(opt, total, int(warmup * total))
    model.train()
    t0, losses = time.time(), []
    for step, idx in enumerate(schedule):
        if pruner is not None and target:
            pruner.update(cubic_sparsity(step, total, target, 0.0, prune_end, updates))
        b = inputs(enc, idx, lengths)
        out = model(**b, output_hidden_states=hidden_teacher is not None)
        loss = task_loss(task, out.logits, labels[idx])
        if teacher is not None and alpha:
            loss = (1 - alpha) * loss + alpha * distill_loss(task, out.logits, teacher[idx], temperature)
        if hidden_teacher is not None and beta:
            with torch.no_grad():
                states = hidden_teacher(**b, output_hidden_states=True).hidden_states
            loss = loss + beta * hidden_mse(out.hidden_states, states, b["attention_mask"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sch.step()
        opt.zero_grad(set_to_none=True)
        if pruner is not None:
            pruner.apply()
        losses.append(loss.item())
        if step % 100 == 0:
            print(f"  step {step}/{total} loss {np.mean(losses[-50:]):.4f} "
                  f"sp {pruner.sparsity if pruner else 0:.2f} {time.time() - t0:.0f}s", flush=True)
    if pruner is not None and target:
        pruner.update(target)
    return time.time() - t0


def corpus_texts(exclude_rows=None):
    """Unlabelled TRAIN text only (sentences, and pairs as pairs) for upstream distillation."""
    a_list, b_list = [], []
    for name in CORPUS_TASKS:
        task = get_task(name)
        data.task_manifest(task)
        train = data.load_split(task, "train")
        skip = set(exclude_rows[name].tolist()) if exclude_rows and name in exclude_rows else set()
        for i in range(len(train)):
            if i not in skip:
                a_list.append(train.text_a[i])
                b_list.append(train.text_b[i] if train.text_b is not None else None)
    return a_list, b_list


def upstream_prune(target, steps, lr=1e-4, bs=32, seed=0, prune_end=0.7, exclude_rows=None, init=None,
                   start_sparsity=0.0, updates=40):
    """Prune the base encoder while distilling its hidden states (every layer) on unlabelled train text."""
    a, b = corpus_texts(exclude_rows=exclude_rows)
    singles = [i for i in range(len(a)) if b[i] is None]
    pairs = [i for i in range(len(a)) if b[i] is not None]
    enc1 = tok.encode([a[i] for i in singles], None, max_length=128, pad_to_max=False)
    enc2 = tok.encode([a[i] for i in pairs], [b[i] for i in pairs], max_length=128, pad_to_max=False)
    encs = [(enc1, enc1.attention_mask.sum(1)), (enc2, enc2.attention_mask.sum(1))]
    seed_everything(seed)
    teacher = AutoModel.from_pretrained(base.path, local_files_only=True).eval()
    student = AutoModel.from_pretrained(init or base.path, local_files_only=True)
    student.train()
    rng = np.random.default_rng(seed)
    batches = []
    while len(batches) < steps:
        for k, (_, lengths) in enumerate(encs):
            batches += [(k, bb) for bb in train_batches(lengths, bs, rng)]
        rng.shuffle(batches)
    batches = batches[:steps]
    pruner = Pruner(student, DEFAULT_SCOPE)
    opt = torch.optim.AdamW(list(student.parameters()), lr=lr, weight_decay=0.0)
    sch = linear_schedule(opt, steps, int(0.05 * steps))
    t0, losses = time.time(), []
    for step, (k, idx) in enumerate(batches):
        if step < prune_end * steps:  # cubic schedule, `updates` steps
            q = int(step / (prune_end * steps) * updates) / updates
            s = start_sparsity + (target - start_sparsity) * (1 - (1 - q) ** 3)
        else:
            s = target
        if s > 0:
            pruner.update(s)
        enc, lengths = encs[k]
        bt = inputs(enc, idx, lengths)
        with torch.no_grad():
            states = teacher(**bt, output_hidden_states=True).hidden_states
        loss = hidden_mse(student(**bt, output_hidden_states=True).hidden_states, states, bt["attention_mask"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        sch.step()
        opt.zero_grad(set_to_none=True)
        pruner.apply()
        losses.append(loss.item())
        if step % 100 == 0:
            print(f"  up step {step}/{steps} loss {np.mean(losses[-50:]):.4f} sp {pruner.sparsity:.3f} "
                  f"{time.time() - t0:.0f}s", flush=True)
    pruner.update(target)
    return student, time.time() - t0


def main(argv: list[str]) -> int:
    exp, task = argv[0], get_task(argv[1] if len(argv) > 1 else "mrpc")
    args = dict(a.split("=", 1) for a in argv[2:])
    OUT.mkdir(parents=True, exist_ok=True)
    tr_rows, ho_rows, train = holdout(task)
    enc, lengths = encode(train, tr_rows)
    henc, hlengths = encode(train, ho_rows)
    y = torch.from_numpy(train.labels[tr_rows].astype(np.float32 if task.is_regression else np.int64))
    hy = train.labels[ho_rows]
    res = {"exp": exp, "task": task.name, "n_train": len(tr_rows), "n_holdout": len(ho_rows)}
    dense_path = OUT / f"dense-{task.name}"
    if exp == "dense":
        model = load_classifier(base.path, task, 0)
        res["time"] = finetune(task, model, enc, lengths, y, int(args.get("epochs", 3)), float(args.get("lr", 5e-5)),
                               int(args.get("bs", 16)))
        res["holdout"] = score(task, model, henc, hlengths, hy)
        model.save_pretrained(dense_path, safe_serialization=True)
    elif exp == "oneshot":
        res["holdout_positive_rate"] = float(np.mean(hy)) if not task.is_regression else None
        res["curve"] = {}
        for s in (0.3, 0.5, 0.6, 0.7, 0.8):
            model = load_classifier(dense_path, task, 0).eval()
            Pruner(model, DEFAULT_SCOPE).update(s)
            res["curve"][str(s)] = score(task, model, henc, hlengths, hy)
    elif exp == "gmp":
        teacher = load_classifier(dense_path, task, 0)
        logits = torch.from_numpy(predict(teacher, enc, lengths))
        beta = float(args.get("beta", 0))
        model = load_classifier(dense_path, task, 0)
        pruner = Pruner(model, DEFAULT_SCOPE)
        res["time"] = finetune(task, model, enc, lengths, y, int(args.get("epochs", 4)), float(args.get("lr", 5e-5)),
                               int(args.get("bs", 16)), pruner=pruner, target=float(args.get("target", 0.8)),
                               teacher=logits, alpha=float(args.get("alpha", 0.5)),
                               hidden_teacher=teacher.eval() if beta else None, beta=beta,
                               prune_end=float(args.get("pe", 0.6)))
        res["holdout"] = score(task, model, henc, hlengths, hy)
        res["sparsity"] = pruner.sparsity
    elif exp == "upstream":
        target = float(args.get("target", 0.8))
        student, res["time_upstream"] = upstream_prune(
            target, int(args.get("steps", 1500)), lr=float(args.get("lr", 1e-4)), exclude_rows={task.name: ho_rows},
            init=args.get("init"), start_sparsity=float(args.get("start", 0.0)))
        student.save_pretrained(OUT / f"up{int(target * 100)}{args.get('tag', '')}", safe_serialization=True)
    elif exp == "transfer":
        src = OUT / args["src"]
        for name in TOKENIZER_FILES:
            if (base.path / name).exists():
                shutil.copy2(base.path / name, src / name)
        model = load_classifier(src, task, 0)
        pruner = Pruner(model, DEFAULT_SCOPE)
        pruner.masks = {n: (p.detach() != 0) for n, p in pruner.params.items()}
        pruner.sparsity = 1 - (sum(int(m.sum()) for m in pruner.masks.values())
                               / sum(m.numel() for m in pruner.masks.values()))
        alpha, beta = float(args.get("alpha", 0)), float(args.get("beta", 0))
        logits = hidden = None
        if alpha or beta:
            teacher = load_classifier(dense_path, task, 0)
            logits = torch.from_numpy(predict(teacher, enc, lengths))
            hidden = teacher.eval() if beta else None
        res["time"] = finetune(task, model, enc, lengths, y, int(args.get("epochs", 3)), float(args.get("lr", 5e-5)),
                               int(args.get("bs", 16)), pruner=pruner, teacher=logits, alpha=alpha,
                               hidden_teacher=hidden, beta=beta)
        res["holdout"] = score(task, model, henc, hlengths, hy)
        res["sparsity"] = pruner.sparsity
    else:
        print(f"unknown experiment {exp!r}: dense, oneshot, gmp, upstream or transfer", file=sys.stderr)
        return 2
    res["args"] = args
    print("RESULT", json.dumps(res), flush=True)
    with open(OUT / "results.jsonl", "a") as f:
        f.write(json.dumps(res) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
