"""Typed settings from TOML tables: one validator for every table a preset or recipe file holds.

Each settings dataclass declares its keys, types and defaults as fields; `from_table` checks a table against them
(unknown keys, wrong types, negative or non-finite numbers are one-line errors) and the dataclass checks what only
it knows (a cosine <= 1, a schedule that ends after it starts) in its own `__post_init__`.
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TypeVar

from bench.errors import UsageError

T = TypeVar("T")


def from_table(cls: type[T], values: dict, where: str) -> T:
    """`cls` with the table's values over its defaults: lists become tuples, numbers must be finite and >= 0
    (integers in a list >= 1: lengths and batch sizes)."""
    if not isinstance(values, dict):
        raise UsageError(f"{where} must be a table")
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls)}
    unknown = set(values) - set(defaults)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    out = {key: _value(defaults[key], value, f"{where}: {key}") for key, value in values.items()}
    try:
        return cls(**out)
    except UsageError as exc:
        raise UsageError(f"{where}: {exc}") from exc


def _value(default, value, where: str):
    if isinstance(default, tuple):
        if not isinstance(value, list) or not value:
            raise UsageError(f"{where} must be a non-empty list")
        if default and isinstance(default[0], int):
            return tuple(integer(v, where, minimum=1) for v in value)
        if not all(isinstance(v, str) for v in value):
            raise UsageError(f"{where} must be a list of strings")
        return tuple(value)
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
