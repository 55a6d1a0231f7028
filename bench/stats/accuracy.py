"""Accuracy on the same dev examples (the glue suite keeps every prediction): paired intervals and tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.stats.samples import points


def headline_metric(name: str, preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A GLUE headline metric (fraction) along the last axis, so a bootstrap scores thousands of resamples in one
    call; tests hold each against scikit-learn/scipy. Binary tasks only for f1 and mcc, as GLUE scores them."""
    from scipy.stats import pearsonr, rankdata

    preds, labels = np.asarray(preds, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if name == "accuracy":
        return (preds == labels).mean(axis=-1)
    if name in ("pearson", "spearman"):
        if name == "spearman":
            preds, labels = rankdata(preds, axis=-1), rankdata(labels, axis=-1)
        with np.errstate(all="ignore"):
            return np.asarray(pearsonr(preds, labels, axis=-1).statistic, dtype=np.float64)
    tp, fp = (preds * labels).sum(-1), (preds * (1 - labels)).sum(-1)
    fn, tn = ((1 - preds) * labels).sum(-1), ((1 - preds) * (1 - labels)).sum(-1)
    with np.errstate(all="ignore"):
        if name == "f1":
            return np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        if name == "mcc":  # scikit-learn's convention: 0 when a marginal is empty
            return np.nan_to_num((tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    raise ValueError(f"unknown GLUE metric {name!r}")


@dataclass(frozen=True)
class PairedChange:
    """A row's headline metric against the reference row's on the same dev examples: the change in points and
    relative (%), each with a paired-bootstrap interval, and for classification McNemar's exact test of the
    examples the two get right/wrong differently (`discordant`)."""

    metric: str
    n: int
    points: float
    low_points: float
    high_points: float
    relative_pct: float
    low_pct: float
    high_pct: float
    mcnemar_p: float | None
    discordant: int | None
    seeds: int = 1  # fine-tuning seeds pooled: n counts (seed, example) pairs, n / seeds dev examples

    def verdict(self, budget_pct: float) -> str:
        """Against a relative-drop budget: "within" (the whole interval), "beyond" (the whole interval) or
        "unresolved" (the dev set cannot tell)."""
        if self.low_pct >= -budget_pct - 1e-9:
            return "within"
        return "beyond" if self.high_pct < -budget_pct - 1e-9 else "unresolved"


def paired_change(metric: str, reference: Sequence[float], new: Sequence[float], labels: Sequence[float],
                  confidence: float = 0.95, resamples: int = 4000, seed: int = 0) -> PairedChange:
    """Bootstrap over dev examples, resampling the same examples for both rows (scipy.stats.bootstrap,
    paired, percentile): the interval reflects how much the *difference* moves with the sample, far narrower
    than two independent intervals when the rows agree on most examples."""
    from scipy.stats import binomtest, bootstrap

    ref, new, y = (np.asarray(a, dtype=np.float64) for a in (reference, new, labels))
    if not (len(ref) == len(new) == len(y)) or len(y) < 2:
        raise ValueError(f"paired change needs predictions of the same examples: {len(ref)}, {len(new)}, {len(y)}")
    base = float(headline_metric(metric, ref, y))
    scale = abs(base) or math.nan

    def change(r, v, lab, axis=-1):
        return headline_metric(metric, v, lab) - headline_metric(metric, r, lab)

    centre = float(change(ref, new, y))
    if np.array_equal(ref, new):
        low = high = 0.0
    else:
        ci = bootstrap((ref, new, y), change, paired=True, vectorized=True, n_resamples=resamples,
                       confidence_level=confidence, method="percentile", batch=500,
                       rng=np.random.default_rng(seed)).confidence_interval
        low, high = float(ci.low), float(ci.high)
    p = discordant = None
    if metric != "pearson" and metric != "spearman":
        right_ref, right_new = ref == y, new == y
        b, c = int((right_ref & ~right_new).sum()), int((~right_ref & right_new).sum())
        discordant, p = b + c, (float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0)
    return PairedChange(metric, len(y), points(centre), points(low), points(high), 100 * centre / scale,
                        100 * low / scale, 100 * high / scale, p, discordant)
