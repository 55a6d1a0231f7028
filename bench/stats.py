"""The one statistics module: summaries of raw timing samples (kept in every record, so recomputable)."""

from __future__ import annotations

import numpy as np


def summarize(samples_s: list[float] | np.ndarray) -> dict[str, float]:
    """Percentiles, mean, std and CV of samples in seconds; reported in milliseconds."""
    x = np.asarray(samples_s, dtype=np.float64) * 1e3
    if x.size == 0:
        raise ValueError("no samples")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    q1, q3 = np.percentile(x, [25, 75])
    return {
        "n": int(x.size),
        "p50_ms": float(np.percentile(x, 50)),
        "p90_ms": float(np.percentile(x, 90)),
        "p99_ms": float(np.percentile(x, 99)),
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean if mean > 0 else 0.0,
        "min_ms": float(x.min()),
        "max_ms": float(x.max()),
        "iqr_ms": float(q3 - q1),
    }
