"""Length bucketing: batches of similar-length examples, so dynamic padding wastes little compute.

Shared by fine-tuning (shuffled buckets) and evaluation (sorted, padded to a few fixed lengths so every runtime,
including shape-compiled ones, sees identical inputs and compiles few shapes).
"""

from __future__ import annotations

import numpy as np

EVAL_LENGTH_STEP = 32  # eval batches are padded to a multiple of this (≤ max_length)


def train_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 50) -> list[np.ndarray]:
    """One epoch of index batches: shuffle, sort pools of `pool` batches by length, cut, shuffle batch order.
    Randomness comes only from `rng`, so a seed fixes the whole epoch."""
    order = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    step = batch_size * pool
    for start in range(0, len(order), step):
        chunk = order[start:start + step]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def eval_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index batches in length order (deterministic), so padding per batch stays small."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def padded_length(longest: int, max_length: int, step: int = EVAL_LENGTH_STEP) -> int:
    """The bucket a batch is padded to: the next multiple of `step`, capped at max_length."""
    return min(max_length, max(step, -(-int(longest) // step) * step))
