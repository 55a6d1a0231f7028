"""How derived model files are made: export settings, the parity probe and the static-INT8 calibration set.

A leaf module: the core that names and caches derived files (bench/exports.py) and the builders that make them
(adapters/build/onnx_export.py, the MXNet INT8 path) both read it, so a recipe has one definition and neither side
imports the other. The shipped sentences are split in two halves that never meet: every other one is the parity
probe, the rest calibrate static INT8 (calibrating on the probe would flatter INT8's agreement).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from bench.config import from_table
from bench.errors import UsageError
from bench.tokenizer import Encoded, Tokenizer, sample_sentences


@dataclass(frozen=True)
class OrtInt8Recipe:
    """ONNX Runtime INT8 of the Linear layers' MatMuls (weights constant; the pooler and classifier are Gemm
    nodes and embeddings Gather nodes, so they stay fp32). A fine-tuned model's fallback set is searched on its
    task's train split (adapters/build/ort_int8.py), never dev: MatMuls are tried back in fp32 in the order of
    how much their quantization moves the outputs, while each step still halves what is left of the distance."""

    per_channel: bool = True
    search_unit: str = "node"  # "node": each MatMul; "role": one role (query, ffn_out, ...) across all layers
    max_fallback: int = 4  # units kept fp32 at most (each costs speed)
    min_gain: float = 0.25  # a fallback step is kept if it removes at least this share of the remaining distance
    calibration: tuple[str, ...] = ("MinMax",)  # static: methods the search chooses from (first = untuned)
    calibration_sizes: tuple[int, ...] = (64,)  # static: task train examples calibrated on, chosen the same way


INT8_FILE = Path(__file__).with_name("int8.toml")
INT8_FILE_ENV = "BENCH_INT8_RECIPES"
INT8_FORMS = ("onnx-int8-dynamic", "onnx-int8-static")
SEARCH_UNITS = ("node", "role")
CALIBRATION_METHODS = ("MinMax",)  # ORT's Percentile/Entropy stack all batches: they need equal shapes


@lru_cache(maxsize=4)
def _ort_int8(path: str) -> dict[str, OrtInt8Recipe]:
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: unreadable INT8 recipe file ({exc})") from exc
    unknown = sorted(set(doc) - set(INT8_FORMS))
    if unknown:
        raise UsageError(f"{path}: unknown table(s) {unknown}; allowed: {list(INT8_FORMS)}")
    out = {}
    for form in INT8_FORMS:
        r = from_table(OrtInt8Recipe, doc.get(form, {}), f"{path} [{form}]")
        bad = ([f"search_unit {r.search_unit!r} (allowed: {', '.join(SEARCH_UNITS)})"]
               if r.search_unit not in SEARCH_UNITS else [])
        bad += [f"calibration {m!r} (allowed: {', '.join(CALIBRATION_METHODS)})"
                for m in r.calibration if m not in CALIBRATION_METHODS]
        bad += [f"calibration_sizes {n} (allowed: 1..{MAX_TASK_EXAMPLES})"
                for n in r.calibration_sizes if n > MAX_TASK_EXAMPLES]
        bad += [f"min_gain {r.min_gain} (allowed: between 0 and 1)"] if not 0 <= r.min_gain <= 1 else []
        if bad:
            raise UsageError(f"{path} [{form}]: {'; '.join(bad)}")
        out[form] = r
    return out


def ort_int8(form: str) -> OrtInt8Recipe:
    """The recipe of an INT8 form, from bench/int8.toml (or $BENCH_INT8_RECIPES), validated."""
    return _ort_int8(os.environ.get(INT8_FILE_ENV) or str(INT8_FILE))[form]


# a model without a task gets no search; static then keeps the FFN output projections in fp32: their input
# (after GELU) has outliers a per-tensor activation scale cannot cover (hidden-state cosine 0.87 -> 0.986 on MiniLM)
UNTUNED_FALLBACK = {"onnx-int8-dynamic": (), "onnx-int8-static": ("ffn_out",)}


def reduce_range() -> bool:
    """7-bit weights only where the CPU lacks VNNI: without it, u8×s8 products are summed in saturating int16
    (AVX2 vpmaddubsw), with VNNI (vpdpbusd) in int32, where full 8-bit weights lose nothing."""
    from bench.environment import native_support

    return not native_support("int8")


def int8_ident(form: str) -> dict:
    """What a quantized file's cache key and record hold of its recipe (the VNNI choice is per machine)."""
    return asdict(ort_int8(form)) | {"reduce_range": reduce_range(), "untuned": UNTUNED_FALLBACK[form]}

