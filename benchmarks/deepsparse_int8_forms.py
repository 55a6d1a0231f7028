"""Why DeepSparse's static INT8 can be slower than its fp32: the same fp32 export quantized into several QDQ graph
forms, each compiled by DeepSparse and timed at batch 1, interleaved in rounds (same minutes for every form).

Forms (ONNX Runtime 1.18's quantize_static, QDQ, MinMax calibration on the harness's calibration sentences):
- `harness`: the harness's recipe (per-channel int8 weights, reduce_range, FFN output MatMuls kept fp32);
- `per-tensor`: per-tensor weights, no reduce_range, every MatMul with a constant weight quantized;
- `per-channel-all`: per-channel weights, no reduce_range, every such MatMul quantized.

Run in the DeepSparse environment after the torch environment cached the fp32 export (`bench prepare`):

    .nox/bench-family-deepsparse/bin/python benchmarks/deepsparse_int8_forms.py --backbone minilm-l6-h384
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

os.environ.setdefault("NM_DISABLE_ANALYTICS", "1")

FORMS = {
    "harness": {"per_channel": True, "reduce_range": True, "exclude_ffn_out": True},
    "per-tensor": {"per_channel": False, "reduce_range": False, "exclude_ffn_out": False},
    "per-channel-all": {"per_channel": True, "reduce_range": False, "exclude_ffn_out": False},
}


def quantize(source: Path, out: Path, opts: dict, tok) -> dict:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    from bench import recipes

    graph = onnx.load(str(source), load_external_data=False).graph
    names = [i.name for i in graph.input]
    ffn_out = [n.name for n in graph.node if n.op_type == "MatMul" and "/output/dense/" in n.name
               and "attention" not in n.name] if opts["exclude_ffn_out"] else []

    class Reader(CalibrationDataReader):
        def __init__(self):
            texts = recipes.calibration_texts()
            self.it = iter([{n: tok.encode([t], max_length=128).as_dict()[n] for n in names} for t in texts])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(source), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                    calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=ffn_out,
                    per_channel=opts["per_channel"], reduce_range=opts["reduce_range"],
                    extra_options={"MatMulConstBOnly": True})
    ops = {}
    for n in onnx.load(str(out), load_external_data=False).graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"kept_fp32": len(ffn_out), "ops": ops}


def main() -> int:
    import deepsparse
    import numpy as np
    from scipy import stats

    from bench import exports, recipes
    from bench.artifacts import artifact_for
    from bench.catalogue import get_backbone
    from bench.environment import apply_offline_env, cpu_info, machine_fingerprint
    from bench.tokenizer import Tokenizer

    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="minilm-l6-h384")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    args = ap.parse_args()
    apply_offline_env()
    art = artifact_for(get_backbone(args.backbone))
    fp32 = exports.ready_file(art, "onnx-fp32")
    tok = Tokenizer.from_dir(art.path, vocab_size=art.vocab_size or None)
    work = Path(".cache") / "ds-int8-forms" / art.content_hash[:12]
    work.mkdir(parents=True, exist_ok=True)
    # deepsparse.Engine(..., input_shapes=...) rewrites the file it is given in place: it gets a private copy, so
    # the cached export keeps the bytes its sidecar's hash names
    private = work / "fp32.onnx"
    if not private.is_file() or private.stat().st_size != fp32.stat().st_size:
        shutil.copy2(fp32, private)
    models, info = {"fp32": private}, {}
    for name, opts in FORMS.items():
        path = work / f"{name}.onnx"
        if not path.is_file():
            print(f"quantizing {name} ...", flush=True)
            info[name] = quantize(fp32, path, opts, tok) | opts
            (work / f"{name}.json").write_text(json.dumps(info[name]))
        info[name] = json.loads((work / f"{name}.json").read_text())
        models[name] = path
    text = " ".join(recipes.calibration_texts())
    enc = tok.encode([text], max_length=args.seq_len)
    feed = [enc.as_dict()[n] for n in ("input_ids", "attention_mask", "token_type_ids")]
    engines = {}
    for name, path in models.items():
        t0 = time.perf_counter()
        engines[name] = deepsparse.Engine(str(path), batch_size=1, num_cores=2,
                                          input_shapes=[list(f.shape) for f in feed])
        print(f"compiled {name} in {time.perf_counter() - t0:.1f} s", flush=True)
        for _ in range(5):
            engines[name].run(feed)
    rng = np.random.default_rng(0)
    samples = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name in rng.permutation(list(engines)):
            block = []
            for _ in range(args.block):
                t0 = time.perf_counter()
                engines[name].run(feed)
                block.append(time.perf_counter() - t0)
            samples[name].append(float(np.median(block)))
    med = {name: float(np.median(v)) * 1e3 for name, v in samples.items()}
    ratios = {}
    for name in FORMS:
        logr = np.log(np.array(samples[name]) / np.array(samples["fp32"]))
        ci = stats.t.interval(0.95, len(logr) - 1, loc=logr.mean(), scale=stats.sem(logr))
        ratios[name] = {"int8_over_fp32": float(np.exp(logr.mean())), "ci95": [float(np.exp(c)) for c in ci]}
    result = {"machine": machine_fingerprint(), "cpu": cpu_info(), "backbone": args.backbone,
              "seq_len": args.seq_len, "batch": 1, "rounds": args.rounds, "block": args.block,
              "deepsparse": deepsparse.__version__, "median_ms": med, "ratios": ratios, "forms": info,
              "round_medians_s": samples}
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"deepsparse_int8_forms-{args.backbone}-{machine_fingerprint()}.json"
    path.write_text(json.dumps(result, indent=1))
    for name in engines:
        extra = (f"  x{ratios[name]['int8_over_fp32']:.2f} fp32 (95% CI {ratios[name]['ci95'][0]:.2f}-"
                 f"{ratios[name]['ci95'][1]:.2f})") if name in ratios else ""
        print(f"{name:16s} {med[name]:8.2f} ms{extra}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
