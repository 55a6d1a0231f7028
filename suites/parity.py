"""Parity: a cell's outputs on a fixed probe of real sentences vs torch fp32 outputs of the same weights.

The reference configuration's outputs were computed once in the torch environment and cached beside the
artifact (bench/exports.py), so runtimes without torch are checked too. Hidden states are compared on real tokens
only (padding positions carry no meaning); task heads also report how often the predicted class agrees. fp32
cells are judged by the plan's agreement criterion (bench/agreement.py), which every record carries with the
measured values; an fp32 cell outside it fails, with the measured values in the reason.
"""

from __future__ import annotations

import numpy as np

from bench import agreement, exports, recipes
from bench.agreement import Agreement
from bench.errors import CellError
from suites.base import Suite, SuiteResult

FP32 = ("fp32",)


class Parity(Suite):
    """[parity] holds the fp32 agreement criterion, which also judges every fp32 export (bench/exports.py)."""

    name = "parity"
    settings_type = Agreement
    reads = (exports.REFERENCE_OUTPUTS,)

    def describe(self, settings: Agreement) -> dict:
        return settings.describe()

    def settings_from_record(self, described: dict | None) -> Agreement:
        return Agreement(**{k: v for k, v in (described or {}).items() if k != "scale"})

    def summary(self, cell, metrics: dict, runtime: dict) -> str:
        return f"max |diff| {metrics['max_abs_diff']:.2g}, cosine {metrics['cosine']:.6f} vs torch fp32"

    def run(self, adapter, cell, settings: Agreement) -> SuiteResult:
        return measure(adapter, cell, settings)


def measure(adapter, cell, criterion: Agreement) -> SuiteResult:
    reference = exports.load_reference(adapter.artifact)
    batch = adapter.encode(recipes.probe_texts(), max_length=recipes.PROBE_SEQ_LEN)
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


SUITE = Parity()
