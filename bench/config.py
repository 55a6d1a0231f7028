"""Typed settings from TOML tables: one validator for every table a preset or recipe file holds.

Each settings dataclass declares its keys, types and defaults as fields; `from_table` checks a table against them
(unknown keys, wrong types, negative or non-finite numbers are one-line errors) and the dataclass checks what only
it knows (a cosine <= 1, a schedule that ends after it starts) in its own `__post_init__`.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TypeVar, get_args, get_type_hints

from bench.errors import UsageError

T = TypeVar("T")


def from_table(cls: type[T], values: dict, where: str) -> T:
    """`cls` with the table's values over its defaults: lists become tuples of the field's declared element type,
    numbers must be finite and >= 0. Integers in a list are >= 1 (lengths and batch sizes) unless the field's
    metadata says otherwise (`field(metadata={"minimum": 0, "unique": True})`, as seeds)."""
    if not isinstance(values, dict):
        raise UsageError(f"{where} must be a table")
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls)}
    unknown = set(values) - set(defaults)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    hints = get_type_hints(cls)
    meta = {f.name: f.metadata for f in fields(cls)}
    out = {key: _value(defaults[key], value, f"{where}: {key}", hints.get(key), meta[key])
           for key, value in values.items()}
    try:
        return cls(**out)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc


def _element_type(default: tuple, hint) -> type:
    """What a tuple field holds: its annotation's element type (`tuple[int, ...]`), else its default's first item's
    (so an empty default is typed too)."""
    args = [a for a in get_args(hint) if a is not Ellipsis]
    if args and isinstance(args[0], type):
        return args[0]
    return type(default[0]) if default else str


def _value(default, value, where: str, hint=None, meta=None):
    meta = meta or {}
    if isinstance(default, tuple):
        if not isinstance(value, list) or not value:
            raise UsageError(f"{where} must be a non-empty list")
        if _element_type(default, hint) is int:
            out = tuple(integer(v, where, minimum=meta.get("minimum", 1)) for v in value)
        elif all(isinstance(v, str) for v in value):
            out = tuple(value)
        else:
            raise UsageError(f"{where} must be a list of strings")
        if meta.get("unique") and len(set(out)) < len(out):
            raise UsageError(f"{where}: {list(out)} names an entry twice")
        return out
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UsageError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise UsageError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, float):
        return number(value, where)
    return integer(value, where, minimum=0)


def integer(value, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise UsageError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)
