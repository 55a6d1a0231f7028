"""The leaderboard's outputs: leaderboard.md, .csv, a self-contained .html (no network: inline CSS/JS from
bench/report/assets, the plot embedded, a Content-Security-Policy that only allows its own script) and
pareto.png/.svg.

The Markdown and HTML tables mark unmaintained runtimes (bench.report.rows.mark_unmaintained: "deepsparse †") with
a footnote per reason under the board; leaderboard.csv keeps the runtime names as they are. The cost columns
(disk_MB, peak_rss_MB, first_inference_ms, fused_ops) are defined in bench.report.rows and documented in
COLUMN_DOCS."""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

import numpy as np
import pandas as pd

from bench.environment import isa_summary
from bench.files import atomic_write
from bench.markdown import markdown_text
from bench.records import Record
from bench.report.peaks import machine_peaks, peak_line
from bench.report.plot import plot
from bench.report.ranking import DEFAULT_BUDGET_PCT, NO_ACCURACY, board, recommendations, speed_column
from bench.report.rows import REFERENCE_NAME, ROW, frame, mark_unmaintained, unmaintained_notes
from bench.report.tables import environment_lines, footnotes, markdown_table, problem_lines, problem_summary, problems

FACETS = ["backbone", "task", "runtime", "precision", "sparsity", "device", "machine"]  # the page's filters


@dataclass(frozen=True)
class Paths:
    md: Path
    csv: Path
    html: Path
    png: Path
    svg: Path


COLUMN_DOCS = [
    ("machine", "fingerprint of the hardware (CPU model, family/model/stepping, ISA flags, cores, memory, "
                "GPUs); see the environment panel"),
    ("backbone", "model architecture and weights (catalogue name or local directory)"),
    ("task", "GLUE task the accuracy belongs to; empty for speed-only rows"),
    ("runtime", "the inference runtime that ran the cell"),
    ("precision", "numeric precision of weights/activations (fp32, fp16, bf16, int8)"),
    ("sparsity", "weight sparsity variant (dense, or pruned %)"),
    ("device", "device that really ran the cell (cpu, cuda)"),
    ("recommended", "yes: the fastest configuration within the accuracy budget for this machine/backbone/task"),
    ("pretrained", "no (random) = seeded random weights: speed and size only, never accuracy"),
    ("acc_metric", "the task's headline GLUE metric (accuracy, f1, mcc, pearson)"),
    ("accuracy", "that metric on the dev set, in points (100 × fraction); the median over fine-tuning seeds"),
    ("acc_seeds", "how many fine-tuning seeds that accuracy is the median of ([glue] seeds; 1: the plan's seed)"),
    ("acc_drop_%", f"relative accuracy drop vs {REFERENCE_NAME} of the same backbone/task (%); with several "
                   "seeds pooled over them, as its interval"),
    ("acc_drop_low_%", "lower end of that drop's paired-bootstrap 95% interval over the same dev examples"),
    ("acc_drop_high_%", "upper end of that interval"),
    ("acc_budget", "the interval against the budget: within, beyond, or unresolved (this dev set cannot tell); "
                   "a row is admitted unless the whole interval lies beyond the budget"),
    ("params_M", "parameters as the runtime holds them (millions)"),
    ("weights_MB", "storage of those parameters at this precision (MiB)"),
    ("nonzero_%", "share of nonzero parameters (%)"),
    (r"p50_ms_s(\d+)", "median batch-1 latency at sequence length {0} (milliseconds)"),
    (r"cv_%_s(\d+)", "coefficient of variation of the latency samples at sequence length {0} (%)"),
    (r"speedup_s(\d+)", f"{REFERENCE_NAME} latency / this row's latency (same backbone, device; "
                         "length {0})"),
    (r"speedup_s(\d+)_low", "lower end of that speed-up's 95% interval over interleaved rounds (length {0})"),
    (r"speedup_s(\d+)_high", "upper end of that speed-up's 95% interval over interleaved rounds (length {0})"),
    (r"gflops_s(\d+)", "achieved forward GFLOP/s at batch 1, sequence length {0}"),
    ("%_of_peak", "that GFLOP/s as % of the GEMM peak of the row's own precision (fp32/bf16/fp16/int8) on the same "
                  "machine"),
    ("best_seq_per_s", "best throughput over the batch sweep (sequences per second)"),
    ("best_tok_per_s", "the same in tokens per second"),
    ("at_batch", "batch size that gave the best throughput"),
    ("best_speedup", f"that batch's throughput / {REFERENCE_NAME}'s at the same batch, paired over interleaved "
                     "rounds"),
    ("best_speedup_low", "lower end of its 95% interval"),
    ("best_speedup_high", "upper end of its 95% interval"),
    ("disk_MB", "size on disk of the model files the runtime read (MiB)"),
    ("peak_rss_MB", "the worker's peak resident memory (VmHWM; MiB), the largest over the row's speed-suite cells, "
                    "loading included"),
    ("first_inference_ms", "time to the first answer: load + first encode + first forward at batch 1 × 128 "
                           "(milliseconds), the smallest over the row's timed cells"),
    ("fused_ops", "op types the runtime's graph optimizer fused into, with counts (ONNX Runtime's optimized graph); "
                  "none: nothing fused"),
    ("cells", "statuses of the cells behind the row"),
]


