"""Derived model files (ONNX, quantized ONNX) and torch reference outputs, cached beside their artifact.

This module names, checks and publishes them; a builder that needs the frameworks makes them
(adapters/build/onnx_export.py, loaded by name: the core asks for a file, the builder writes it to a temporary
path and returns what it measured, and never calls back). Only the torch environment can build; every other
environment (DeepSparse's: onnx 1.14, numpy < 2, no torch) reuses the files. Each file is named by the
artifact's content hash and the recipe (bench/recipes.py), written under a temporary name and renamed, and has a
sidecar JSON with its size and sha256; a file without its sidecar is not trusted, one that differs from it is
rebuilt where it can be and refused elsewhere. A build that fails leaves a `.failed.json` beside the missing file
with the reason, so the environments that cannot build it fail exactly the cells that need it, saying why.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.agreement import Agreement
from bench.artifacts import Artifact, cache_root, sha256_file
from bench.errors import CellError, UsageError
from bench.files import atomic_write
from bench.keys import digest
from bench.recipes import EXPORT_VERSION, ONNX_OPSET, PROBE_SEQ_LEN, QUANT_RECIPE, int8_ident, nncf_ident, probe_texts
from bench.tokenizer import Encoded

# onnx-int8-nncf: NNCF's static INT8 of the fp32 export, the file OpenVINO's INT8 cells run
FORMS = ("onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "onnx-int8-nncf")
REFERENCE_OUTPUTS = "reference"  # the reference configuration's outputs on the parity probe, for runtimes without torch
BUILDER = "adapters.build.onnx_export"  # build(artifact, form, tmp, source) -> meta; reference_outputs(artifact)
BUILD_MODULES = ("torch", "transformers", "onnx", "onnxruntime")  # the reference outputs need the first two only
EXTRA_BUILD_MODULES = {"onnx-int8-nncf": ("nncf", "openvino")}
TORCH_ENV_HINT = ("exports are made in the torch environment: run `nox -s \"bench(family='torch')\"` (or any "
                  "`bench run` where torch, transformers, onnx and onnxruntime are installed) first; this "
                  "environment reuses the cached files")


def derived_dir(artifact: Artifact) -> Path:
    """Cache-built artifacts keep their derived files inside their own (content-keyed) directory; a local
    model directory is never written to, its files go under the cache keyed by its content hash."""
    root = cache_root().resolve()
    path = Path(artifact.path).resolve()
    if path.is_relative_to(root):
        return path
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.name)[-40:]
    return root / "derived" / f"{slug}-{artifact.content_hash[:16]}"


def _key(artifact: Artifact, what: str) -> str:
    ident = [artifact.content_hash, what, EXPORT_VERSION, ONNX_OPSET, PROBE_SEQ_LEN]
    if what == "onnx-int8-nncf":
        ident += [nncf_ident()]
    elif what.startswith("onnx-int8"):
        ident += [QUANT_RECIPE, int8_ident(what)]
    return digest(ident, 12)


def onnx_path(artifact: Artifact, form: str) -> Path:
    if form not in FORMS:
        raise UsageError(f"unknown model form {form!r}; choose from: {', '.join(FORMS)}")
    return derived_dir(artifact) / "onnx" / f"{form.removeprefix('onnx-')}-{_key(artifact, form)}.onnx"


def reference_path(artifact: Artifact) -> Path:
    return derived_dir(artifact) / "reference" / f"{_key(artifact, REFERENCE_OUTPUTS)}.npz"


def path_of(artifact: Artifact, form: str) -> Path:
    return reference_path(artifact) if form == REFERENCE_OUTPUTS else onnx_path(artifact, form)


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def is_built(artifact: Artifact, form: str) -> bool:
    path = path_of(artifact, form)
    return path.is_file() and sidecar(path).is_file()


def missing_build_modules(form: str) -> list[str]:
    needed = BUILD_MODULES[:2] if form == REFERENCE_OUTPUTS else BUILD_MODULES + EXTRA_BUILD_MODULES.get(form, ())
    return [m for m in needed if importlib.util.find_spec(m) is None]


def failure_marker(path: Path) -> Path:
    return path.with_name(path.name + ".failed.json")


def resolve(artifact: Artifact, form: str, criterion: Agreement) -> str | None:
    """Make `form` of `artifact` ready for the cells that need it: None when it is, else the reason those cells
    fail. Builds it where this environment can (torch, transformers, onnx, onnxruntime), rebuilds a corrupt copy,
    and judges an fp32 export's measured agreement with torch against the plan's criterion; quantized files
    need their fp32 source to pass too. Never raises for a file problem: a bad file fails its cells, not the run."""
    try:
        ready_file(artifact, form, deep=True)
    except CellError as exc:
        return str(exc)
    if form == REFERENCE_OUTPUTS:
        return None
    fp32 = onnx_path(artifact, "onnx-fp32")
    if form != "onnx-fp32" and not is_built(artifact, "onnx-fp32"):
        return None  # installed by hand (tests, a user's graph): nothing to judge it by
    check = read_sidecar(fp32).get("check_vs_torch")
    if check is None:
        return None  # adopted with `install`: no torch export to compare
    if not criterion.judge(check):
        return (f"ONNX export {fp32.name} of {artifact.backbone} (sparsity {artifact.sparsity:g}) disagrees with "
                f"torch fp32: {criterion.explain(check)}; cells that run it or a file quantized from it fail")
    return None


def ready_file(artifact: Artifact, form: str, deep: bool = False) -> Path:
    """The intact file for `form`, built on first use where this environment can build it (a corrupt copy is
    rebuilt); CellError with the reason otherwise. `deep` also checks the sha256 (the runner does, once per run,
    before any worker loads the file; workers then check the size only)."""
    path = path_of(artifact, form)
    if is_built(artifact, form):
        problem = intact_problem(path, deep)
        if problem is None:
            return path
        if missing_build_modules(form):
            raise CellError(f"{problem}; delete it and its .json and run the torch environment to rebuild it")
        path.unlink(missing_ok=True)
        sidecar(path).unlink(missing_ok=True)
        try:
            return ready_file(artifact, form)
        except CellError as exc:
            raise CellError(f"{problem}; rebuilding it failed: {exc}") from exc
    missing = missing_build_modules(form)
    if missing:
        marker = failure_marker(path)
        if marker.is_file():
            try:
                why = json.loads(marker.read_text()).get("reason", "?")
            except (OSError, json.JSONDecodeError):
                why = "unreadable failure record"
            raise CellError(f"{form} of {artifact.backbone} (sparsity {artifact.sparsity:g}) could not be built "
                            f"in the torch environment: {why}")
        raise CellError(f"{artifact.backbone} (sparsity {artifact.sparsity:g}): no cached {form} at {path} and "
                        f"this environment lacks {', '.join(missing)}; " + TORCH_ENV_HINT)
    try:
        _build(artifact, form, path)
    except UsageError:
        raise
    except Exception as exc:  # a framework failure while exporting/quantizing: the cells that need it fail
        reason = f"building {form} failed: {type(exc).__name__}: {exc}".strip()
        _write_marker(path, reason)
        raise CellError(reason) from exc
    failure_marker(path).unlink(missing_ok=True)
    return path


def _build(artifact: Artifact, form: str, final: Path) -> None:
    """Have the builder make `form`, then publish it; a quantized form's fp32 source is made ready first."""
    builder = importlib.import_module(BUILDER)
    if form == REFERENCE_OUTPUTS:
        encoded, output, meta = builder.reference_outputs(artifact)
        write_reference(artifact, encoded, output, **meta)
        return
    source = ready_file(artifact, "onnx-fp32") if form != "onnx-fp32" else None
    tmp = temp_name(final)
    try:
        meta = builder.build(artifact, form, tmp, source)
        meta |= {"form": form, "content_hash": artifact.content_hash, "artifact": str(artifact.path),
                 "sparsity": artifact.sparsity} | ({"source": source.name} if source else {})
        publish(tmp, final, meta)
    finally:
        tmp.unlink(missing_ok=True)
        sidecar(tmp).unlink(missing_ok=True)


