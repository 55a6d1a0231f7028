"""How derived model files are made: export settings, the parity probe and the static-INT8 calibration set.

A leaf module: the core that names and caches derived files (bench/exports.py) and the builders that make them
(adapters/build/onnx_export.py, the MXNet INT8 path) both read it, so a recipe has one definition and neither side
imports the other. The shipped sentences are split in two halves that never meet: every other one is the parity
probe, the rest calibrate static INT8 (calibrating on the probe would flatter INT8's agreement).
"""

from __future__ import annotations

from bench.tokenizer import Encoded, Tokenizer, sample_sentences

EXPORT_VERSION = 2  # bump when the export changes the bytes it writes
QUANT_RECIPE = 2  # bump when a quantization recipe changes
ONNX_OPSET = 14  # legacy exporter, IR version 7: DeepSparse reads IR <= 9 only
PROBE_SEQ_LEN = 64
CALIBRATION_SEQ_LEN = 128  # the timing inputs' length: calibrated ranges cover the shapes that are measured
WINDOW_STRIDE = 4  # one window of joined calibration sentences per this many sentences
TASK_EXAMPLES = 64  # train examples of a fine-tuned model's task added to its calibration set


def probe_texts() -> list[str]:
    """The parity probe: every other shipped sentence."""
    return sample_sentences()[0::2]


def probe(tokenizer: Tokenizer) -> Encoded:
    return tokenizer.encode(probe_texts(), max_length=PROBE_SEQ_LEN, pad_to_max=True)


def calibration_texts() -> list[str]:
    """Static-INT8 calibration sentences: the shipped sentences the probe does not use."""
    return sample_sentences()[1::2]


def calibration_windows() -> list[str]:
    """Runs of real text long enough to fill CALIBRATION_SEQ_LEN tokens, so the calibrated ranges cover full-length
    inputs and not only short sentences."""
    texts = calibration_texts()
    return [" ".join(texts[start:] + texts[:start]) for start in range(0, len(texts), WINDOW_STRIDE)]


def task_calibration(task: str) -> tuple[list[str], list[str] | None]:
    """A fine-tuned model's extra calibration inputs: examples of its task's train split, never dev (calibrating on
    what is then scored would flatter INT8). Raises bench.glue.data.DataMissing without the train split."""
    from bench.glue.data import calibration_sample
    from bench.glue.tasks import get_task

    return calibration_sample(get_task(task), n=TASK_EXAMPLES)
