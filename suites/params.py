"""Parameter counts as the runtime holds them: total, trainable, nonzero (sparsity) and bytes.

For pruned artifacts it also reports the sparsity of the pruned scope, read from the artifact the runtime
loaded, so the requested sparsity can be checked (whole-model sparsity is lower: embeddings are kept).
"""

from __future__ import annotations

from bench.catalogue import get_backbone
from bench.pruning import scope_sparsity
from suites.base import Suite, SuiteResult


class Params(Suite):
    name = "params"
    forwards = False  # counts what the adapter holds; never runs the model

    def summary(self, cell, metrics: dict, runtime: dict) -> str:
        return f"{metrics['total'] / 1e6:.2f}M params, {metrics['bytes'] / 2**20:.1f} MiB"

    def run(self, adapter, cell, settings) -> SuiteResult:
        return measure(adapter, cell)


def measure(adapter, cell) -> SuiteResult:
    counts = adapter.parameters()
    published = get_backbone(cell.backbone).published_params_m
    art = adapter.artifact
    metrics = {
        "total": counts.total,
        "trainable": counts.trainable,
        "nonzero": counts.nonzero,
        "bytes": counts.bytes,
        "sparsity": 1.0 - counts.nonzero / counts.total if counts.total else 0.0,
        "published_params_m": published,
    }
    if art is not None and (art.path / "model.safetensors").is_file():
        scope = scope_sparsity(art.path / "model.safetensors")
        metrics |= {"target_sparsity": art.sparsity, "scope_sparsity": scope["scope_sparsity"],
                    "scope_params": scope["scope_params"], "checkpoint_total": scope["total"],
                    "checkpoint_nonzero": scope["nonzero"]}
    return SuiteResult(metrics)


SUITE = Params()