def column_doc(name: str) -> str:
    """A leaderboard column's help text ("" for none); a pattern's group fills in the sequence length."""
    for pattern, text in COLUMN_DOCS:
        m = re.fullmatch(pattern, name) if "(" in pattern else None
        if m:
            return text.format(*m.groups())
        if pattern == name:
            return text
    return ""


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        v = float(value)
        if v == int(v) and abs(v) < 1e6:
            return f"{int(v)}" if abs(v) >= 100 or v == 0 else f"{v:.3g}"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(value)


def _raw(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)) or value is pd.NA:
        return ""
    return repr(float(value)) if isinstance(value, float | np.floating) else str(value)


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def environment_html(records: list[Record]) -> str:
    seen, parts, peaks = set(), [], machine_peaks(records)
    for r in records:
        env = r.environment or {}
        machine = env.get("machine") or "unknown"
        if machine in seen:
            continue
        seen.add(machine)
        cpu, git = env.get("cpu") or {}, env.get("git") or {}
        items = [
            ("CPU", f"{cpu.get('model')} ({cpu.get('arch')}), {cpu.get('physical_cores')} cores, "
                    f"{cpu.get('logical_cores')} logical, {cpu.get('memory_gib')} GiB"),
            ("CPU family/model/stepping", cpu.get("cpuid") or "—"),
            ("CPU flags", " ".join(cpu.get("flags", [])) or "—"),
            ("instruction sets", isa_summary(cpu.get("flags"))),
            ("GPUs", ", ".join(f"{g.get('name')} ({g.get('memory')})" for g in env.get("gpus") or []) or "none"),
            ("threads per cell", (r.settings or {}).get("threads")),
            ("GEMM peaks", peak_line(peaks, machine)),
            ("OS / Python", f"{env.get('os')} / {env.get('python')}"),
            ("libraries", ", ".join(f"{k} {v}" for k, v in sorted((env.get("libraries") or {}).items())) or "—"),
            ("git commit", f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"),
            ("harness", r.harness_version),
        ]
        dl = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in items)
        parts.append(f"<details open><summary>machine <code>{_esc(machine)}</code></summary><dl>{dl}</dl></details>")
    return "\n".join(parts)


