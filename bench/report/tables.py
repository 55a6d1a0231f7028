"""The report: one comparison table (Markdown + CSV) plus GLUE scores, cells without numbers and the
environment.

One row per machine × backbone × runtime × precision × sparsity × device. Speed-up is against that
backbone's reference row (bench.runtimes.REFERENCE_CONFIG) on the same device at the reference sequence
length; GFLOP/s is shown as % of the GEMM peak the harness measured on the same machine. What a row costs besides
its speed (disk_MB, peak_rss_MB, first_inference_ms, fused_ops) is defined once in bench.report.rows. Shown tables
mark unmaintained runtimes with † and a footnote; the CSV keeps the runtime names as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench import stats
from bench.environment import isa_summary
from bench.files import atomic_write
from bench.markdown import markdown_text
from bench.records import Record
from bench.report.glue_scores import GLUE_HELP, glue_columns, glue_scores
from bench.report.peaks import machine_peaks, peak_line
from bench.report.rows import (
    REFERENCE_NAME,
    ROW,
    costs,
    frame,
    mark_unmaintained,
    metric,
    reference_values,
    unmaintained_notes,
)

REFERENCE_SEQ = 128  # the sequence length speed-up and GFLOP/s are shown at (else the shortest measured)


def comparison(df: pd.DataFrame) -> pd.DataFrame:
    """The headline table."""
    index = df[["machine", *ROW, "pretrained"]].drop_duplicates(subset=["machine", *ROW]).set_index(
        ["machine", *ROW])
    table = index.copy()
    table["params_M"] = metric(df, "params", "total") / 1e6
    table["weights_MB"] = metric(df, "params", "bytes") / 2**20
    table["nonzero_%"] = stats.nonzero_pct(metric(df, "params", "sparsity"))
    seqs = sorted(df.loc[(df.suite == "latency"), "seq_len"].dropna().unique())
    for s in seqs:
        table[f"p50_ms_s{s}"] = metric(df, "latency", "p50_ms", seq_len=s, batch=1)
    ref_seq = REFERENCE_SEQ if REFERENCE_SEQ in seqs else (seqs[0] if seqs else None)
    if ref_seq is not None:
        table[f"cv_%_s{ref_seq}"] = 100 * metric(df, "latency", "cv", seq_len=ref_seq, batch=1)
        lat = table[f"p50_ms_s{ref_seq}"]
        ref = reference_values(lat)
        ref_lat = [ref.get((m, b, d), np.nan) for m, b, _r, _p, _s, d in lat.index]
        table[f"speedup_s{ref_seq}"] = stats.speedup(np.array(ref_lat, dtype=float), lat.to_numpy(dtype=float))
        _paired(df, table, f"speedup_s{ref_seq}", "latency", seq_len=ref_seq, batch=1)
        gflops = metric(df, "latency", "gflops_per_s", seq_len=ref_seq, batch=1)
        peak = pd.to_numeric(df.drop_duplicates(["machine", *ROW]).set_index(["machine", *ROW])["peak_gflops"],
                             errors="coerce")
        table[f"gflops_s{ref_seq}"] = gflops
        table["%_of_peak"] = stats.percent_of_peak(gflops.reindex(table.index).to_numpy(dtype=float),
                                                   peak.reindex(table.index).to_numpy(dtype=float))
    parity = df[(df.suite == "parity") & (df.status == "ok")]
    if not parity.empty:
        table["max_abs_diff"] = metric(df, "parity", "max_abs_diff")
        table["cosine"] = metric(df, "parity", "cosine")
        if "m.agreement" in parity and parity["m.agreement"].notna().any():
            table["agreement_%"] = 100 * metric(df, "parity", "agreement")
    tput = df[(df.suite == "throughput") & (df.status == "ok")]
    if not tput.empty:
        best = tput.sort_values("m.sequences_per_s").groupby(["machine", *ROW]).tail(1).set_index(
            ["machine", *ROW])
        table["best_seq_per_s"] = best["m.sequences_per_s"]
        table["best_tok_per_s"] = best["m.tokens_per_s"]
        table["at_batch"] = best["batch"].astype("Int64")
        if "m.speedup" in best and best["m.speedup"].notna().any():  # measured in interleaved rounds
            table["best_speedup"] = best["m.speedup"]
            table["best_speedup_low"], table["best_speedup_high"] = best["m.speedup_low"], best["m.speedup_high"]
    for name, values in costs(df).items():
        table[name] = values
    glue_columns(df, table)
    counts = df.groupby(["machine", *ROW])["status"].value_counts().unstack(fill_value=0)
    statuses = {i: ", ".join(f"{int(n)} {s}" for s, n in zip(counts.columns, row, strict=True) if n)
                for i, row in zip(counts.index, counts.to_numpy(), strict=True)}
    table["cells"] = [statuses.get(i, "") for i in table.index]
    table["pretrained"] = table["pretrained"].map({True: "yes", False: "no (random)"})
    return table.reset_index()


def _paired(df: pd.DataFrame, table: pd.DataFrame, column: str, suite: str, **shape) -> None:
    """Where the cells were measured in interleaved rounds, the speed-up is the paired one over those rounds
    (bench.stats.paired_ratio, stored in the record) with its 95% interval in `<column>_low`/`_high`."""
    paired = metric(df, suite, "speedup", **shape)
    if paired.empty or not paired.notna().any():
        return
    table[column] = paired.reindex(table.index).fillna(table[column])
    table[f"{column}_low"] = metric(df, suite, "speedup_low", **shape)
    table[f"{column}_high"] = metric(df, suite, "speedup_high", **shape)


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
    """One Markdown line per machine: hardware, threads, GEMM peaks, libraries, git commit."""
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
            f"numpy or ONNX Runtime 2048², others torch/ONNX Runtime where native; best of the records' measurements); "
            f"{libs};"
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
          markdown_table(mark_unmaintained(shown)), *footnotes(table.runtime), "", COLUMN_HELP]
    for name, frame_, wanted in (("glue", scores, not scores.empty), ("problems", bad, not bad.empty)):
        path = out_dir / f"{name}.csv"
        if wanted:
            paths[name] = path
            atomic_write(path, frame_.to_csv(index=False))
        else:
            path.unlink(missing_ok=True)  # a stale file from an earlier report of this directory
    if not scores.empty:
        md += ["", "## GLUE dev scores", "", GLUE_HELP, "", markdown_table(mark_unmaintained(scores)),
               *footnotes(scores.runtime), "", *(f"- {markdown_text(n)}" for n in notes)]
    md += problem_lines(bad)
    atomic_write(paths["md"], "\n".join(md) + "\n")
    return paths


def footnotes(runtimes) -> list[str]:
    """The Markdown footnotes under a table whose runtimes are marked: one paragraph per reason."""
    return [line for note in unmaintained_notes(runtimes) for line in ("", markdown_text(note))]


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
        return f"{value:.0f}" if abs(value) >= 1000 else format(value, floatfmt)  # 1234, not 1.23e+03
    return markdown_text(value)


COLUMN_HELP = f"""Columns: `pretrained` no = seeded random weights (speed and size only, never accuracy); `params_M`
parameters as the runtime holds them (millions); `weights_MB` their storage at that precision; `nonzero_%` share of
nonzero parameters (pruned80/pruned90: 80/90% of the encoder's Linear weights are zero, embeddings are kept);
`p50_ms_sN` median batch-1 latency at sequence length N; `cv_%` coefficient of variation of those samples; `speedup`
{REFERENCE_NAME} latency / this row's (same backbone, device, sequence length); `gflops` achieved forward GFLOP/s at
batch 1, and `%_of_peak` that as a share of the GEMM peak of the row's own precision measured on the same machine
(fp32, bf16, fp16 or int8; best of the records' measurements; empty where the CPU has no native kernel for that
precision); `max_abs_diff` / `cosine` this row's outputs vs torch fp32 outputs of the same weights on 16 real
sentences (fp32 rows must keep max |diff| <= rel_tol x max|ref| and cosine >= min_cosine: the [parity] criterion),
`agreement_%` predicted-class agreement for task heads; `best_seq_per_s` / `best_tok_per_s` best throughput over the
batch sweep, `at_batch` the batch that gave it; `disk_MB` size of the model files the runtime read; `peak_rss_MB`
the worker's peak resident memory over the row's speed suites (loading included); `first_inference_ms` load + first
encode + first forward at batch 1 × 128, the smallest over the row's timed cells; `fused_ops` op types the runtime's
optimizer fused into, with counts (ONNX Runtime); `cells` cell statuses of the row; † an unmaintained runtime
(footnote under the table). GLUE: `<task>_<metric>` the task's headline dev metric in points (accuracy; f1 for MRPC,
mcc for CoLA, pearson for STS-B; the median over fine-tuning seeds), `<task>_drop` points below the
{REFERENCE_NAME} row (negative: higher; with several seeds the change pooled over them, as in the GLUE table)."""
