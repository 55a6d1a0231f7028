"""Paired accuracy statistics (bench/stats/accuracy.py): vectorized GLUE metrics that agree with scikit-learn/scipy, the
paired bootstrap interval of a row's change from the reference on the same dev examples, McNemar's exact test,
and the verdict against a relative-drop budget."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from bench import stats

RNG = np.random.default_rng(7)
LABELS = RNG.integers(0, 2, 600)
REF = np.where(RNG.random(600) < 0.85, LABELS, 1 - LABELS)


def flip(preds: np.ndarray, share: float, seed: int = 0) -> np.ndarray:
    out = preds.copy()
    idx = np.random.default_rng(seed).choice(len(out), int(share * len(out)), replace=False)
    out[idx] = 1 - out[idx]
    return out


@pytest.mark.parametrize(("name", "reference"), [
    ("accuracy", lambda p, y: accuracy_score(y, p)), ("f1", lambda p, y: f1_score(y, p)),
    ("mcc", lambda p, y: matthews_corrcoef(y, p))])
def test_vectorized_classification_metrics_equal_scikit_learns(name, reference):
    assert stats.headline_metric(name, REF, LABELS) == pytest.approx(reference(REF, LABELS), abs=1e-12)
    batch = np.stack([REF, flip(REF, 0.1), flip(REF, 0.3, seed=1)])
    expected = [reference(p, LABELS) for p in batch]
    assert stats.headline_metric(name, batch, np.broadcast_to(LABELS, batch.shape)) == pytest.approx(expected)


def test_vectorized_mcc_is_zero_like_scikit_learn_when_one_class_is_never_predicted():
    assert stats.headline_metric("mcc", np.zeros(10), np.r_[np.zeros(5), np.ones(5)]) == 0.0


def test_vectorized_correlations_equal_scipys():
    x = RNG.normal(size=300)
    y = x + RNG.normal(size=300)
    assert stats.headline_metric("pearson", x, y) == pytest.approx(pearsonr(x, y)[0])
    assert stats.headline_metric("spearman", x, y) == pytest.approx(spearmanr(x, y)[0])


def test_identical_predictions_change_nothing_with_a_zero_width_interval():
    c = stats.paired_change("accuracy", REF, REF, LABELS)
    assert (c.points, c.low_points, c.high_points, c.discordant, c.mcnemar_p) == (0, 0, 0, 0, 1.0)
    assert c.verdict(1.0) == "within"


def test_the_paired_interval_covers_the_change_and_is_narrower_than_independent_intervals():
    new = flip(REF, 0.04)
    c = stats.paired_change("accuracy", REF, new, LABELS)
    assert c.low_points <= c.points <= c.high_points
    # two independent accuracies: their difference's interval is about ±1.96·sqrt(2·p(1-p)/n) ≈ ±4 points here
    independent = 2 * 1.96 * np.sqrt(2 * 0.85 * 0.15 / len(LABELS)) * 100
    assert c.high_points - c.low_points < independent / 2
    assert c.relative_pct == pytest.approx(100 * c.points / (100 * accuracy_score(LABELS, REF)))


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_examples():
    new = REF.copy()
    new[:30] = LABELS[:30]  # fixes whatever the reference got wrong in the first 30
    wrong = np.flatnonzero(new == LABELS)[-10:]
    new[wrong] = 1 - LABELS[wrong]  # and breaks ten it got right
    c = stats.paired_change("accuracy", REF, new, LABELS)
    b = int(((REF == LABELS) & (new != LABELS)).sum())
    cc = int(((REF != LABELS) & (new == LABELS)).sum())
    assert c.discordant == b + cc and c.mcnemar_p == pytest.approx(binomtest(b, b + cc, 0.5).pvalue)


def test_a_regression_task_gets_an_interval_but_no_mcnemar_test():
    y = RNG.normal(size=400)
    ref = y + RNG.normal(size=400) * 0.3
    c = stats.paired_change("pearson", ref, ref + RNG.normal(size=400) * 0.05, y)
    assert c.mcnemar_p is None and c.discordant is None and c.low_pct <= c.relative_pct <= c.high_pct


@pytest.mark.parametrize(("low", "high", "verdict"), [
    (-0.4, 0.3, "within"), (-1.5, -0.2, "unresolved"), (-3.0, -1.2, "beyond")])
def test_the_budget_verdict_reads_the_whole_interval(low, high, verdict):
    c = stats.PairedChange("accuracy", 100, (low + high) / 2, low, high, (low + high) / 2, low, high, None, None)
    assert c.verdict(1.0) == verdict


def test_a_paired_change_needs_predictions_of_the_same_examples():
    with pytest.raises(ValueError, match="same examples"):
        stats.paired_change("accuracy", REF, REF[:-1], LABELS)
