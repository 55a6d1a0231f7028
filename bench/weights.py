"""Reading safetensors headers without a framework: shapes for FLOP counts, and up-front validation so a
truncated or corrupt weights file is one clear error instead of a crash inside a runtime."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from bench.errors import UsageError

_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def read_header(path: Path) -> dict[str, dict]:
    """The tensor table of a safetensors file, checked against the file's size."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than the 8-byte header length")
            (n,) = struct.unpack("<Q", raw)
            if n > size - 8:
                raise ValueError(f"header length {n} exceeds the file ({size} bytes)")
            header = json.loads(f.read(n))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a valid safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise UsageError(f"{path}: not a valid safetensors file (header is not a table)")
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = 0
    for name, info in tensors.items():
        try:
            start, stop = info["data_offsets"]
            expected = math.prod(info["shape"]) * _DTYPE_BYTES.get(info["dtype"], 1)
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: tensor {name!r} has a malformed header entry") from exc
        if stop - start != expected:
            raise UsageError(f"{path}: tensor {name!r} has {stop - start} bytes for shape {info['shape']}")
        end = max(end, stop)
    if 8 + n + end > size:
        raise UsageError(f"{path}: truncated ({size} bytes, tensors need {8 + n + end})")
    return tensors


def safetensors_shapes(path: Path) -> dict[str, list[int]]:
    return {k: v["shape"] for k, v in read_header(path).items()}
