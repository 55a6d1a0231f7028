"""Report: pandas over records → one comparison table (Markdown + CSV) plus failures and the environment.

One row per backbone × runtime × precision × sparsity × device. Speed-up is against that backbone's torch
fp32 dense row on the same device at the reference sequence length; GFLOP/s is shown as % of the fp32 GEMM
peak the harness measured on the same machine in the same run.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from bench.catalogue import published_glue
from bench.environment import isa_summary
from bench.glue.tasks import TASKS
from bench.output import atomic_write, markdown_text
from bench.plan import Cell
from bench.records import Record

ROW = ["backbone", "runtime", "precision", "sparsity", "device"]
REFERENCE_SEQ = 128
CELL_FIELDS = tuple(f.name for f in fields(Cell))


PEAK_KIND = {"fp32": "fp32", "bf16": "bf16", "fp16": "fp16", "int8": "int8", "int8-static": "int8"}  # precision ->


def machine_peaks(records: list[Record]) -> dict[tuple[str, str], float]:
    """GEMM peak per (machine, precision kind): the best of the measurements its records carry. fp32 is numpy's
    (`gemm_peak`), bf16/fp16/int8 the framework's where the CPU runs them natively (`gemm_peaks`). Each
    environment measures once at its start, and a busy moment only lowers a measurement (one run here measured
    107 GFLOP/s in one environment and 207-214 in the others), so the best is the peak."""
    peaks: dict[tuple[str, str], float] = {}

    def add(machine: str, kind: str, entry) -> None:
        gflops = (entry or {}).get("gflops") if isinstance(entry, dict) else None
        if isinstance(gflops, int | float):
            peaks[machine, kind] = max(peaks.get((machine, kind), 0.0), float(gflops))

    for r in records:
        env = r.environment or {}
        machine = env.get("machine") or "unknown"
        add(machine, "fp32", env.get("gemm_peak"))
        for kind, entry in (env.get("gemm_peaks") or {}).items():
            if kind in PEAK_KIND.values():
                add(machine, kind, entry)
    return peaks


def peak_line(peaks: dict[tuple[str, str], float], machine: str) -> str:
    """'fp32 212, bf16 540, int8 1210 GOP/s' for one machine, in the kinds' order."""
    kinds = [k for k in dict.fromkeys(PEAK_KIND.values()) if (machine, k) in peaks]
    return ", ".join(f"{k} {peaks[machine, k]:.0f}" for k in kinds) + " GFLOP/s (int8: GOP/s)" if kinds else "—"


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
        } | {f"m.{k}": v for k, v in r.metrics.items() if not isinstance(v, dict | list)})
    df = pd.DataFrame(rows)
    keys = ["machine", *ROW, "suite", "batch", "seq_len", "task"]
    return df.sort_values("finished").drop_duplicates(subset=keys, keep="last").reset_index(drop=True)


def _metric(df: pd.DataFrame, suite: str, name: str, **shape) -> pd.Series:
    sel = df[(df.suite == suite) & (df.status == "ok")]
    for key, value in shape.items():
        sel = sel[sel[key] == value]
    if sel.empty or f"m.{name}" not in sel:
        return pd.Series(dtype=float)
    return sel.set_index(["machine", *ROW])[f"m.{name}"]


