"""ONNX Runtime INT8 files (dynamic, and static QDQ) from the published fp32 export, with bench/recipes.py's
recipe, and the fallback search that picks which MatMuls stay fp32 for a fine-tuned model.

The search is Neural Compressor's accuracy-driven fallback made cheap and label-free: on a slice of the task's
train split (disjoint from the calibration examples; never dev) every candidate unit is measured by how much
quantizing all but it moves the outputs from the fp32 file's ("distance": mean squared difference over the fp32
outputs' variance; for classifiers the share of flipped predictions breaks ties). Units then go back to fp32 in
that order while each step removes at least `min_gain` of the distance left, up to `max_fallback` units. For
static INT8 the calibration method is chosen the same way, before the fallback search.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from bench import recipes
from bench.artifacts import Artifact
from bench.files import atomic_write
from bench.keys import digest
from bench.tokenizer import Tokenizer

QUANT_OPS = ["MatMul"]
QUANT_OPTIONS = {"MatMulConstBOnly": True}  # the Linear layers' weights; not the attention score MatMuls
ROLES = {"query": "/attention/self/query/", "key": "/attention/self/key/", "value": "/attention/self/value/",
         "attn_out": "/attention/output/dense/", "ffn_in": "/intermediate/dense/", "ffn_out": "/output/dense/"}
SEARCH_BATCH = 32


@contextlib.contextmanager
def quiet_root_logger():
    """ORT's quantizer logs advice ("consider pre-processing") on the root logger for every call."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def role_of(node: str) -> str | None:
    """The Linear layer a weight MatMul belongs to, from the exporter's node names; FFN output before attention
    output would misread "/attention/output/dense/", hence the order."""
    for role in ("attn_out", "query", "key", "value", "ffn_in", "ffn_out"):
        if ROLES[role] in node:
            return role
    return None


def weight_matmuls(source: Path) -> list[str]:
    """The MatMul nodes the recipe quantizes: those with a constant (initializer) weight."""
    import onnx

    graph = onnx.load(str(source), load_external_data=False).graph
    consts = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and any(i in consts for i in n.input)]


def _units(nodes: list[str], unit: str) -> dict[str, list[str]]:
    if unit == "node":
        return {n: [n] for n in nodes}
    out: dict[str, list[str]] = {}
    for n in nodes:
        out.setdefault(role_of(n) or n, []).append(n)
    return out


class _Calibration:
    """Static-INT8 calibration batches (bench/recipes.py): each calibration sentence alone (no padding), a
    fine-tuned model's task examples in batches of 8, and windows of real text filling the timing length."""

    def __init__(self, tok: Tokenizer, names: list[str], artifact: Artifact | None = None,
                 task_examples: int = recipes.TASK_EXAMPLES):
        n = recipes.CALIBRATION_SEQ_LEN
        batches = [tok.encode([t], max_length=n, pad_to_max=False) for t in recipes.calibration_texts()]
        if artifact is not None and artifact.task:
            a, b = recipes.task_calibration(artifact.task, task_examples)
            batches += [tok.encode(a[i:i + 8], b[i:i + 8] if b else None, max_length=n, pad_to_max=False)
                        for i in range(0, len(a), 8)]
        batches += [tok.encode([window], max_length=n) for window in recipes.calibration_windows()]
        self._feeds = iter([{n: b.as_dict()[n] for n in names} for b in batches])

    def get_next(self) -> dict | None:
        return next(self._feeds, None)

    def feeds(self) -> list[dict]:
        """All batches at once (NNCF's calibration dataset, adapters/build/nncf_int8.py)."""
        return list(self._feeds)

    def rewind(self) -> None:  # ORT calls it between calibration passes; one pass is all we need
        pass


