"""Content keys: the one way cache entries, records and derived files are named after what they were made from."""

from __future__ import annotations

import hashlib
import json


def digest(ident: object, length: int) -> str:
    """The first `length` hex digits of the sha256 of `ident` as canonical JSON (sorted keys; values JSON cannot
    hold, such as paths, by their str)."""
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:length]
