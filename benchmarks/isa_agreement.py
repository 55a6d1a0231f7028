"""fp32 agreement of ONNX Runtime with torch under capped instruction sets: the measurements behind the defaults of
bench/agreement.py (README "fp32 agreement").

Each level runs in its own process with torch's kernels capped: ATEN_CPU_CAPABILITY (torch's own kernels:
softmax, LayerNorm, GELU), ONEDNN_MAX_CPU_ISA (oneDNN: bf16/int8 matmuls) and MKL_CBWR / MKL_ENABLE_INSTRUCTIONS
(MKL's sgemm, which runs torch's fp32 Linear layers). ONNX Runtime cannot be capped (MLAS dispatches on cpuid),
so each level is one more pairing of kernel choices, as on another CPU. For every artifact and both export-check
inputs it records max|diff|, max|ref|, their ratio and the cosine, plus torch at that level vs torch native.

    .nox/tests/bin/python benchmarks/isa_agreement.py   # writes results/benchmarks/isa_agreement-<machine>.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

LEVELS = {  # name -> environment; what each honours on this machine is checked and recorded by the child
    "native": {},
    "avx512-no-vnni-bf16": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "MKL_CBWR": "AVX2"},
    "baseline-x86-64": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"},
}
ARTIFACTS = [("minilm-l6-h384", "dense"), ("minilm-l6-h384", "pruned80"), ("minilm-l6-h384", "pruned90"),
             ("bert-base-uncased", "dense"), ("bert-base-uncased", "pruned90"), ("bert-tiny", "dense"),
             ("bert-tiny", "pruned90")]
INTEL_OBSERVED = {"artifact": "minilm-l6-h384 pruned80", "max_abs_diff": 1.32e-4,
                  "host": "Intel Xeon 5th gen (family 6 model 207)"}


def _inputs(tok):
    from bench import recipes

    return [recipes.probe(tok), tok.encode(recipes.calibration_texts()[:3], max_length=128, pad_to_max=False)]


def child(out: Path) -> None:
    import numpy as np
    import torch

    from adapters.build.onnx_export import _KeywordWrapper, _load_torch, _tokenizer, ort_run
    from bench import agreement, exports
    from bench.artifacts import artifact_for
    from bench.catalogue import get_backbone
    from bench.pruning import for_sparsity

    torch.set_num_threads(2)
    rows = []
    for backbone, sparsity in ARTIFACTS:
        art = for_sparsity(artifact_for(get_backbone(backbone)), sparsity)
        onnx = exports.ready_file(art, "onnx-fp32")
        model = _load_torch(art)
        import inspect

        names = tuple(n for n in ("input_ids", "attention_mask", "token_type_ids")
                      if n in inspect.signature(model.forward).parameters)
        wrapper = _KeywordWrapper(model, names).eval()
        for i, enc in enumerate(_inputs(_tokenizer(art))):
            with torch.inference_mode():
                ref = wrapper(*(torch.from_numpy(enc.as_dict()[n]) for n in names)).numpy()
            got = ort_run(onnx, enc, threads=2)
            np.save(out / f"{backbone}-{sparsity}-{i}.npy", ref)
            np.save(out / f"{backbone}-{sparsity}-{i}.mask.npy", enc.attention_mask)
            rows.append({"artifact": f"{backbone} {sparsity}", "input": i,
                         "torch_vs_ort": agreement.compare(ref, got, enc.attention_mask)})
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "rows": rows}))


def main() -> int:
    import numpy as np

    from bench import agreement
    from bench.environment import apply_offline_env, cpu_info, machine_fingerprint

    apply_offline_env()
    root = Path(__file__).resolve().parent.parent
    work = root / ".cache" / "isa-agreement"
    results = {}
    for level, env in LEVELS.items():
        out = work / level
        out.mkdir(parents=True, exist_ok=True)
        print(f"level {level}: {env}", flush=True)
        proc = subprocess.run([sys.executable, __file__, "--child", str(out)], env=os.environ | env,
                              capture_output=True, text=True, check=False)
        if proc.returncode:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results[level] = json.loads(proc.stdout.strip().splitlines()[-1]) | {"env": env}
    # torch at each level vs torch native, on the same inputs and real tokens (how far the reference itself moves)
    for level in LEVELS:
        for row in results[level]["rows"]:
            name = f"{row['artifact'].replace(' ', '-')}-{row['input']}.npy"
            ref, got = np.load(work / "native" / name), np.load(work / level / name)
            mask = np.load(work / "native" / name.replace(".npy", ".mask.npy"))
            row["torch_vs_torch_native"] = agreement.compare(ref, got, mask)
    worst = max(r["torch_vs_ort"]["scaled_max_diff"] for lv in results.values() for r in lv["rows"])
    min_cos = min(r["torch_vs_ort"]["cosine"] for lv in results.values() for r in lv["rows"])
    pruned80 = [r for r in results["native"]["rows"] if r["artifact"] == INTEL_OBSERVED["artifact"]]
    intel = INTEL_OBSERVED | {"scaled_max_diff": INTEL_OBSERVED["max_abs_diff"]
                              / min(r["torch_vs_ort"]["ref_max_abs"] for r in pruned80)}
    summary = {"machine": machine_fingerprint(), "cpu": cpu_info(), "levels": results,
               "worst_scaled_max_diff": worst, "min_cosine": min_cos, "intel_observed": intel,
               "criterion": agreement.Agreement().describe()}
    path = root / "results" / "benchmarks" / f"isa_agreement-{machine_fingerprint()}.json"
    path.write_text(json.dumps(summary, indent=1))
    for level, res in results.items():
        print(f"{level:22s} aten={res['capability']:8s} " + " ".join(
            f"{r['artifact'].split('-')[0]}{r['artifact'].split()[1][:8]}:{r['torch_vs_ort']['scaled_max_diff']:.1e}"
            for r in res["rows"] if r["input"] == 0))
    print(f"worst scaled max|diff| {worst:.3g}, min cosine {min_cos:.9f}; Intel host's 1.32e-4 = "
          f"{intel['scaled_max_diff']:.3g} x max|ref|; wrote {path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
    else:
        raise SystemExit(main())
