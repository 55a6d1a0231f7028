"""Agreement of an fp32 runtime's outputs with torch fp32 on the same weights: one criterion for the export check
and the parity suite, relative to the output's own scale so it holds across CPUs and kernel choices.

A fixed absolute bound on max |diff| is a statement about one machine: fp32 rounding
differences grow with the magnitude of the values and with the kernels' summation order, which the instruction
set picks (AVX2 vs AVX-512 GEMM blocking, AMX tiles, fused attention). So the bound is scaled by the largest
reference value, and a cosine floor catches an output that is wrong everywhere by a little. The defaults and the
measurements behind them are in README ("fp32 agreement"); a plan may override them in [parity].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from bench.errors import UsageError

SCALE = "max|ref|"


@dataclass(frozen=True)
class Agreement:
    """Pass when max|diff| <= rel_tol * max|ref| and cosine >= min_cosine (real tokens only)."""

    rel_tol: float = 1e-4
    min_cosine: float = 0.999999

    def __post_init__(self) -> None:
        for name in ("rel_tol", "min_cosine"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value < 0 \
                    or math.isinf(value):
                raise UsageError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.min_cosine > 1:
            raise UsageError(f"min_cosine must be <= 1, got {self.min_cosine!r}")

    def describe(self) -> dict:
        return asdict(self) | {"scale": SCALE}

    def judge(self, measured: dict) -> bool:
        """`measured` from `compare`: within the bound and the cosine floor, and finite."""
        return (bool(measured.get("finite", True)) and measured["scaled_max_diff"] <= self.rel_tol
                and measured["cosine"] >= self.min_cosine)

    def explain(self, measured: dict) -> str:
        return (f"max |diff| {measured['max_abs_diff']:.3g} = {measured['scaled_max_diff']:.3g} x max|ref| "
                f"({measured['ref_max_abs']:.3g}; allowed {self.rel_tol:g}), cosine "
                f"{measured['cosine']:.8f} (allowed >= {self.min_cosine:g})")


def compare(ref: np.ndarray, got: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """max |diff|, mean |diff|, max|ref|, their ratio, cosine (flattened) and, for (batch, classes) logits,
    prediction agreement. Hidden states are compared on real tokens only (`mask`): padding means nothing."""
    if ref.shape != got.shape:
        raise ValueError(f"output shape {got.shape} != reference {ref.shape}")
    ref64, got64 = ref.astype(np.float64), got.astype(np.float64)
    if mask is not None and ref.ndim == 3:
        keep = mask.astype(bool)
        ref64, got64 = ref64[keep], got64[keep]
    diff = np.abs(ref64 - got64)
    denom = np.linalg.norm(ref64) * np.linalg.norm(got64)
    scale = float(np.abs(ref64).max()) if ref64.size else 0.0
    out = {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()),
           "cosine": float((ref64 * got64).sum() / denom) if denom else float("nan"),
           "ref_max_abs": scale, "scaled_max_diff": float(diff.max()) / scale if scale else float("inf"),
           "finite": bool(np.isfinite(got).all())}
    if ref.ndim == 2:
        out["agreement"] = float((ref.argmax(-1) == got.argmax(-1)).mean())
    return out


def worst(measurements: list[dict]) -> dict:
    """The least favourable of several comparisons (e.g. the export check's two input shapes)."""
    out = dict(measurements[0])
    for m in measurements[1:]:
        for key in ("max_abs_diff", "mean_abs_diff", "scaled_max_diff"):
            out[key] = max(out[key], m[key])
        out["cosine"] = min(out["cosine"], m["cosine"])
        out["ref_max_abs"] = min(out["ref_max_abs"], m["ref_max_abs"])
        out["finite"] = out["finite"] and m["finite"]
    return out