def comparison(df: pd.DataFrame) -> pd.DataFrame:
    """The headline table."""
    index = df[["machine", *ROW, "pretrained"]].drop_duplicates(subset=["machine", *ROW]).set_index(
        ["machine", *ROW])
    table = index.copy()
    table["params_M"] = _metric(df, "params", "total") / 1e6
    table["weights_MB"] = _metric(df, "params", "bytes") / 2**20
    table["nonzero_%"] = 100 * (1 - _metric(df, "params", "sparsity"))
    seqs = sorted(df.loc[(df.suite == "latency"), "seq_len"].dropna().unique())
    for s in seqs:
        table[f"p50_ms_s{s}"] = _metric(df, "latency", "p50_ms", seq_len=s, batch=1)
    ref_seq = REFERENCE_SEQ if REFERENCE_SEQ in seqs else (seqs[0] if seqs else None)
    if ref_seq is not None:
        table[f"cv_%_s{ref_seq}"] = 100 * _metric(df, "latency", "cv", seq_len=ref_seq, batch=1)
        lat = table[f"p50_ms_s{ref_seq}"]
        ref = {(m, b, d): v for (m, b, r, p, s, d), v in lat.items()
               if r == "torch" and p == "fp32" and s == "dense" and pd.notna(v)}
        table[f"speedup_s{ref_seq}"] = [
            ref.get((m, b, d), np.nan) / v if pd.notna(v) else np.nan
            for (m, b, _r, _p, _s, d), v in lat.items()]
        gflops = _metric(df, "latency", "gflops_per_s", seq_len=ref_seq, batch=1)
        peak = pd.to_numeric(df.drop_duplicates(["machine", *ROW]).set_index(["machine", *ROW])["peak_gflops"],
                             errors="coerce")
        table[f"gflops_s{ref_seq}"] = gflops
        table["%_of_peak"] = [100 * g / peak.get(idx, np.nan) if pd.notna(g) else np.nan
                              for idx, g in gflops.reindex(table.index).items()]
    parity = df[(df.suite == "parity") & (df.status == "ok")]
    if not parity.empty:
        table["max_abs_diff"] = _metric(df, "parity", "max_abs_diff")
        table["cosine"] = _metric(df, "parity", "cosine")
        if "m.agreement" in parity and parity["m.agreement"].notna().any():
            table["agreement_%"] = 100 * _metric(df, "parity", "agreement")
    tput = df[(df.suite == "throughput") & (df.status == "ok")]
    if not tput.empty:
        best = tput.sort_values("m.sequences_per_s").groupby(["machine", *ROW]).tail(1).set_index(
            ["machine", *ROW])
        table["best_seq_per_s"] = best["m.sequences_per_s"]
        table["best_tok_per_s"] = best["m.tokens_per_s"]
        table["at_batch"] = best["batch"].astype("Int64")
    glue_columns(df, table)
    counts = df.groupby(["machine", *ROW])["status"].value_counts().unstack(fill_value=0)
    statuses = {i: ", ".join(f"{int(n)} {s}" for s, n in zip(counts.columns, row, strict=True) if n)
                for i, row in zip(counts.index, counts.to_numpy(), strict=True)}
    table["cells"] = [statuses.get(i, "") for i in table.index]
    table["pretrained"] = table["pretrained"].map({True: "yes", False: "no (random)"})
    return table.reset_index()


def glue_columns(df: pd.DataFrame, table: pd.DataFrame) -> None:
    """Per GLUE task: its headline dev metric in points, and the drop (points) from the same backbone's torch
    fp32 dense row on the same machine and device, so accuracy sits next to latency and throughput."""
    sel = df[(df.suite == "glue") & (df.status == "ok")] if "task" in df else df.iloc[0:0]
    for task in sorted(sel.task.dropna().unique()):
        rows = sel[sel.task == task]
        metric = rows["m.metric"].dropna().iloc[0] if "m.metric" in rows else "accuracy"
        if f"m.{metric}" not in rows:
            continue
        values = 100 * rows.set_index(["machine", *ROW])[f"m.{metric}"].astype(float)
        ref = {(m, b, d): v for (m, b, r, p, s, d), v in values.items()
               if r == "torch" and p == "fp32" and s == "dense"}
        table[f"{task}_{metric}"] = values
        table[f"{task}_drop"] = [ref.get((m, b, d), np.nan) - v
                                 for (m, b, _r, _p, _s, d), v in table[f"{task}_{metric}"].items()]