def _write_marker(path: Path, reason: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(failure_marker(path), json.dumps({"reason": reason}))


def intact_problem(path: Path, deep: bool = True) -> str | None:
    """Why the file differs from what its sidecar says was written (size, then sha256), or None."""
    try:
        meta = read_sidecar(path)
    except CellError as exc:
        return str(exc)
    size = path.stat().st_size
    if meta.get("size") is not None and meta["size"] != size:
        return f"{path}: {size} bytes but {meta['size']} were written (truncated or modified)"
    if deep and meta.get("sha256") and sha256_file(path) != meta["sha256"]:
        return f"{path}: sha256 differs from the one written (corrupted or modified)"
    return None


def read_sidecar(path: Path) -> dict:
    try:
        return json.loads(sidecar(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CellError(f"{sidecar(path)}: unreadable export record ({exc})") from exc


def publish(tmp: Path, final: Path, meta: dict) -> None:
    """Move a finished file into place with its sidecar (sidecar last: it marks the file as complete)."""
    meta = meta | {"size": tmp.stat().st_size, "sha256": sha256_file(tmp), "export_version": EXPORT_VERSION}
    final.parent.mkdir(parents=True, exist_ok=True)
    side_tmp = sidecar(tmp)
    side_tmp.write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
    os.replace(tmp, final)
    os.replace(side_tmp, sidecar(final))


def temp_name(final: Path) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.stem}.tmp-{os.getpid()}{final.suffix}")


def install(artifact: Artifact, form: str, source: Path, **meta) -> Path:
    """Adopt an ONNX file made elsewhere as `form` of `artifact` (tests, hand-made graphs)."""
    final = onnx_path(artifact, form)
    tmp = temp_name(final)
    tmp.write_bytes(Path(source).read_bytes())
    publish(tmp, final, {"form": form, "content_hash": artifact.content_hash, "source": str(source)} | meta)
    return final


@dataclass(frozen=True)
class Reference:
    """Torch fp32 outputs of the same weights on the parity probe, and the ids they were computed from."""

    encoded: Encoded
    output: np.ndarray
    meta: dict


def write_reference(artifact: Artifact, encoded: Encoded, output: np.ndarray, **meta) -> Path:
    final = reference_path(artifact)
    tmp = temp_name(final)
    with open(tmp, "wb") as f:
        np.savez(f, output=np.asarray(output, dtype=np.float32), **encoded.as_dict())
    publish(tmp, final, {"form": REFERENCE_OUTPUTS, "content_hash": artifact.content_hash,
                         "probe_texts": len(probe_texts()), "probe_seq_len": PROBE_SEQ_LEN} | meta)
    return final


def load_reference(artifact: Artifact) -> Reference:
    path = ready_file(artifact, REFERENCE_OUTPUTS)
    meta = read_sidecar(path)
    try:
        with np.load(path) as z:
            encoded = Encoded(z["input_ids"], z["attention_mask"], z["token_type_ids"])
            output = z["output"]
    except (OSError, ValueError, KeyError) as exc:
        raise CellError(f"{path}: unreadable reference outputs ({exc}); delete it to rebuild") from exc
    return Reference(encoded, output, meta)