def write(artifact: Artifact, form: str, source: Path, out: Path, exclude: list[str],
          calibration: tuple[str, int]) -> None:
    """One quantization of `source` to `out`, the `exclude`d MatMuls left fp32; static INT8 calibrated by
    `calibration` = (method, task train examples)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    recipe = recipes.ort_int8(form)
    weights = {"per_channel": recipe.per_channel, "reduce_range": recipes.reduce_range()}
    with warnings.catch_warnings(), quiet_root_logger():
        warnings.simplefilter("ignore")
        if form == "onnx-int8-dynamic":
            quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=QUANT_OPS,
                             nodes_to_exclude=exclude, extra_options=QUANT_OPTIONS, **weights)
            return
        names = [i.name for i in onnx.load(str(source), load_external_data=False).graph.input]
        method, examples = calibration
        reader = type("Reader", (_Calibration, CalibrationDataReader), {})(
            Tokenizer.from_dir(artifact.path, vocab_size=artifact.vocab_size or None), names, artifact, examples)
        quantize_static(str(source), str(out), reader, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=QUANT_OPS,
                        calibrate_method=getattr(CalibrationMethod, method), nodes_to_exclude=exclude,
                        extra_options=QUANT_OPTIONS, **weights)


class _Scorer:
    """Outputs of a file on the search slice, and their distance from the fp32 file's."""

    def __init__(self, artifact: Artifact, source: Path):
        a, b = recipes.search_sample(artifact.task)
        tok = Tokenizer.from_dir(artifact.path, vocab_size=artifact.vocab_size or None)
        order = np.argsort([len(t) + len(b[i] if b else "") for i, t in enumerate(a)])  # similar lengths together
        self.batches = [tok.encode([a[i] for i in idx], [b[i] for i in idx] if b else None, max_length=128,
                                   pad_to_max=False) for idx in np.array_split(order, max(1, len(a) // SEARCH_BATCH))]
        self.n = len(a)
        self.reference = self.outputs(source)
        self.scale = float(self.reference.var()) or 1.0

    def outputs(self, path: Path) -> np.ndarray:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), ort.SessionOptions(), providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        return np.concatenate([np.asarray(session.run(None, {k: e.as_dict()[k] for k in names})[0], np.float32)
                               .reshape(len(e.input_ids), -1) for e in self.batches])

    def distance(self, path: Path) -> dict:
        got = self.outputs(path)
        out = {"distance": float(((got - self.reference) ** 2).mean() / self.scale)}
        if self.reference.shape[1] > 1:
            out["flipped"] = float((got.argmax(1) != self.reference.argmax(1)).mean())
        return out


def _rank(score: dict) -> tuple:
    return (score["distance"], score.get("flipped", 0.0))


def search(artifact: Artifact, form: str, source: Path, out: Path) -> tuple[list[str], tuple[str, int], dict]:
    """The fp32 fallback set and calibration for a fine-tuned artifact (see the module docstring); leaves the
    chosen quantization written at `out`. Returns (excluded nodes, (method, examples), what to record)."""
    trial = out.with_name(out.name + ".trial.onnx")
    try:
        return _search(artifact, form, source, out, trial)
    finally:
        trial.unlink(missing_ok=True)


def _search(artifact: Artifact, form: str, source: Path, out: Path, trial: Path) -> tuple[list[str], tuple, dict]:
    recipe = recipes.ort_int8(form)
    started = time.perf_counter()
    scorer = _Scorer(artifact, source)
    # every score is kept as it is measured: an interrupted search resumes where it stopped (scores are
    # deterministic, so the resumed search chooses what an uninterrupted one would)
    progress = source.with_name(f"{form.removeprefix('onnx-')}-search-"
                                f"{digest([source.name, recipes.int8_ident(form)], 12)}.json")
    try:
        memo = json.loads(progress.read_text()) if progress.is_file() else {}
    except (OSError, json.JSONDecodeError):
        memo = {}  # a damaged progress file: start over
    evaluations, resumed = 0, len(memo)

    def score(exclude: list[str], calibration: tuple[str, int]) -> dict:
        nonlocal evaluations
        key = json.dumps([sorted(exclude), list(calibration)])
        if key not in memo:
            evaluations += 1
            write(artifact, form, source, trial, exclude, calibration)
            memo[key] = scorer.distance(trial)
            atomic_write(progress, json.dumps(memo))
        return memo[key]

    options = calibrations(form)
    units = _units(weight_matmuls(source), recipe.search_unit)
    # a search is minutes per checkpoint and runs before any cell: say so, as a fine-tune does
    kind = form.removeprefix("onnx-int8-")
    print(f"bench: INT8 {kind} fallback search for {artifact.path.name} on {scorer.n} train examples, at most "
          f"{len(options) + len(units) + recipe.max_fallback} evaluations"
          + (f" ({resumed} kept from an interrupted search)" if resumed else ""), file=sys.stderr, flush=True)
    by_calibration = {c: score([], c) for c in options}
    chosen_cal = min(by_calibration, key=lambda c: _rank(by_calibration[c]))
    full = by_calibration[chosen_cal]
    gains = {u: full["distance"] - score(nodes, chosen_cal)["distance"] for u, nodes in units.items()}
    order = sorted(gains, key=lambda u: -gains[u])
    chosen, current, path = [], full, []
    for u in order[:recipe.max_fallback]:
        if gains[u] <= 0:
            break
        trial_score = score([n for c in [*chosen, u] for n in units[c]], chosen_cal)
        kept = current["distance"] - trial_score["distance"] >= recipe.min_gain * current["distance"]
        path.append({"unit": u, **trial_score, "kept": kept})
        if not kept:
            break
        chosen, current = [*chosen, u], trial_score
    exclude = [n for c in chosen for n in units[c]]
    write(artifact, form, source, out, exclude, chosen_cal)
    print(f"bench: INT8 {kind} search for {artifact.path.name} done: {evaluations} evaluations, "
          f"{len(exclude)} MatMuls kept fp32, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return exclude, chosen_cal, {
        "search_examples": scorer.n, "search_split": "train (disjoint from calibration; never dev)",
        "search_unit": recipe.search_unit, "all_quantized": full,
        "calibration_scores": {f"{m} {n}" if form == "onnx-int8-static" else "dynamic": v
                               for (m, n), v in by_calibration.items()},
        "chosen": current, "fallback_units": chosen, "steps": path, "evaluations": evaluations,
        "resumed_scores": resumed,
        "top_gains": {u: gains[u] for u in order[:8]}, "search_s": time.perf_counter() - started}


def calibrations(form: str) -> list[tuple[str, int]]:
    """(method, task examples) pairs a search tries; the first is the untuned choice. Dynamic INT8 has none."""
    recipe = recipes.ort_int8(form)
    if form != "onnx-int8-static":
        return [("dynamic", 0)]
    return [(m, n) for m in recipe.calibration for n in recipe.calibration_sizes]


def quantize(artifact: Artifact, form: str, source: Path, out: Path) -> dict:
    """The INT8 file of `form` at `out` and what to record about its recipe."""
    recipe = recipes.ort_int8(form)
    if artifact.task:
        exclude, method, found = search(artifact, form, source, out)
    else:
        untuned = recipes.UNTUNED_FALLBACK[form]
        exclude = [n for n in weight_matmuls(source) if role_of(n) in untuned]
        method, found = calibrations(form)[0], {"search": "none: no task to search on"}
        write(artifact, form, source, out, exclude, method)
    static = form == "onnx-int8-static"
    return {"method": "onnxruntime.quantization." + ("quantize_static (QDQ)" if static else "quantize_dynamic"),
            "ops": QUANT_OPS, "recipe": recipes.int8_ident(form),
            "weights": "int8 symmetric " + ("per-channel" if recipe.per_channel else "per-tensor")
                       + (", reduce_range (7-bit: no VNNI here)" if recipes.reduce_range() else ", 8-bit (VNNI)"),
            "activations": f"uint8 asymmetric, calibrated ({method[0]})" if static else "uint8, ranges at run time",
            "calibration_method": method[0] if static else None,
            "calibration_task_examples": method[1] if static and artifact.task else None, "kept_fp32": exclude,
            "kept_fp32_roles": sorted({role_of(n) or n for n in exclude}),
            "fp32_always": "pooler and classifier (Gemm), embeddings (Gather)", "search": found,
            **({"calibration_sentences": len(recipes.calibration_texts())} if static else {})}

