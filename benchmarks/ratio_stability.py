"""Do speed-ups hold up on a second run? Compares the speed-up column of two runs of one preset on one machine,
row by row, and the leaderboard's recommendation, for runs measured one variant after the other (rounds = 0) and
interleaved (rounds = N).

    python benchmarks/ratio_stability.py RUN_1_DIR RUN_2_DIR [--json OUT.json]

Each DIR holds a records.jsonl (e.g. results/stability/<machine>/rounds-10/run-1). Speed-ups are what the report
shows: the paired ratio over rounds where the run had rounds, else the ratio of medians to the reference row.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench.records import RECORDS_FILE, read
from bench.report.ranking import board, recommendations
from bench.report.rows import frame
from bench.report.tables import comparison


def speedups(directory: Path) -> tuple[dict[tuple, float], dict[tuple, str]]:
    df = frame(read(directory / RECORDS_FILE))
    table = comparison(df[df.suite != "glue"].reset_index(drop=True))
    cols = [c for c in table.columns if c.startswith("speedup_s") and not c.endswith(("_low", "_high"))]
    cols += ["best_speedup"] if "best_speedup" in table else []
    out = {}
    for row in table.to_dict("records"):
        for col in cols:
            if np.isfinite(row.get(col, np.nan)):
                out[row["backbone"], row["runtime"], row["precision"], row["sparsity"], row["device"], col] = \
                    float(row[col])
    recs = recommendations(board(df))
    chosen = {(r["backbone"], r["task"]): r["recommendation"] for r in recs.to_dict("records")}
    return out, chosen


def compare(one: Path, two: Path) -> dict:
    (a, rec_a), (b, rec_b) = speedups(one), speedups(two)
    rows = sorted(set(a) & set(b), key=str)
    diffs = {" ".join(map(str, k)): 100 * abs(b[k] / a[k] - 1) for k in rows
             if k[1:4] != ("torch", "fp32", "dense")}  # the reference's own 1.0 says nothing
    values = np.array(list(diffs.values()))
    return {"run_1": str(one), "run_2": str(two), "rows": len(diffs),
            "median_diff_pct": float(np.median(values)) if values.size else None,
            "max_diff_pct": float(values.max()) if values.size else None,
            "worst_rows": dict(sorted(diffs.items(), key=lambda kv: -kv[1])[:5]),
            "recommendations": {f"{k[0]} {k[1]}": [rec_a.get(k), rec_b.get(k)] for k in sorted(rec_a | rec_b)},
            "same_recommendations": rec_a == rec_b, "per_row_diff_pct": diffs}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_1", type=Path)
    ap.add_argument("run_2", type=Path)
    ap.add_argument("--json", type=Path, help="write the comparison here")
    args = ap.parse_args()
    result = compare(args.run_1, args.run_2)
    same = "the same" if result["same_recommendations"] else "differ"
    print(f"{result['rows']} speed-ups: median difference {result['median_diff_pct']:.2f}%, max "
          f"{result['max_diff_pct']:.2f}%; recommendations {same}")
    for row, diff in result["worst_rows"].items():
        print(f"  {diff:6.2f}%  {row}")
    for key, (x, y) in result["recommendations"].items():
        print(f"  {key}: {x} | {y}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
