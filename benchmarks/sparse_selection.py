"""Issue 21: every sparse candidate of bench/glue/hparams.toml on one task, chosen on a hold-out of TRAIN, then
each scored on dev against the dense fine-tuned model (paired bootstrap, McNemar) for the record.

    python benchmarks/sparse_selection.py mrpc 0.8 0.9 [--candidates gmp,obert,transfer] [--threads 2]

The selection is the harness's own (bench.glue.finetune.select_sparse with every candidate): each candidate
trains on train minus a seeded 10% hold-out and is scored there; the winner is the model the glue cells run with
`[sparse.select] candidates` set to the same list. Dev plays no part in the choice: it is scored afterwards,
for every candidate, so results/ can show what the choice cost. Training is cached and resumable (a second call
trains nothing). Runs in the torch environment; one JSON line per (task, target) is appended to
results/glue/sparse-selection-<machine fingerprint>/selection-<task>.jsonl (or --out DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("BENCH_CACHE", str(ROOT / ".cache" / "backbone-bench"))
os.environ.setdefault("BENCH_GLUE_DIR", str(ROOT.parent / "shared" / "glue"))
os.environ.setdefault("BENCH_CORPUS_DIR", str(ROOT.parent / "shared" / "corpus"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(ROOT))

from bench.artifacts import Artifact, artifact_for  # noqa: E402
from bench.catalogue import get_backbone  # noqa: E402
from bench.environment import machine_fingerprint  # noqa: E402
from bench.glue import data, finetune, metrics  # noqa: E402
from bench.glue.recipes import hparams_for, sparse_selection  # noqa: E402
from bench.glue.tasks import get_task  # noqa: E402
from bench.stats import paired_change  # noqa: E402
from bench.tokenizer import Tokenizer  # noqa: E402


def dev_predictions(art: Artifact, task, threads: int):
    import torch

    from adapters.build.torch_finetune import load_classifier, predict

    torch.set_num_threads(threads)
    dev = data.load_split(task, "dev")
    tok = Tokenizer.from_dir(art.path, vocab_size=art.config.get("vocab_size"))
    enc = tok.encode(dev.text_a, dev.text_b, max_length=hparams_for(task).max_length, pad_to_max=False)
    model = load_classifier(art.path, task, 0).eval()
    with torch.no_grad():
        out = predict(model, enc, enc.attention_mask.sum(axis=1))
    return metrics.predictions(task, out), dev.labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("targets", nargs="+", type=float)
    ap.add_argument("--candidates", default="gmp,obert,transfer")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "glue" / f"sparse-selection-{machine_fingerprint()}")
    args = ap.parse_args()
    task = get_task(args.task)
    sel = replace(sparse_selection(), candidates=tuple(args.candidates.split(",")))
    base = artifact_for(get_backbone("minilm-l6-h384"))
    if data.task_manifest(task) is None:
        print(data.prepare_hint(task), file=sys.stderr)
        return 2
    started = time.perf_counter()
    dense = finetune.finetuned(base, task, 0, args.threads)
    dense_preds, labels = dev_predictions(dense, task, args.threads)
    dense_dev = metrics.compute(task, dense_preds, labels)
    dense_stats = json.loads((dense.path / "meta.json").read_text())["finetune"]["stats"]
    print(f"dense {task.name} dev {task.headline}={dense_dev[task.headline]:.4f} ({dense_stats['time_s']:.0f} s)",
          flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for target in args.targets:
        chosen = finetune.select_sparse(base, task, target, 0, args.threads, selection=sel)
        record = finetune.selection_of(chosen) or {}
        rows = []
        for cand in record.get("candidates", []):
            art = Artifact.load(finetune.cache_root() / "artifacts" / cand["artifact"])
            preds, _ = dev_predictions(art, task, args.threads)
            change = paired_change(task.headline, dense_preds, preds, labels)
            dev = metrics.compute(task, preds, labels)
            rows.append(cand | {"dev": dev, "dev_vs_dense": asdict(change)})
            print(f"{task.name} {target:.0%} {cand['candidate']:9s} holdout {task.headline}="
                  f"{cand['holdout'][task.headline]:.4f}  dev={dev[task.headline]:.4f}  vs dense "
                  f"{change.points:+.2f} [{change.low_points:+.2f}, {change.high_points:+.2f}] points  "
                  f"train {cand['train_s']:.0f} s", flush=True)
        line = {"task": task.name, "target": target, "metric": task.headline, "chosen": record.get("chosen"),
                "holdout": asdict(sel), "dense": {"dev": dense_dev, "train_s": dense_stats["time_s"],
                                                  "artifact": dense.path.name},
                "candidates": rows, "machine": machine_fingerprint(), "threads": args.threads,
                "command": " ".join(["python", "benchmarks/sparse_selection.py", *sys.argv[1:]]),
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "wall_s": time.perf_counter() - started}
        with open(args.out / f"selection-{task.name}.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, sort_keys=True) + "\n")
        print(f"{task.name} {target:.0%}: chose {record.get('chosen')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
