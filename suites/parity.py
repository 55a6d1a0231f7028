"""Parity: a cell's outputs on a fixed probe of real sentences vs torch fp32 outputs of the same weights.

The reference was computed once in the torch environment and cached beside the artifact (bench/exports.py),
so runtimes without torch are checked too. Hidden states are compared on real tokens only (padding
positions carry no meaning); task heads also report how often the predicted class agrees.
"""

from __future__ import annotations

import numpy as np

from bench import exports
from bench.errors import CellError
from suites import SuiteResult

FP32 = ("fp32",)


def compare(ref: np.ndarray, got: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """max |diff|, mean |diff|, cosine (flattened) and, for (batch, classes) logits, prediction agreement."""
    if ref.shape != got.shape:
        raise CellError(f"parity: output shape {got.shape} != reference {ref.shape}")
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    if mask is not None and ref.ndim == 3:
        keep = mask.astype(bool)
        ref64, got64 = ref64[keep], got64[keep]
    diff = np.abs(ref64 - got64)
    denom = np.linalg.norm(ref64) * np.linalg.norm(got64)
    out = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
           "cosine": float((ref64 * got64).sum() / denom) if denom else float("nan"),
           "ref_max_abs": float(np.abs(ref64).max()), "finite": bool(np.isfinite(got).all())}
    if ref.ndim == 2:
        out["agreement"] = float((ref.argmax(-1) == got.argmax(-1)).mean())
    return out


def run(adapter, cell, settings: dict) -> SuiteResult:
    reference = exports.load_reference(adapter.artifact)
    batch = adapter.encode(exports.probe_texts(), max_length=exports.PROBE_SEQ_LEN)
    if not np.array_equal(batch.encoded.input_ids, reference.encoded.input_ids):
        raise CellError("parity: this runtime's token ids differ from the reference's (tokenizer path changed?)")
    metrics = compare(reference.output, adapter.forward(batch), reference.encoded.attention_mask)
    metrics |= {"probe_sentences": int(batch.shape[0]), "probe_seq_len": int(batch.shape[1]),
                "tolerance": exports.PARITY_TOLERANCE if cell.precision in FP32 else None}
    if cell.precision in FP32:
        metrics["within_tolerance"] = metrics["max_abs_diff"] <= exports.PARITY_TOLERANCE
    return SuiteResult(metrics)