def glue_scores(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """GLUE dev scores as configuration rows × task columns, in points, each with its change from the same
    backbone's torch fp32 dense row (points and relative %), so what a precision or a sparsity costs reads
    across a row. A backbone with a published row in the catalogue gets it first, and its torch fp32 dense
    row shows the gap to it. Returns the table (empty without GLUE records) and a note per published source."""
    sel = df[(df.suite == "glue") & (df.status == "ok") & df.pretrained.astype(bool)] if "task" in df else df[:0]
    sel = sel[sel.task.notna()] if not sel.empty else sel
    if sel.empty or "m.metric" not in sel:
        return pd.DataFrame(), []
    keys = ["machine", *ROW]
    order = [t for t in TASKS if t in set(sel.task)] + sorted(set(sel.task) - set(TASKS))
    metric = {t: sel.loc[sel.task == t, "m.metric"].dropna().iloc[0] for t in order}
    score = {}
    for rec in sel.to_dict("records"):
        value = rec.get(f"m.{metric[rec['task']]}")
        if isinstance(value, int | float) and pd.notna(value):
            score[(*(rec[k] for k in keys), rec["task"])] = 100 * float(value)
    configs = sorted({k[:-1] for k in score}, key=lambda k: (k[0], k[1], k[5], not _is_ref(k), k[2], k[3], k[4]))
    rows, notes = [], []
    for backbone in dict.fromkeys(k[1] for k in configs):
        pub = published_glue(backbone)
        if pub and any(t in pub.scores for t in order):
            rows.append({"machine": "", "backbone": backbone, "runtime": f"published: {pub.model}",
                         "precision": "", "sparsity": "", "device": ""} |
                        {f"{t} {metric[t]}": format(pub.scores[t], "g") for t in order if t in pub.scores})
            notes.append(f"published: {pub.model} from {pub.source}" + (f"; {pub.note}" if pub.note else ""))
        for k in (c for c in configs if c[1] == backbone):
            ref_key = (k[0], k[1], "torch", "fp32", "dense", k[5])
            row = dict(zip(keys, k, strict=True))
            for t in order:
                v, ref = score.get((*k, t)), score.get((*ref_key, t))
                if v is None:
                    continue
                text = f"{v:.2f}"
                if _is_ref(k):
                    gap = pub.scores.get(t) if pub else None
                    text += f" ({v - gap:+.2f} vs published)" if gap is not None else ""
                elif ref is not None:
                    text += f" ({v - ref:+.2f} pt, {100 * (v - ref) / abs(ref):+.2f}%)" if ref else ""
                row[f"{t} {metric[t]}"] = text
            rows.append(row)
    table = pd.DataFrame(rows).fillna("")
    if table["machine"].replace("", np.nan).nunique() <= 1:
        table = table.drop(columns=["machine"])
    return table, notes


def _is_ref(key: tuple) -> bool:
    """(machine, backbone, runtime, precision, sparsity, device): the torch fp32 dense reference row."""
    return key[2:5] == ("torch", "fp32", "dense")


def problems(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell that did not produce numbers (skipped or failed), with its reason."""
    bad = df[df.status != "ok"]
    return bad[[*ROW, "suite", "task", "batch", "seq_len", "status", "reason"]].reset_index(drop=True)


def problem_summary(bad: pd.DataFrame) -> pd.DataFrame:
    """problems() grouped by status and reason: a count and, per cell field, the values the group spans, so a
    reason shared by dozens of cells (no GPU, no train split) is one row; failures first."""
    fields = [c for c in bad.columns if c not in ("status", "reason")]
    rows = []
    for (status, reason), group in bad.fillna({"reason": ""}).groupby(["status", "reason"], sort=False):
        spans = []
        for f in fields:
            values = [str(v) for v in dict.fromkeys(group[f].tolist()) if pd.notna(v) and v not in ("", 0)]
            if values:
                spans.append(f"{f} {'/'.join(values)}")
        rows.append({"status": status, "cells": len(group), "which": "; ".join(spans), "reason": reason})
    out = pd.DataFrame(rows, columns=["status", "cells", "which", "reason"])
    failed_first = out.assign(_rank=out.status != "failed").sort_values(["_rank", "cells"], ascending=[True, False],
                                                                          kind="stable")
    return failed_first.drop(columns="_rank").reset_index(drop=True)


def environment_lines(records: list[Record]) -> list[str]:
    seen, lines, peaks = set(), [], machine_peaks(records)
    for r in records:
        env = r.environment or {}
        if env.get("machine") in seen:
            continue
        seen.add(env.get("machine"))
        cpu = env.get("cpu", {})
        cpuid = f" (family/model/stepping {cpu['cpuid']})" if cpu.get("cpuid") else ""
        libs = ", ".join(f"{k} {v}" for k, v in sorted(env.get("libraries", {}).items()))
        git = env.get("git") or {}
        lines.append(
            f"- machine `{env.get('machine')}`: {cpu.get('model')}{cpuid}, {cpu.get('physical_cores')} cores "
            f"({cpu.get('logical_cores')} logical), {cpu.get('memory_gib')} GiB, {isa_summary(cpu.get('flags'))}; "
            f"flags {' '.join(cpu.get('flags', []))}; GPUs: "
            f"{', '.join(g['name'] for g in env.get('gpus', [])) or 'none'}; threads per cell "
            f"{r.settings.get('threads')}; GEMM peaks {peak_line(peaks, env.get('machine') or 'unknown')} (fp32: "
            f"numpy 2048², others torch where native; best of the records' measurements); {libs};"
            f" git {str(git.get('commit'))[:10]}"
            f"{' (dirty)' if git.get('dirty') else ''}")
    return lines


def write(records: list[Record], out_dir: Path, title: str = "backbone-bench report",
          df: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write report.md and report.csv, glue.csv with GLUE records, problems.csv when any cell did not pass."""
    out_dir.mkdir(parents=True, exist_ok=True)
    df = frame(records) if df is None else df
    table = comparison(df)
    bad = problems(df)
    scores, notes = glue_scores(df)
    paths = {"csv": out_dir / "report.csv", "md": out_dir / "report.md"}
    atomic_write(paths["csv"], table.to_csv(index=False, float_format="%.4g"))
    shown = table.drop(columns=["machine"]) if table["machine"].nunique() == 1 else table
    md = [f"# {title}", "", *map(markdown_text, environment_lines(records)), "",
          markdown_table(shown), "", COLUMN_HELP]
    for name, frame_, wanted in (("glue", scores, not scores.empty), ("problems", bad, not bad.empty)):
        path = out_dir / f"{name}.csv"
        if wanted:
            paths[name] = path
            atomic_write(path, frame_.to_csv(index=False))
        else:
            path.unlink(missing_ok=True)  # a stale file from an earlier report of this directory
    if not scores.empty:
        md += ["", "## GLUE dev scores", "", GLUE_HELP, "", markdown_table(scores), "",
               *(f"- {markdown_text(n)}" for n in notes)]
    md += problem_lines(bad)
    atomic_write(paths["md"], "\n".join(md) + "\n")
    return paths


def problem_lines(bad: pd.DataFrame) -> list[str]:
    """The Markdown section on cells without numbers: grouped by reason; the full list is problems.csv."""
    if bad.empty:
        return []
    return ["", "## Cells that did not produce numbers", "",
            f"{len(bad)} cells, grouped by reason (one line per cell: `problems.csv`).", "",
            markdown_table(problem_summary(bad))]


def markdown_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """DataFrame → Markdown with every text cell escaped. Cells are formatted here (numbers right-aligned,
    blanks for missing) so tabulate need not guess column types, which is slow on big tables."""
    cols, align = {}, []
    for name in df.columns:
        col = df[name]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        align.append("right" if numeric else "left")
        cols[markdown_text(name)] = [_cell(v, floatfmt, numeric) for v in col.tolist()]
    if not len(df):
        return pd.DataFrame(columns=list(cols)).to_markdown(index=False)
    from tabulate import tabulate

    return tabulate(cols, headers="keys", tablefmt="pipe", disable_numparse=True, colalign=align)


def _cell(value, floatfmt: str, numeric: bool) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    if numeric and isinstance(value, float):
        return format(value, floatfmt)
    return markdown_text(value)


GLUE_HELP = """Headline dev metric per task in points (accuracy; F1 for MRPC, MCC for CoLA, Pearson for STS-B).
In brackets: the change from the same backbone's torch fp32 dense row, in points and relative; on that row,
the gap to the published row where the catalogue has one. Every row evaluates the same fine-tuned weights
(sparse rows: the checkpoint pruned during fine-tuning) through its runtime and precision."""

COLUMN_HELP = """Columns: `pretrained` no = seeded random weights (speed and size only, never accuracy);
`params_M` parameters as the runtime holds them (millions); `weights_MB` their storage at that precision;
`nonzero_%` share of nonzero parameters (pruned80/pruned90: 80/90% of the encoder's Linear weights are
zero, embeddings are kept); `p50_ms_sN` median batch-1 latency at sequence length N;
`cv_%` coefficient of variation of those samples; `speedup` torch fp32 dense latency / this row's (same
backbone, device, sequence length); `gflops` achieved forward GFLOP/s at batch 1, and `%_of_peak` that as a
share of the GEMM peak of the row's own precision measured on the same machine (fp32, bf16, fp16 or int8; best
of the records' measurements; empty where the CPU has no native kernel for that precision); `max_abs_diff` /
`cosine` this row's outputs vs torch fp32 outputs of the same weights on 16 real sentences (fp32 rows must keep
max |diff| <= rel_tol x max|ref| and cosine >= min_cosine: the [parity] criterion), `agreement_%`
predicted-class agreement for task heads; `best_seq_per_s` /
`best_tok_per_s` best throughput over the batch sweep, `at_batch` the batch that gave it; `cells` cell
statuses of the row. GLUE: `<task>_<metric>` the task's headline dev metric in points (accuracy; f1 for MRPC,
mcc for CoLA, pearson for STS-B), `<task>_drop` points below the torch fp32 dense row (negative: higher)."""
