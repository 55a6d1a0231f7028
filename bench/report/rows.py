"""The record frame every table is built from, the keys they group by, and what every table says the same way:
a variant's costs besides its speed, and the mark of an unmaintained runtime.

Cost columns (costs(): the report's comparison table and the leaderboard, one row per machine × configuration),
from the `runtime` fields the workers record (bench/resources.py); blank where no record of the row carries them
(records from before they existed), and left out where no row has them:
    disk_MB             size on disk of the model files the runtime read (MiB; `model_disk_bytes`)
    peak_rss_MB         the worker's peak resident memory (VmHWM, else ru_maxrss; MiB): the largest over the
                        row's ok records of the speed suites (params, latency, throughput, parity: GLUE evaluation
                        is left out), each written after its suite ran, so it covers loading and the timed suites
    first_inference_ms  time from nothing to the first answer: load + first encode + first forward at batch 1 ×
                        128 (`startup.first_inference_s`); the smallest over the row's ok latency/throughput
                        records (the other speed suites' where it has none): in one worker every record carries
                        the same start-up, and with a worker per cell the smallest is the least disturbed one
    fused_ops           op types the runtime's graph optimizer fused into, with their counts (ONNX Runtime:
                        `optimized_graph.fused` of the session's optimized graph, e.g. "LayerNormalization×13
                        SkipLayerNormalization×12"); "none" where nothing was fused, blank for other runtimes

Unmaintained runtimes (bench.runtimes.Runtime.unmaintained, looked up by name when the report is written, so old
records are marked too; names the registry does not know get no mark): shown tables append UNMAINTAINED_MARK to
the runtime's name (mark_unmaintained), with a footnote line per reason (unmaintained_notes).
"""

from __future__ import annotations

from dataclasses import fields

import pandas as pd

from bench.cell import Cell
from bench.records import Record
from bench.report.peaks import PEAK_KIND, machine_peaks
from bench.runtimes import REFERENCE_CONFIG, RUNTIMES, is_reference

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
        } | runtime_fields(r.runtime) | {f"m.{k}": v for k, v in r.metrics.items() if not isinstance(v, dict | list)}
          | {f"dev.{k}": r.samples.get(k) for k in DEV_SAMPLES if r.cell.suite == "glue"})
    df = pd.DataFrame(rows)
    keys = ["machine", *ROW, "suite", "batch", "seq_len", "task", "seed"]
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


SPEED_SUITES = ("params", "latency", "throughput", "parity")
TIMED_SUITES = ("latency", "throughput")
MIB = 2**20


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def runtime_fields(runtime: dict | None) -> dict:
    """The frame's `rt.*` columns from a record's `runtime` dict: None for whatever it lacks (older records)."""
    runtime = runtime if isinstance(runtime, dict) else {}
    memory, startup, graph = (runtime.get(k) if isinstance(runtime.get(k), dict) else {}
                              for k in ("memory", "startup", "optimized_graph"))
    return {"rt.peak_rss_bytes": _number(memory.get("peak_rss_bytes")),
            "rt.first_inference_s": _number(startup.get("first_inference_s")),
            "rt.model_disk_bytes": _number(runtime.get("model_disk_bytes")),
            "rt.fused_ops": fused_text(graph.get("fused")) if "fused" in graph else None}


def fused_text(fused) -> str | None:
    """{"SkipLayerNormalization": 12, ...} → "SkipLayerNormalization×12 ...", most frequent first; "none" for {}."""
    if not isinstance(fused, dict):
        return None
    counts = sorted(((str(op), n) for op, n in fused.items() if _number(n)), key=lambda kv: (-kv[1], kv[0]))
    return " ".join(f"{op}×{int(n)}" for op, n in counts) or "none"


def costs(df: pd.DataFrame) -> pd.DataFrame:
    """The cost columns (module docstring) indexed by machine × configuration; a column no row has is left out."""
    keys = ["machine", *ROW]
    if df.empty or "rt.peak_rss_bytes" not in df:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=keys))
    sel = df[(df.status == "ok") & df.suite.isin(SPEED_SUITES)].copy()
    sel["_timed"] = sel.suite.isin(TIMED_SUITES)
    out = {}
    for name, column, pick, scale in (("disk_MB", "rt.model_disk_bytes", "max", 1 / MIB),
                                      ("peak_rss_MB", "rt.peak_rss_bytes", "max", 1 / MIB),
                                      ("first_inference_ms", "rt.first_inference_s", "min", 1e3)):
        values = sel.assign(_v=pd.to_numeric(sel[column], errors="coerce")).dropna(subset=["_v"])
        if name == "first_inference_ms":  # the timed suites' records where the row has any
            values = values[values._timed == values.groupby(keys)._timed.transform("max")]
        if not values.empty:
            out[name] = values.groupby(keys)._v.agg(pick) * scale
    fused = sel.dropna(subset=["rt.fused_ops"]).sort_values("_timed", ascending=False, kind="stable")
    if not fused.empty:
        out["fused_ops"] = fused.groupby(keys)["rt.fused_ops"].first()
    return pd.DataFrame(out)


UNMAINTAINED_MARK = "†"


def unmaintained(runtime) -> str | None:
    """Why a runtime is unmaintained (bench.runtimes), None for maintained or unknown names."""
    r = RUNTIMES.get(str(runtime))
    return r.unmaintained if r else None


def mark_unmaintained(table: pd.DataFrame, column: str = "runtime") -> pd.DataFrame:
    """A copy with UNMAINTAINED_MARK after each unmaintained runtime's name (for shown tables, not CSV data)."""
    if column not in table or table.empty:
        return table
    out = table.copy()
    out[column] = [f"{v} {UNMAINTAINED_MARK}" if unmaintained(v) else v for v in out[column]]
    return out


def unmaintained_notes(runtimes) -> list[str]:
    """One footnote per reason among these runtime names: "† unmaintained: mxnet, mxnet-deploy: Apache MXNet…"."""
    by_reason: dict[str, list[str]] = {}
    for name in dict.fromkeys(map(str, runtimes)):
        reason = unmaintained(name)
        if reason:
            by_reason.setdefault(reason, []).append(name)
    return [f"{UNMAINTAINED_MARK} unmaintained: {', '.join(names)}: {reason}" for reason, names in by_reason.items()]
