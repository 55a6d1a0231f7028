"""Running a trainer: in a subprocess of the torch environment (or in this process for tests), stale build
directories of killed runs removed. Shared by the fine-tuner (bench/glue/finetune.py) and upstream pruning
(bench/presparse.py); framework-free, a leaf of both.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.errors import CellError

INPROCESS_ENV = "BENCH_FINETUNE_INPROCESS"
TORCH_HINT = ("fine-tuning runs in the torch environment (torch + transformers): run the torch session first "
              "(`nox -s \"bench(family='torch')\"` or `bench run` with the torch extra); others reuse the cache")


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None


def remove_stale(final: Path) -> None:
    """Temporary directories of builders that were killed (their pid is gone): a killed training leaves one."""
    for tmp in final.parent.glob(f".{final.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_training(spec: dict, threads: int, module: str = "adapters.build.torch_finetune") -> dict:
    """Train in a subprocess (`module`'s main: adapters/build/torch_finetune.py or torch_upstream.py); its progress
    bar goes to this process's stderr. $BENCH_FINETUNE_INPROCESS=1 trains in this process instead (tests: no
    second torch import, no isolation)."""
    if os.environ.get(INPROCESS_ENV) == "1":
        import importlib

        return importlib.import_module(module).train_here(spec | {"threads": threads})
    with tempfile.TemporaryDirectory(prefix="glue-train-") as tmp:
        spec_path, out_path, err_path = (Path(tmp) / n for n in ("recipe.json", "stats.json", "error.txt"))
        spec_path.write_text(json.dumps(spec | {"threads": threads, "stats": str(out_path), "error": str(err_path)}))
        env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                            "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run([sys.executable, "-m", module, str(spec_path)], env=env,
                              stdout=sys.stderr)
        if proc.returncode != 0 or not out_path.is_file():
            why = err_path.read_text().strip() if err_path.is_file() else "no error message (killed?)"
            raise CellError(f"fine-tuning {spec['task']} ({spec['mode']}) failed with exit code "
                            f"{proc.returncode}: {why}")
        return json.loads(out_path.read_text())
