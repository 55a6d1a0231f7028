"""Parity: a cell's outputs on a fixed probe of real sentences vs torch fp32 outputs of the same weights.

The reference was computed once in the torch environment and cached beside the artifact (bench/exports.py),
so runtimes without torch are checked too. Hidden states are compared on real tokens only (padding
positions carry no meaning); task heads also report how often the predicted class agrees. fp32 cells are judged
by the plan's agreement criterion (bench/agreement.py), which every record carries with the measured values; an
fp32 cell outside it fails, with the measured values in the reason.
"""

from __future__ import annotations

import numpy as np

from bench import agreement, exports
from bench.errors import CellError
from suites import SuiteResult

FP32 = ("fp32",)


def run(adapter, cell, settings: dict) -> SuiteResult:
    criterion = agreement.Agreement(**{k: v for k, v in (settings.get("parity") or {}).items() if k != "scale"})
    reference = exports.load_reference(adapter.artifact)
    batch = adapter.encode(exports.probe_texts(), max_length=exports.PROBE_SEQ_LEN)
    if not np.array_equal(batch.encoded.input_ids, reference.encoded.input_ids):
        raise CellError("parity: this runtime's token ids differ from the reference's (tokenizer path changed?)")
    try:
        metrics = agreement.compare(reference.output, adapter.forward(batch), reference.encoded.attention_mask)
    except ValueError as exc:
        raise CellError(f"parity: {exc}") from exc
    metrics |= {"probe_sentences": int(batch.shape[0]), "probe_seq_len": int(batch.shape[1]),
                "criterion": criterion.describe() if cell.precision in FP32 else None}
    if cell.precision in FP32:
        metrics["within_tolerance"] = criterion.judge(metrics)
        if not metrics["within_tolerance"]:  # the same weights giving other outputs: the row's numbers mean nothing
            raise CellError(f"parity: fp32 outputs disagree with torch fp32 beyond the [parity] criterion: "
                            f"{criterion.explain(metrics)}")
    return SuiteResult(metrics)
