"""Repeatability: the same latency cell run twice back to back through the real runner (subprocess per
cell, fresh model load); reports the spread of the two medians. Target: within 3%.

    python benchmarks/back_to_back.py [--backbones minilm-l6-h384,bert-base-uncased] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.plan import plan_from_dict
from bench.records import RECORDS_FILE, read
from bench.runner import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default="minilm-l6-h384,bert-base-uncased")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, help="result directory to keep (default: a temporary one)")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="back-to-back-"))
    plan = plan_from_dict({"matrix": {"backbones": args.backbones.split(","), "runtimes": ["torch"],
                                      "precisions": ["fp32"], "suites": ["latency"]},
                           "latency": {"seq_lens": [args.seq_len]}})
    for i in range(args.repeats):
        run(plan, out, force=i > 0)
    by_backbone: dict[str, list[float]] = {}
    for r in read(out / RECORDS_FILE):
        if r.status == "ok":
            by_backbone.setdefault(r.cell.backbone, []).append(r.metrics["p50_ms"])
    for name, medians in by_backbone.items():
        spread = (max(medians) - min(medians)) / min(medians)
        print(f"{name} torch fp32 s{args.seq_len} b1: medians {', '.join(f'{m:.2f}' for m in medians)} ms;"
              f" spread {100 * spread:.2f}% (target < 3%)")
    print(f"records: {out / RECORDS_FILE}")


if __name__ == "__main__":
    main()
