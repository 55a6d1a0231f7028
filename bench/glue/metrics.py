"""Official GLUE metrics per task, computed by scikit-learn and scipy (never hand-written formulas).

Values are fractions (0.885, not 88.5); the report and leaderboard show points.
"""

from __future__ import annotations

import numpy as np

from bench.glue.tasks import Task


def predictions(task: Task, outputs: np.ndarray) -> np.ndarray:
    """Model outputs (logits, or the regression score) → predicted label ids or scores."""
    outputs = np.asarray(outputs, dtype=np.float32)
    if task.is_regression:
        return outputs.reshape(len(outputs), -1)[:, 0]
    if outputs.ndim != 2 or outputs.shape[1] != task.num_labels:
        raise ValueError(f"{task.name}: expected logits of shape (n, {task.num_labels}), got {outputs.shape} "
                         "(is this a fine-tuned artifact with the task head?)")
    return outputs.argmax(axis=1)


def compute(task: Task, preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The task's official metrics: accuracy (SST-2, RTE, QNLI), F1 + accuracy (MRPC), Matthews correlation
    (CoLA), Pearson + Spearman (STS-B)."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

    preds, labels = np.asarray(preds), np.asarray(labels)
    if len(preds) != len(labels) or not len(labels):
        raise ValueError(f"{task.name}: {len(preds)} predictions for {len(labels)} labels")
    out: dict[str, float] = {}
    for metric in task.metrics:
        if metric == "accuracy":
            out[metric] = float(accuracy_score(labels, preds))
        elif metric == "f1":
            out[metric] = float(f1_score(labels, preds))  # positive class 1 = "equivalent", as GLUE
        elif metric == "mcc":
            out[metric] = float(matthews_corrcoef(labels, preds))
        elif metric == "pearson":
            out[metric] = float(pearsonr(preds, labels)[0])
        elif metric == "spearman":
            out[metric] = float(spearmanr(preds, labels)[0])
        else:
            raise ValueError(f"unknown metric {metric!r}")
    return out
