"""One variant kept loaded for interleaved rounds: the driver (bench/rounds.py) sends it short timing blocks, one
at a time, and it answers with the samples. Invoked as `python -m bench.rounds_worker SPEC.json` with the
interpreter of the variant's runtime environment, so one driver measures torch, DeepSparse and MXNet rows in the
same minutes.

Protocol: JSON lines. The driver writes commands to stdin; the worker answers on the stdout it was started with,
which it keeps for itself: file descriptor 1 is pointed at stderr first, so what a framework prints never mixes
with an answer. First answer: `{"loaded": true, "libraries": ..., "extra": [...]}` or `{"error": ...}`.
Commands: `{"op": "block", "cell": i, "warmup": bool}` → `{"samples": [...]}` (or `{"error": ...}`);
`{"op": "final"}` → `{"runtime": {...}}` (asked after the last round: the adapter's info with what it learnt while
timed, e.g. per-shape compile times, and the memory high-water mark by then); `{"op": "close"}` ends it.
The loaded answer's `runtime` carries the startup phases and memory after load (bench/resources.py).
"""

from __future__ import annotations

import json
import os
import sys


def _answer(out, message: dict) -> None:
    out.write(json.dumps(message, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)) + "\n")
    out.flush()


def serve(spec: dict, commands, out) -> int:
    from adapters.base import Numerics, Options
    from bench.artifacts import Artifact
    from bench.cell import Cell
    from bench.environment import library_versions
    from bench.resources import Startup
    from bench.runtimes import get_runtime
    from bench.timing import Budget, measure
    from bench.tokenizer import sample_sentences
    from bench.worker import failure_fields
    from suites import get_suite

    cells = [Cell(**c) for c in spec["cells"]]
    first, adapter = cells[0], None
    startup = Startup()
    try:
        try:
            adapter = get_runtime(first.runtime).load_adapter_class()()
            startup.load(adapter, Artifact.from_summary(spec["artifact"]), Numerics(first.precision, first.sparsity),
                         first.device, Options.from_settings(spec["settings"], first.runtime))
            startup.first(adapter, sample_sentences(), (first.batch, first.seq_len))
            inputs = [get_suite(c.suite).inputs(adapter, c) for c in cells]
        except Exception as exc:  # the same for every cell of the variant
            failure = failure_fields(exc)
            _answer(out, {"error": failure["reason"], "status": failure["status"]})
            return 0
        _answer(out, {"loaded": True, "libraries": library_versions(),
                      "runtime": adapter.info() | startup.fields(adapter), "extra": [extra for _, extra in inputs]})
        for line in commands:
            command = json.loads(line)
            if command.get("op") == "final":
                _answer(out, {"runtime": adapter.info() | startup.fields(adapter)})
                continue
            if command.get("op") != "block":
                break
            i = command["cell"]
            block = Budget(**command["budget"])
            try:
                _answer(out, {"samples": measure(inputs[i][0], block)})
            except Exception as exc:  # a framework error: this variant's cells fail, the other variants go on
                _answer(out, {"error": failure_fields(exc)["reason"], "status": "failed"})
                return 0
        return 0
    finally:
        if adapter is not None:
            adapter.close()


def main(argv: list[str]) -> int:
    from bench.environment import apply_offline_env
    from bench.worker import die_with_parent

    die_with_parent()
    apply_offline_env()
    answers = os.fdopen(os.dup(1), "w")  # the driver's channel; fd 1 now goes to stderr for framework chatter
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    return serve(spec, sys.stdin, answers)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
