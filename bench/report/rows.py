"""The record frame every table is built from, and the keys they group by."""

from __future__ import annotations

from dataclasses import fields

import pandas as pd

from bench.cell import Cell
from bench.records import Record
from bench.report.peaks import PEAK_KIND, machine_peaks
from bench.runtimes import REFERENCE_CONFIG, is_reference

ROW = ["backbone", "runtime", "precision", "sparsity", "device"]  # one configuration; tables add "machine"
REFERENCE_NAME = " ".join(REFERENCE_CONFIG.values())  # how tables and notes name the reference configuration
CELL_FIELDS = tuple(f.name for f in fields(Cell))
DEV_SAMPLES = ("predictions", "labels")  # a glue record's per-example samples, for paired comparisons of rows


def frame(records: list[Record]) -> pd.DataFrame:
    """One row per record (latest record of each cell per machine wins), metrics flattened."""
    rows, peaks = [], machine_peaks(records)
    for r in records:
        env = r.environment or {}
        rows.append({f: getattr(r.cell, f) for f in CELL_FIELDS} | {
            "status": r.status, "reason": r.reason, "finished": r.finished or "",
            "pretrained": bool(r.artifact.get("pretrained")), "machine": env.get("machine") or "unknown",
            "cpu": (env.get("cpu") or {}).get("model"), "threads": (r.settings or {}).get("threads"),
            "peak_gflops": peaks.get((env.get("machine") or "unknown", PEAK_KIND.get(r.cell.precision, ""))),
        } | {f"m.{k}": v for k, v in r.metrics.items() if not isinstance(v, dict | list)}
          | {f"dev.{k}": r.samples.get(k) for k in DEV_SAMPLES if r.cell.suite == "glue"})
    df = pd.DataFrame(rows)
    keys = ["machine", *ROW, "suite", "batch", "seq_len", "task"]
    return df.sort_values("finished").drop_duplicates(subset=keys, keep="last").reset_index(drop=True)


def metric(df: pd.DataFrame, suite: str, name: str, **shape) -> pd.Series:
    """Metric `name` of the suite's ok cells of that shape, indexed by machine × configuration."""
    sel = df[(df.suite == suite) & (df.status == "ok")]
    for key, value in shape.items():
        sel = sel[sel[key] == value]
    if sel.empty or f"m.{name}" not in sel:
        return pd.Series(dtype=float)
    return sel.set_index(["machine", *ROW])[f"m.{name}"]


def reference_values(values: pd.Series) -> dict[tuple, float]:
    """(machine, backbone, device) → the value on that backbone's reference row (bench.runtimes.is_reference),
    for a Series indexed by machine × configuration."""
    return {(m, b, d): v for (m, b, r, p, s, d), v in values.items() if is_reference(r, p, s)}
