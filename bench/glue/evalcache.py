"""Dev-set evaluations reused across runs: a glue cell's outcome is a pure function of what it ran.

The dev score of a cell depends on the model bytes (fine-tuned checkpoint and the derived file the runtime
loads), the runtime's library versions, the precision, the machine (ISA-specific kernels) and thread count,
the dev split, the evaluation settings and the code of the adapter and suite. All of those go into the key,
so an entry is reused only for the very same computation; anything that changes invalidates it by
construction. Latency and throughput are never cached: they are what a re-run is for.

A reused record says so: `runtime["eval_cache"]` holds the key and when the evaluation really ran.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
from pathlib import Path

from bench import __version__, exports
from bench.artifacts import Artifact, cache_root
from bench.cell import Cell
from bench.errors import CellError
from bench.files import atomic_write
from bench.glue import data
from bench.glue.tasks import get_task
from bench.keys import digest
from bench.runtimes import get_runtime

EVAL_CACHE_VERSION = 3  # bump when the meaning of a cached entry changes
# code whose change can change a prediction, besides the runtime's own adapter module
CODE_MODULES = ("adapters.base", "suites.glue", "bench.tokenizer", "bench.glue.batching")


class CodeMissing(CellError):
    """A module the key must hash cannot be found: keying without it could reuse an evaluation of other code."""


def _versions(modules: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for module in modules:
        try:
            out[module] = importlib.metadata.version(module)
        except importlib.metadata.PackageNotFoundError:
            out[module] = "missing"
    return out


def module_source(name: str) -> bytes:
    """The source of module `name` as imported here; CodeMissing when it cannot be found or read."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise CodeMissing(f"evaluation cache: cannot find module {name} ({exc})") from exc
    if spec is None or not spec.origin or not Path(spec.origin).is_file():
        raise CodeMissing(f"evaluation cache: module {name} has no source file to hash; was it moved?")
    return Path(spec.origin).read_bytes()


def _code_hash(runtime: str) -> str:
    h = hashlib.sha256()
    for name in (get_runtime(runtime).adapter.split(":")[0], *CODE_MODULES):
        h.update(name.encode() + module_source(name))
    return h.hexdigest()[:16]


def key(cell: Cell, artifact: Artifact, machine: str, threads: int, settings: dict) -> str | None:
    """The cache key of a glue cell, or None when it cannot be keyed safely (no dev split, GPU cell)."""
    if cell.suite != "glue" or not cell.task or cell.device != "cpu":
        return None
    m = data.manifest(get_task(cell.task))
    if not m or "dev" not in m.get("splits", {}):
        return None
    runtime = get_runtime(cell.runtime)
    form = runtime.form(cell.precision)
    ident = {"cell": cell.identity(), "model": artifact.content_hash, "threads": threads, "machine": machine,
             "form": _form_name(artifact, form), "versions": _versions(runtime.requires),
             "code": _code_hash(cell.runtime), "dev": m["splits"]["dev"]["sha256"],
             "glue": {k: settings.get("glue", {}).get(k) for k in ("batch_size", "max_length")},
             "harness": __version__, "version": EVAL_CACHE_VERSION}
    return digest(ident, 24)


def _form_name(artifact: Artifact, form: str | None) -> str | None:
    if form is None:
        return None
    return exports.path_of(artifact, form).name  # names carry the content hash and the recipe version


def _path(k: str) -> Path:
    return cache_root() / "glue-eval" / f"{k}.json"


def lookup(k: str | None) -> dict | None:
    """Record fields of the cached evaluation (marked as reused, with when it really ran), or None."""
    if k is None or not _path(k).is_file():
        return None
    try:
        fields = json.loads(_path(k).read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a damaged entry is ignored: the cell simply runs
    if fields.get("status") != "ok" or not isinstance(fields.get("metrics"), dict):
        return None
    measured = {"key": k, "measured_started": fields.get("started"), "measured_finished": fields.get("finished")}
    return {"status": "ok", "metrics": fields["metrics"], "samples": dict(fields.get("samples") or {}),
            "runtime": dict(fields.get("runtime") or {}) | {"eval_cache": measured}}


def store(k: str | None, fields: dict) -> None:
    """Keep an evaluation that succeeded (failures and skips are always retried)."""
    if k is None or fields.get("status") != "ok":
        return
    path = _path(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps({k: v for k, v in fields.items() if k in
                                   ("status", "metrics", "samples", "runtime", "started", "finished")}, sort_keys=True))
