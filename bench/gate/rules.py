"""Thresholds: how much worse a metric must be to count, per cell. They come from `Thresholds` defaults, a
TOML file (`[default]` plus `[[override]]` tables matched on cell fields, later overrides winning) and CLI
flags (which replace the defaults; file overrides, being more specific, still apply on top). A bad value is a
UsageError naming where it came from."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from bench.cell import Cell
from bench.errors import UsageError
from bench.gate.change import ACCURACY, LATENCY, THROUGHPUT

CELL_FIELDS = tuple(f.name for f in fields(Cell))


@dataclass(frozen=True)
class Thresholds:
    """How much worse counts, per metric kind: latency % slower, throughput % lower, accuracy points lower;
    alpha is the significance level of both two-sided tests (samples, and run medians when there are runs)."""

    latency_pct: float = 5.0
    throughput_pct: float = 5.0
    accuracy_points: float = 1.0
    alpha: float = 0.01

    def for_kind(self, kind: str) -> float:
        return {LATENCY: self.latency_pct, THROUGHPUT: self.throughput_pct, ACCURACY: self.accuracy_points}[kind]


THRESHOLD_KEYS = tuple(f.name for f in fields(Thresholds))


@dataclass(frozen=True)
class Override:
    """Thresholds for the cells whose fields equal every `match` value (e.g. backbone, suite)."""

    match: dict[str, object]
    values: dict[str, float]

    def applies(self, cell: Cell) -> bool:
        return all(getattr(cell, k) == v for k, v in self.match.items())


@dataclass(frozen=True)
class Rules:
    default: Thresholds = field(default_factory=Thresholds)
    overrides: tuple[Override, ...] = ()

    def for_cell(self, cell: Cell) -> Thresholds:
        t = self.default
        for o in self.overrides:
            if o.applies(cell):
                t = replace(t, **o.values)
        return t

    def with_defaults(self, **given: float | None) -> Rules:
        """CLI flags replace the defaults; file overrides (more specific) still apply on top."""
        values = {k: v for k, v in given.items() if v is not None}
        for k, v in values.items():
            _check_threshold(k, v, "command line")
        return replace(self, default=replace(self.default, **values))


def _check_threshold(key: str, value, where: str) -> float:
    if key not in THRESHOLD_KEYS:
        raise UsageError(f"{where}: unknown threshold {key!r}; allowed: {', '.join(THRESHOLD_KEYS)}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise UsageError(f"{where}: {key} must be a finite number >= 0, got {value!r}")
    if key == "alpha" and not 0 < value < 1:
        raise UsageError(f"{where}: alpha must be between 0 and 1, got {value!r}")
    return float(value)


def load_rules(path: Path | None) -> Rules:
    """Rules from a thresholds TOML file (None: the built-in defaults)."""
    if path is None:
        return Rules()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"thresholds file {path} not found") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: not a valid thresholds TOML file ({exc})") from exc
    unknown = set(data) - {"default", "override"}
    if unknown:
        raise UsageError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: [default], [[override]]")
    default = data.get("default", {})
    if not isinstance(default, dict):
        raise UsageError(f"{path}: [default] must be a table")
    base = Thresholds(**{k: _check_threshold(k, v, f"{path} [default]") for k, v in default.items()})
    overrides = []
    items = data.get("override", [])
    if not isinstance(items, list):
        raise UsageError(f"{path}: overrides must be [[override]] tables")
    for i, item in enumerate(items, start=1):
        where = f"{path} [[override]] #{i}"
        match = {k: v for k, v in item.items() if k in CELL_FIELDS}
        values = {k: _check_threshold(k, v, where) for k, v in item.items() if k not in CELL_FIELDS}
        if not match or not values:
            raise UsageError(f"{where}: needs at least one cell field ({', '.join(CELL_FIELDS)}) and one "
                             f"threshold ({', '.join(THRESHOLD_KEYS)})")
        overrides.append(Override(match, values))
    return Rules(base, tuple(overrides))
