"""Derived model files (ONNX, quantized ONNX) and torch reference outputs, cached beside their artifact.

They are built only where torch is installed (adapters/onnx_export.py does the work); every other
environment (DeepSparse's: onnx 1.14, numpy < 2, no torch) reuses the files. Each file is named by the
artifact's content hash and the export settings, written under a temporary name and renamed, and has a
sidecar JSON; a file without its sidecar is not trusted, a file whose size differs from it is refused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.artifacts import Artifact, cache_root
from bench.errors import CellError, UsageError
from bench.tokenizer import Encoded, Tokenizer, sample_sentences

EXPORT_VERSION = 1  # bump when the export changes the bytes it writes
QUANT_RECIPE = 2  # bump when a quantization recipe (adapters/onnx_export.py) changes
ONNX_OPSET = 14  # legacy exporter, IR version 7: DeepSparse reads IR <= 9 only
FORMS = ("onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static")
REFERENCE = "reference"  # torch fp32 outputs on the parity probe, for runtimes without torch
PROBE_SEQ_LEN = 64
PARITY_TOLERANCE = 1e-4  # fp32 runtimes must agree with torch fp32 to this max |diff|
BUILD_MODULES = ("torch", "transformers", "onnx", "onnxruntime")  # the reference needs the first two only
TORCH_ENV_HINT = ("exports are made in the torch environment: run `nox -s \"bench(family='torch')\"` (or any "
                  "`bench run` where torch, transformers, onnx and onnxruntime are installed) first; this "
                  "environment reuses the cached files")


def probe_texts() -> list[str]:
    """The parity probe: every other shipped sentence (the rest calibrate static INT8, never both)."""
    return sample_sentences()[0::2]


def calibration_texts() -> list[str]:
    return sample_sentences()[1::2]


def probe(tokenizer: Tokenizer) -> Encoded:
    return tokenizer.encode(probe_texts(), max_length=PROBE_SEQ_LEN, pad_to_max=True)


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
    if what.startswith("onnx-int8"):
        ident.append(QUANT_RECIPE)
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()[:12]


def onnx_path(artifact: Artifact, form: str) -> Path:
    if form not in FORMS:
        raise UsageError(f"unknown model form {form!r}; choose from: {', '.join(FORMS)}")
    return derived_dir(artifact) / "onnx" / f"{form.removeprefix('onnx-')}-{_key(artifact, form)}.onnx"


def reference_path(artifact: Artifact) -> Path:
    return derived_dir(artifact) / "reference" / f"{_key(artifact, REFERENCE)}.npz"


def path_of(artifact: Artifact, form: str) -> Path:
    return reference_path(artifact) if form == REFERENCE else onnx_path(artifact, form)


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def is_built(artifact: Artifact, form: str) -> bool:
    path = path_of(artifact, form)
    return path.is_file() and sidecar(path).is_file()


def missing_build_modules(form: str) -> list[str]:
    needed = BUILD_MODULES[:2] if form == REFERENCE else BUILD_MODULES
    return [m for m in needed if importlib.util.find_spec(m) is None]


def require(artifact: Artifact, form: str) -> None:
    """Checked by the runner before any cell runs: a file that is neither cached nor buildable here is bad
    input (wrong environment order), not a cell failure."""
    if is_built(artifact, form):
        return
    missing = missing_build_modules(form)
    if missing:
        raise UsageError(f"{artifact.backbone} (sparsity {artifact.sparsity:g}): no cached {form} at "
                         f"{path_of(artifact, form)} and this environment lacks {', '.join(missing)}; "
                         + TORCH_ENV_HINT)


def ensure(artifact: Artifact, form: str) -> Path:
    """The file for `form`, built on first use (torch environment only)."""
    path = path_of(artifact, form)
    if is_built(artifact, form):
        check_intact(path)
        return path
    require(artifact, form)
    from adapters import onnx_export

    onnx_export.build(artifact, form, path)
    return path


def check_intact(path: Path) -> dict:
    """The sidecar's record of a file against the file: a truncated or replaced file is refused clearly."""
    meta = read_sidecar(path)
    size = path.stat().st_size
    if meta.get("size") is not None and meta["size"] != size:
        raise CellError(f"{path}: {size} bytes but {meta['size']} were written (truncated or modified); "
                        "delete it and its .json to rebuild it in the torch environment")
    return meta


def read_sidecar(path: Path) -> dict:
    try:
        return json.loads(sidecar(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CellError(f"{sidecar(path)}: unreadable export record ({exc})") from exc


def publish(tmp: Path, final: Path, meta: dict) -> None:
    """Move a finished file into place with its sidecar (sidecar last: it marks the file as complete)."""
    meta = meta | {"size": tmp.stat().st_size, "export_version": EXPORT_VERSION}
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
    publish(tmp, final, {"form": REFERENCE, "content_hash": artifact.content_hash, "probe_texts": len(probe_texts()),
                         "probe_seq_len": PROBE_SEQ_LEN} | meta)
    return final


def load_reference(artifact: Artifact) -> Reference:
    path = ensure(artifact, REFERENCE)
    meta = check_intact(path)
    try:
        with np.load(path) as z:
            encoded = Encoded(z["input_ids"], z["attention_mask"], z["token_type_ids"])
            output = z["output"]
    except (OSError, ValueError, KeyError) as exc:
        raise CellError(f"{path}: unreadable reference outputs ({exc}); delete it to rebuild") from exc
    return Reference(encoded, output, meta)


def prebuild(cells: list, seed: int = 0, log=print) -> int:
    """Build every derived file the cells need, whichever runtime and environment will run them: the torch
    environment runs this first (noxfile), so DeepSparse's environment finds e.g. the pruned80 exports that
    no torch or ONNX Runtime cell asked for."""
    from bench.runner import needed_forms, prepare_artifacts

    cells = [c for c in cells if c.suite != "glue"]  # glue cells run fine-tuned artifacts of their own
    artifacts = prepare_artifacts(cells, seed, check=False)
    built = 0
    for key in dict.fromkeys((c.backbone, c.sparsity, form) for c in cells for form in needed_forms(c)):
        backbone, sparsity, form = key
        path = ensure(artifacts[backbone, sparsity], form)
        built += 1
        log(f"{backbone} {sparsity} {form}: {path}")
    return built


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from bench.environment import apply_offline_env
    from bench.plan import load_preset

    parser = argparse.ArgumentParser(prog="python -m bench.exports",
                                     description="build the artifacts and ONNX exports a preset needs (torch env)")
    parser.add_argument("--preset", default="default")
    args = parser.parse_args(argv)
    apply_offline_env()
    try:
        plan = load_preset(args.preset)
        n = prebuild(plan.cells(), plan.seed)
    except (UsageError, CellError) as exc:
        print(f"bench.exports: error: {exc}", file=sys.stderr)
        return 2
    print(f"{n} derived files ready")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
