"""Runner reliability and overhead: a sweep of trivial cells (framework-free fault runtime) with faults
injected into a fraction of them; counts lost records and measures per-cell runner overhead (record write
and polling; and, for the cell after each kill, a fresh worker's start — model load excluded).
Targets: 0 lost records, overhead <= 1 s per cell.

    python -m benchmarks.runner_faults [--cells 200] [--fault-every 10]   (from the repository root: the fault
    adapter is a test plugin, loaded by name through BENCH_PLUGINS)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=200)
    ap.add_argument("--fault-every", type=int, default=10, help="every Nth cell is SIGKILLed mid-forward")
    args = ap.parse_args()
    os.environ |= {"BENCH_PLUGINS": "tests.fault_adapter", "FAULT_SEQ_MOD": str(args.fault_every),
                   "PYTHONPATH": str(REPO)}
    import numpy as np
    from safetensors.numpy import save_file

    from bench.plan import plan_from_dict
    from bench.records import RECORDS_FILE, read
    from bench.runner import run

    work = Path(tempfile.mkdtemp(prefix="runner-faults-"))
    model = work / "model"
    model.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "film", "is", "good"]
    (model / "vocab.txt").write_text("\n".join(vocab) + "\n")
    (model / "config.json").write_text('{"model_type": "bert", "vocab_size": 9}')
    save_file({"encoder.layer.0.attention.self.query.weight": np.zeros((4, 4), np.float32)},
              model / "model.safetensors")
    plan = plan_from_dict({
        "matrix": {"backbones": [str(model)], "runtimes": ["fault"], "precisions": ["fp32"], "suites": ["latency"]},
        "latency": {"seq_lens": list(range(2, args.cells + 2)), "warmup_iters": 0, "warmup_s": 0.0,
                    "min_iters": 1, "min_time_s": 0.0},
        "run": {"threads": 1},
    })
    cell_times: list[float] = []
    last = [time.perf_counter()]

    def on_event(kind, cell, record):
        if kind == "end":
            now = time.perf_counter()
            cell_times.append(now - last[0])
            last[0] = now
        elif kind == "start":
            last[0] = time.perf_counter()

    t0 = time.perf_counter()
    summary = run(plan, work / "out", on_event=on_event)
    wall = time.perf_counter() - t0
    recs = read(work / "out" / RECORDS_FILE)
    expected_faults = args.cells // args.fault_every
    lost = args.cells - len({r.cell.seq_len for r in recs})
    killed = sum("SIGKILL" in (r.reason or "") for r in recs)
    print(f"{args.cells} cells in {wall:.1f} s: {summary.ok} ok, {summary.failed} failed "
          f"({killed} SIGKILL, expected {expected_faults}), lost records: {lost}")
    after_kill = [t for r, t in zip(recs, cell_times, strict=True) if r.cell.seq_len % args.fault_every == 1]
    print(f"per-cell wall (1 trivial forward + record write; one worker per variant): "
          f"median {1e3 * float(np.median(cell_times)):.0f} ms, p90 {1e3 * float(np.percentile(cell_times, 90)):.0f}"
          f" ms, max {1e3 * max(cell_times):.0f} ms (target <= 1000 ms)")
    if after_kill:
        print(f"first cell after each SIGKILL (fresh worker: interpreter start, imports, tokenizer load): "
              f"median {1e3 * float(np.median(after_kill)):.0f} ms over {len(after_kill)}")


if __name__ == "__main__":
    main()
