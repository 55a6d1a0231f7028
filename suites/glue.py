"""GLUE accuracy: the cell's fine-tuned artifact evaluated on the task's dev split through adapter.encode/forward.

The same code runs for every runtime × precision × sparsity, so accuracy differences come from the runtime and
variant alone. Batches are sorted by length and padded to a few fixed lengths (multiples of 32), identical for
every runtime; shape-compiling runtimes then compile only a handful of shapes.
"""

from __future__ import annotations

import time

import numpy as np

from bench.errors import CellError, CellSkipped
from bench.glue import data, metrics
from bench.glue.batching import eval_batches, padded_length
from bench.glue.tasks import get_task
from suites import SuiteResult

DEFAULTS = {"batch_size": 32, "max_length": 128}


def run(adapter, cell, settings: dict) -> SuiteResult:
    if not cell.task:
        raise CellError("glue suite needs a cell with a task")
    task = get_task(cell.task)
    art = adapter.artifact
    if not art.pretrained:
        raise CellSkipped(f"{cell.backbone} has random weights (pretrained: false): never an accuracy number")
    if art.task != task.name:
        raise CellError(f"artifact {art.path} is fine-tuned for {art.task!r}, not {task.name!r}")
    try:
        dev = data.load_split(task, "dev")
    except data.DataMissing as exc:
        raise CellSkipped(str(exc)) from exc
    s = DEFAULTS | settings.get("glue", {})
    outputs, seconds, tokens = evaluate(adapter, dev, s["batch_size"], s["max_length"])
    preds = metrics.predictions(task, outputs)
    result = metrics.compute(task, preds, dev.labels)
    return SuiteResult(result | {
        "metric": task.headline, "n": len(dev), "eval_s": seconds, "split": "dev",
        "sequences_per_s": len(dev) / seconds, "tokens_per_s": tokens / seconds,
        "batch_size": s["batch_size"], "max_length": s["max_length"],
        "dev_sha256": data.manifest(task)["splits"]["dev"]["sha256"]})


def evaluate(adapter, split: data.Split, batch_size: int, max_length: int) -> tuple[np.ndarray, float, int]:
    """Outputs for every example in the split's order, forward seconds (encode excluded), padded tokens."""
    lengths = adapter.tokenizer.encode(split.text_a, split.text_b, max_length=max_length,
                                       pad_to_max=False).attention_mask.sum(axis=1)
    outputs: np.ndarray | None = None
    seconds, tokens = 0.0, 0
    for idx in eval_batches(lengths, batch_size):
        width = padded_length(lengths[idx].max(), max_length)
        batch = adapter.encode([split.text_a[i] for i in idx],
                               [split.text_b[i] for i in idx] if split.text_b is not None else None,
                               max_length=width, pad_to_max=True)
        start = time.perf_counter()
        out = np.asarray(adapter.forward(batch), dtype=np.float32)
        seconds += time.perf_counter() - start
        tokens += int(np.prod(batch.shape))
        out = out.reshape(len(idx), -1)
        if outputs is None:
            outputs = np.zeros((len(split), out.shape[1]), dtype=np.float32)
        outputs[idx] = out
    return outputs, seconds, tokens