def _table_html(df: pd.DataFrame, table_id: str, sortable: bool) -> str:
    numeric = {c: pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
               for c in df.columns}
    heads = []
    for c in df.columns:
        label = _esc(c)
        inner = f'<button type="button" title="{_esc(column_doc(c))}">{label}</button>' if sortable else label
        heads.append(f'<th data-type="{"num" if numeric[c] else "text"}" scope="col">{inner}</th>')
    body = []
    for row in df.itertuples(index=False, name=None):
        cells = []
        for c, v in zip(df.columns, row, strict=True):
            klass = ' class="num"' if numeric[c] else ""
            cells.append(f'<td data-v="{_esc(_raw(v))}"{klass}>{_esc(_fmt(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table id="{table_id}"><thead><tr>{"".join(heads)}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody></table>")


def _filters_html(table: pd.DataFrame) -> str:
    out = []
    for name in FACETS:
        if name not in table:
            continue
        col = list(table.columns).index(name)
        values = sorted({str(v) for v in table[name].fillna("")})
        options = "".join(f'<option value="{_esc(v or "__none__")}">{_esc(v or "(none)")}</option>' for v in values)
        out.append(f'<label>{_esc(name)} <select data-col="{col}"><option value="">all</option>{options}'
                   "</select></label>")
    out.append('<label>search <input id="search" type="search" placeholder="any text"></label>')
    out.append('<span id="count" aria-live="polite"></span>')
    return "\n".join(out)


def _asset(name: str) -> str:
    """A file of bench/report/assets, as text (package data: installed with the package)."""
    return resources.files("bench.report").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def html_page(table: pd.DataFrame, recs: pd.DataFrame, records: list[Record], png: bytes, plot_note: str,
              bad: pd.DataFrame, budget_pct: float, title: str) -> str:
    """One self-contained page: nothing is fetched, and the CSP allows only this page's own script."""
    script = _asset("leaderboard.js").removesuffix("\n")  # the file's final newline is not part of the script
    script_hash = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    shown_recs = recs.drop(columns=["recommended", *ROW[1:]])
    notes = "".join(f"<p class=note>{_esc(n)}</p>" for n in unmaintained_notes(table.runtime))
    docs = "".join(f"<dt>{_esc(c)}</dt><dd>{_esc(column_doc(c))}</dd>" for c in table.columns if column_doc(c))
    problems_html = (f"<h2>Cells that did not produce numbers</h2><p class=note>{len(bad)} cells, grouped by "
                     f"reason.</p><div class=wrap>{_table_html(problem_summary(bad), 'problems', False)}</div>"
                     if not bad.empty else "")
    return Template(_asset("leaderboard.html")).substitute(
        csp=csp, title=_esc(title), style=_asset("leaderboard.css").removesuffix("\n"), n_records=len(records),
        n_rows=len(table), n_machines=table.machine.nunique(),
        ranked_by="best throughput" if speed_column(table)[1] else "p50 latency", budget=format(budget_pct, "g"),
        reference=REFERENCE_NAME, no_accuracy=NO_ACCURACY,
        recommendations=_table_html(shown_recs, "recommendations", False),
        filters=_filters_html(mark_unmaintained(table)), board=_table_html(mark_unmaintained(table), "board", True),
        footnotes=notes, plot_note=_esc(plot_note), png=base64.b64encode(png).decode(),
        environment=environment_html(records), docs=docs, problems=problems_html, script=script)


def write(records: list[Record], out_dir: Path, budget_pct: float = DEFAULT_BUDGET_PCT,
          title: str = "backbone-bench leaderboard", df: pd.DataFrame | None = None) -> Paths:
    """leaderboard.md/.csv/.html and pareto.png/.svg in out_dir (`df`: frame(records), if at hand)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    df = frame(records) if df is None else df
    table = board(df, budget_pct)
    recs = recommendations(table, budget_pct)
    paths = Paths(*(out_dir / n for n in ("leaderboard.md", "leaderboard.csv", "leaderboard.html", "pareto.png",
                                          "pareto.svg")))
    note = plot(table, paths.png, paths.svg, budget_pct)
    atomic_write(paths.csv, table.to_csv(index=False, float_format="%.6g"))
    bad = problems(df)
    md = [f"# {title}", "", *map(markdown_text, environment_lines(records)), "",
          f"## Recommendations (fastest within {budget_pct:g}% relative accuracy drop)", "",
          markdown_table(recs.drop(columns=["recommended", *ROW[1:]])), "", "## Leaderboard", "",
          markdown_table(mark_unmaintained(table)), *footnotes(table.runtime), "",
          f"![Pareto plot: {note}](pareto.png)", "", "Columns: " + "; ".join(
              f"`{c}` {column_doc(c)}" for c in table.columns if column_doc(c)) + "."]
    md += problem_lines(bad)
    atomic_write(paths.md, "\n".join(md) + "\n")
    atomic_write(paths.html, html_page(table, recs, records, paths.png.read_bytes(), note, bad, budget_pct, title))
    return paths
