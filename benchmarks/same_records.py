"""Do two runs of one plan record the same thing? Everything a record holds must match cell by cell except
what is measured in time (latency/throughput values and samples, eval seconds) and what names the moment
(git state, GEMM peaks, times): the check behind "no behaviour change" in a refactoring.

    python benchmarks/same_records.py BEFORE/records.jsonl AFTER/records.jsonl   # exit 1 on a difference
"""

from __future__ import annotations

import json
import sys

TIMED_SUITES = {"latency", "throughput"}
TIMED_METRICS = {"eval_s", "sequences_per_s", "tokens_per_s"}  # glue: the dev evaluation's own speed
MOMENT = {"git", "gemm_peak", "gemm_peaks"}  # environment fields that name the moment, not the computation
SAME = ("status", "reason", "artifact", "settings", "harness_version", "run_key", "schema")


def load(path: str) -> dict[tuple, dict]:
    with open(path, encoding="utf-8") as f:
        return {tuple(sorted(r["cell"].items(), key=str)): r for r in map(json.loads, f) if r}


def differences(before: dict[tuple, dict], after: dict[tuple, dict]) -> list[str]:
    out = [f"cells only before: {len(set(before) - set(after))}, only after: {len(set(after) - set(before))}"] \
        if set(before) != set(after) else []
    for key in sorted(set(before) & set(after), key=str):
        a, b, cell = before[key], after[key], dict(key)
        label = f"{cell['backbone']} {cell['runtime']} {cell['precision']} {cell['sparsity']} {cell['suite']}"
        out += [f"{label}: {f} differs" for f in SAME if a.get(f) != b.get(f)]
        ma, mb = a.get("metrics") or {}, b.get("metrics") or {}
        if set(ma) != set(mb):
            out.append(f"{label}: metric keys differ: {sorted(set(ma) ^ set(mb))}")
        elif cell["suite"] not in TIMED_SUITES:
            out += [f"{label}: {m} {ma[m]!r} != {mb[m]!r}" for m in ma if m not in TIMED_METRICS and ma[m] != mb[m]]
        if set(a.get("samples") or {}) != set(b.get("samples") or {}):
            out.append(f"{label}: sample keys differ")
        if set(a.get("runtime") or {}) != set(b.get("runtime") or {}):
            out.append(f"{label}: runtime keys differ")
        ea, eb = ({k: v for k, v in (r.get("environment") or {}).items() if k not in MOMENT} for r in (a, b))
        if ea != eb:
            changed = sorted(k for k in ea.keys() | eb.keys() if ea.get(k) != eb.get(k))
            out.append(f"{label}: environment differs in {changed}")
    return out


if __name__ == "__main__":
    before, after = load(sys.argv[1]), load(sys.argv[2])
    found = differences(before, after)
    print(f"{len(before)} cells before, {len(after)} after; {len(found)} differences")
    for line in found[:50]:
        print(" ", line)
    sys.exit(1 if found else 0)