# OpenVINO's INT8: NNCF post-training quantization of the fp32 export (adapters/build/nncf_int8.py), NNCF's own
# transformer recipe (model_type transformer: attention-aware placement, SmoothQuant where its backend has it) on the
# same calibration inputs as ORT's static INT8 (calibration sentences, the task's train examples, full-length windows),
# never dev. Bump NNCF_RECIPE when these change.
NNCF_RECIPE = 1
NNCF_INT8 = {"backend": "onnx", "preset": "MIXED", "model_type": "TRANSFORMER", "subset_size": 300,
             "fast_bias_correction": True, "task_examples": 64}


def nncf_ident() -> dict:
    """What the NNCF INT8 file's cache key and record hold of its recipe."""
    return {"nncf_recipe": NNCF_RECIPE} | NNCF_INT8


EXPORT_VERSION = 2  # bump when the export changes the bytes it writes
QUANT_RECIPE = 3  # bump when a quantization recipe changes
ONNX_OPSET = 14  # legacy exporter, IR version 7: DeepSparse reads IR <= 9 only
PROBE_SEQ_LEN = 64
CALIBRATION_SEQ_LEN = 128  # the timing inputs' length: calibrated ranges cover the shapes that are measured
WINDOW_STRIDE = 4  # one window of joined calibration sentences per this many sentences
TASK_EXAMPLES = 64  # train examples of a fine-tuned model's task added to its calibration set (untuned)
MAX_TASK_EXAMPLES = 256  # the most the static search may choose (OrtInt8Recipe.calibration_sizes)
SEARCH_EXAMPLES = 256  # train examples (disjoint from those) that the INT8 fallback search scores against fp32


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


def task_calibration(task: str, n: int = TASK_EXAMPLES) -> tuple[list[str], list[str] | None]:
    """A fine-tuned model's extra calibration inputs: `n` examples of its task's train split, never dev
    (calibrating on what is then scored would flatter INT8), the first of one seeded order, and at most half of a
    small train split, so the search below always has examples of its own. Raises bench.glue.data.DataMissing
    without the train split."""
    if not 0 < n <= MAX_TASK_EXAMPLES:
        raise ValueError(f"task calibration size {n} outside 1..{MAX_TASK_EXAMPLES}")
    a, b, reserved = _train_order(task)
    k = min(n, reserved)
    return a[:k], b[:k] if b else None


def search_sample(task: str) -> tuple[list[str], list[str] | None]:
    """The INT8 fallback search's inputs: SEARCH_EXAMPLES train examples after those any calibration may use, in
    the same seeded order (disjoint from every calibration set, never dev). The fine-tune saw them, so the
    search scores agreement with the fp32 model's outputs, not labels."""
    a, b, reserved = _train_order(task)
    end = reserved + SEARCH_EXAMPLES
    return a[reserved:end], b[reserved:end] if b else None


def _train_order(task: str) -> tuple[list[str], list[str] | None, int]:
    from bench.glue.data import calibration_sample
    from bench.glue.tasks import get_task

    a, b = calibration_sample(get_task(task), n=MAX_TASK_EXAMPLES + SEARCH_EXAMPLES)
    return a, b, min(MAX_TASK_EXAMPLES, len(a) // 2)
