"""Parameter counts as the runtime holds them: total, trainable, nonzero (sparsity) and bytes."""

from __future__ import annotations

from bench.catalogue import get_backbone
from suites import SuiteResult


def run(adapter, cell, settings: dict) -> SuiteResult:
    counts = adapter.parameters()
    published = get_backbone(cell.backbone).published_params_m
    return SuiteResult({
        "total": counts.total,
        "trainable": counts.trainable,
        "nonzero": counts.nonzero,
        "bytes": counts.bytes,
        "sparsity": 1.0 - counts.nonzero / counts.total if counts.total else 0.0,
        "published_params_m": published,
    })
