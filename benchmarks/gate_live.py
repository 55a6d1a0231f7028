"""Live gate quality: how often `bench live` alarms on the same code twice (A/A), and how often it catches a real
slowdown injected into the torch adapter (its forward then spins for a fixed fraction of its own time: work added
in proportion to the forward), with the time each comparison takes.

    python benchmarks/gate_live.py [--pairs 20] [--rounds 20] [--processes 4] [--slowdowns 0.10,0.05]
                                   [--preset gate] [--out results/...json] [--append]

With --append the comparisons already in --out (same rounds, processes, preset and verdict rule) are kept and
--pairs more are added, so a tally can be built over several sessions. Each comparison keeps every cell's change,
interval, p and verdict.

Each comparison is `bench live --base code=A --new code=B --preset gate --processes 4` (or --preset's plan) on
git worktrees of HEAD (B patched for the slowdowns). Run it on an otherwise idle machine; with the gate preset and 4
processes a side it takes about 4 minutes per comparison on 2 cores (the quick preset, 1 process: about 1).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = "adapters/torch_hf/adapter.py"
ORIGINAL = "    def forward(self, batch: Batch) -> np.ndarray:\n        with torch.inference_mode():"
SLOWED = """    def forward(self, batch: Batch) -> np.ndarray:
        import time as _time

        start = _time.perf_counter()
        out = self._unslowed_forward(batch)
        until = _time.perf_counter() + (_time.perf_counter() - start) * {fraction!r}
        while _time.perf_counter() < until:
            pass
        return out

    def _unslowed_forward(self, batch: Batch) -> np.ndarray:
        with torch.inference_mode():"""


# the verdict rule of bench/gate/live.py these comparisons were judged by; a tally never mixes two rules
RULE = "p < alpha AND the interval at 1 - alpha reaches the threshold"

# a cell's row of `bench live`'s table: | cell | change | low … high | rounds | p | threshold | verdict |
ROW = re.compile(r"\| (?P<change>[+-][0-9.]+)% \| (?P<low>[+-][0-9.]+)% … (?P<high>[+-][0-9.]+)% \| \d+ \| "
                 r"(?P<p>[0-9.e+-]+) \| [0-9.]+% \| (?P<verdict>[A-Za-z ]+) \|")


def worktree(where: Path, fraction: float | None) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", str(where), "HEAD"], cwd=ROOT, check=True,
                   capture_output=True)
    if fraction:
        path = where / ADAPTER
        text = path.read_text()
        if ORIGINAL not in text:
            sys.exit(f"{ADAPTER}: forward() changed; update this script's patch")
        path.write_text(text.replace(ORIGINAL, SLOWED.format(fraction=fraction)))
    return where


def live(base: Path, new: Path, rounds: int, processes: int, out: Path, preset: str) -> dict:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "bench.cli", "live", "--base", f"code={base}", "--new", f"code={new}",
                           "--preset", preset, "--rounds", str(rounds), "--processes", str(processes),
                           "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| minilm")]
    cells = [{"cell": line.split("|")[1].strip(), "change_pct": float(m["change"]),
              "interval_pct": [float(m["low"]), float(m["high"])],
              "p": float(m["p"]), "verdict": m["verdict"]} for line in rows if (m := ROW.search(line))]
    return {"exit": proc.returncode, "seconds": round(time.monotonic() - start, 1), "alarm": proc.returncode == 1,
            "regressions": sum("REGRESSION" in line for line in rows),
            "changes_pct": [c["change_pct"] for c in cells], "cells": cells,
            "error": proc.stderr.strip().splitlines()[-1] if proc.returncode == 2 else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--processes", type=int, default=4, help="worker processes a side (bench live --processes)")
    ap.add_argument("--slowdowns", default="0.10,0.05")
    ap.add_argument("--preset", default="gate", help="the plan both sides run (a preset name or a TOML file)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--append", action="store_true", help="keep the comparisons already in --out and add more")
    args = ap.parse_args()
    fractions = [float(f) for f in args.slowdowns.split(",") if f]
    results: dict[str, list[dict]] = {"A/A": [], **{f"{100 * f:g}% slower": [] for f in fractions}}
    sessions: list[str] = []
    if args.append:
        if args.out is None or not args.out.is_file():
            sys.exit("gate_live: --append needs an existing --out file")
        old = json.loads(args.out.read_text())
        if old.get("rounds") != args.rounds:
            sys.exit(f"gate_live: {args.out} was measured at {old.get('rounds')} rounds, not {args.rounds}")
        if old.get("processes", 1) != args.processes:
            sys.exit(f"gate_live: {args.out} ran {old.get('processes', 1)} processes a side, not {args.processes}")
        if old.get("preset", "quick") != args.preset:
            sys.exit(f"gate_live: {args.out} ran preset {old.get('preset', 'quick')}, not {args.preset}")
        if old.get("rule") != RULE:
            before = old.get("rule", "the measured change beyond the threshold AND p < alpha")
            sys.exit(f"gate_live: {args.out} was judged by another rule ({before}), not {RULE!r}")
        sessions = list(old.get("sessions", []))
        for kind, rs in old.get("comparisons", {}).items():
            results.setdefault(kind, []).extend(rs)
    began = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="gate-live-") as tmp:
        tmp = Path(tmp)
        trees = {"base": worktree(tmp / "base", None), "same": worktree(tmp / "same", None)}
        trees |= {f"{100 * f:g}% slower": worktree(tmp / f"slow-{f}", f) for f in fractions}
        try:
            for i in range(args.pairs):  # the kinds alternate, so drift over the session hits them alike
                for kind in results:
                    new = trees["same"] if kind == "A/A" else trees[kind]
                    r = live(trees["base"], new, args.rounds, args.processes,
                             tmp / "out" / f"{i}-{len(results[kind])}", args.preset)
                    results[kind].append(r)
                    print(f"{kind:12s} {i + 1}/{args.pairs}: exit {r['exit']}, {r['regressions']} regressions, "
                          f"changes {r['changes_pct']}, {r['seconds']} s", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    summary = {kind: {"comparisons": len(rs), "alarms": sum(r["alarm"] for r in rs),
                      "errors": sum(r["exit"] == 2 for r in rs),
                      "median_seconds": sorted(r["seconds"] for r in rs)[len(rs) // 2] if rs else None}
               for kind, rs in results.items()}
    sessions.append(f"{began}-{time.strftime('%H:%M', time.gmtime())} UTC (--pairs {args.pairs})")
    for kind, s in summary.items():
        print(f"{kind}: {s['alarms']}/{s['comparisons']} alarmed, {s['errors']} errors, median {s['median_seconds']} s")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rounds": args.rounds, "processes": args.processes, "preset": args.preset,
                                        "rule": RULE,
                                        "sessions": sessions, "summary": summary,
                                        "comparisons": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
