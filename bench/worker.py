"""The cells of one variant in their own process: load the adapter once, run each cell's suite, write each
record as soon as it exists. Invoked by the runner as `python -m bench.worker SPEC.json OUT_DIR`.

Why one process per variant and not per cell: loading is most of a cell's cost (an INT8 MXNet BERT is
re-quantized, a DeepSparse engine compiled, torch imported) and it is the same work for every suite of a
variant. Isolation is kept where it matters: anything that kills this process fails the cell it was running
(the runner tells which from the files written so far) and the runner re-runs the rest in a fresh process.

OUT_DIR gets `loaded` once the adapter is loaded and `<i>.json` when cell i is done (both written atomically).
Exit code RESTART (after a framework exception) asks the runner for a fresh process for the remaining cells,
since an adapter that raised from inside its framework may be left in any state.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.environment import apply_offline_env

RESTART = 3
LOADED = "loaded"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(path: Path, fields: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fields, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
    tmp.rename(path)


def failure_fields(exc: BaseException) -> dict:
    from bench.errors import CellError, CellSkipped, UsageError

    if isinstance(exc, CellSkipped):
        return {"status": "skipped", "reason": str(exc)}
    if isinstance(exc, CellError | UsageError):
        return {"status": "failed", "reason": str(exc)}
    traceback.print_exc()
    return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}


def run_cells(spec: dict, out_dir: Path) -> int:
    """Run spec["cells"] (same backbone, runtime, precision, sparsity, device and artifact) on one adapter."""
    from adapters.base import Numerics, Options
    from bench.artifacts import Artifact
    from bench.cell import Cell
    from bench.errors import CellError, CellSkipped, UsageError
    from bench.resources import Startup
    from bench.runtimes import get_runtime
    from bench.tokenizer import sample_sentences
    from suites import get_suite

    cells = [Cell(**c) for c in spec["cells"]]
    first, adapter = cells[0], None
    started = now()
    startup = Startup()
    try:
        try:
            adapter = get_runtime(first.runtime).load_adapter_class()()
            startup.load(adapter, Artifact.from_summary(spec["artifact"]), Numerics(first.precision, first.sparsity),
                         first.device, Options.from_settings(spec["settings"], first.runtime))
        except Exception as exc:  # the same for every cell of the variant: each gets the reason, no retry
            fields = failure_fields(exc) | {"started": started, "finished": now()}
            for i in range(len(cells)):
                write_json(out_dir / f"{i}.json", fields)
            return 0
        from bench.environment import library_versions  # a worker of another environment reports its own

        write_json(out_dir / LOADED, {"libraries": library_versions()})
        for i, cell in enumerate(cells):
            started = started if i == 0 else now()  # the first cell's time includes the load
            try:
                suite = get_suite(cell.suite)  # typed settings back from the record form they crossed JSON in
                if suite.forwards:
                    startup.first(adapter, sample_sentences(), (cell.batch, cell.seq_len))
                result = suite.run(adapter, cell, suite.settings_from_record(spec["settings"].get(suite.name)))
                fields = {"status": "ok", "metrics": result.metrics, "samples": result.samples,
                          "runtime": adapter.info() | startup.fields(adapter)}
            except (CellSkipped, CellError, UsageError) as exc:
                fields = failure_fields(exc)
            except Exception as exc:  # a framework error fails this cell; the rest get a fresh process
                write_json(out_dir / f"{i}.json", failure_fields(exc) | {"started": started, "finished": now()})
                return RESTART
            write_json(out_dir / f"{i}.json", fields | {"started": started, "finished": now()})
        return 0
    finally:
        if adapter is not None:
            adapter.close()


def die_with_parent() -> None:
    """Linux: this worker is killed when the process that started it dies (a runner killed with -9, a Ray node
    removed): it runs in a session of its own, so nothing else would stop an orphan from timing on."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the call
        os._exit(1)


def main(argv: list[str]) -> int:
    die_with_parent()
    apply_offline_env()
    spec_path, out_dir = Path(argv[0]), Path(argv[1])
    return run_cells(json.loads(spec_path.read_text()), out_dir)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
