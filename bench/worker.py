"""One cell in its own process: load the adapter, run the suite, write the record. Invoked by the runner as
`python -m bench.worker SPEC.json OUT.json`; anything that kills this process is reported by the runner."""

from __future__ import annotations

import json
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.environment import apply_offline_env


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def run_cell(spec: dict) -> dict:
    """Record fields (status, reason, metrics, samples, runtime) for the cell in `spec`."""
    from adapters.base import Options, Variant
    from bench.artifacts import Artifact
    from bench.errors import CellError, CellSkipped, UsageError
    from bench.plan import Cell
    from bench.runtimes import get_runtime
    from suites import get_suite

    cell = Cell(**spec["cell"])
    adapter = None
    try:
        adapter = get_runtime(cell.runtime).load_adapter_class()()
        adapter.load(Artifact.from_summary(spec["artifact"]), Variant(cell.precision, cell.sparsity), cell.device,
                     Options(threads=spec["threads"]))
        result = get_suite(cell.suite).run(adapter, cell, spec["settings"])
        return {"status": "ok", "metrics": result.metrics, "samples": result.samples,
                "runtime": adapter.info()}
    except CellSkipped as exc:
        return {"status": "skipped", "reason": str(exc)}
    except (CellError, UsageError) as exc:
        return {"status": "failed", "reason": str(exc)}
    except Exception as exc:  # a framework error fails this cell only
        traceback.print_exc()
        return {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    finally:
        if adapter is not None:
            adapter.close()


def main(argv: list[str]) -> int:
    apply_offline_env()
    spec_path, out_path = Path(argv[0]), Path(argv[1])
    spec = json.loads(spec_path.read_text())
    started = now()
    fields = run_cell(spec)
    fields |= {"started": started, "finished": now()}
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(fields, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
    tmp.rename(out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
