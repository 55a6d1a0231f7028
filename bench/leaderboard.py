"""Leaderboard: the report's comparison table with accuracy beside speed, a Pareto plot and a recommendation.

Rows are machine × backbone × task × runtime × precision × sparsity × device, so result sets from several
machines merge into one board. Speed comes from report.comparison(); accuracy from GLUE records (`suite="glue"`,
`cell.task` set, metrics such as `accuracy`, `f1`, `mcc`, `pearson` as fractions), shown in points. Speed cells
carry no task, so each task's accuracy row borrows the speed of the same configuration; a row without any
accuracy keeps task "".

The recommendation per machine/backbone/task is the fastest configuration whose accuracy drop relative to the
reference (torch fp32 dense) stays within a stated budget. Without accuracy it says "no accuracy measured":
speed alone is not a recommendation. Outputs: leaderboard.md, .csv, a self-contained .html (no network: inline
CSS/JS, the plot embedded, a Content-Security-Policy that only allows its own script) and pareto.png/.svg.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench.environment import isa_summary
from bench.gate import ACCURACY_METRICS, points
from bench.output import atomic_write
from bench.records import Record
from bench.report import (
    ROW,
    comparison,
    environment_lines,
    frame,
    machine_peaks,
    markdown_table,
    markdown_text,
    peak_line,
    problem_lines,
    problem_summary,
    problems,
)

# The GLUE task's headline metric when a record does not name it (`metrics["metric"]`); others: accuracy.
TASK_METRIC = {"cola": "mcc", "stsb": "pearson", "mrpc": "f1", "qqp": "f1"}
DEFAULT_BUDGET_PCT = 1.0
KEYS = ["machine", "backbone", "task", "runtime", "precision", "sparsity", "device"]
FACETS = ["backbone", "task", "runtime", "precision", "sparsity", "device", "machine"]
REFERENCE = {"runtime": "torch", "precision": "fp32", "sparsity": "dense"}
NO_ACCURACY = "no accuracy measured"
MAX_FACETS = 30


@dataclass(frozen=True)
class Paths:
    md: Path
    csv: Path
    html: Path
    png: Path
    svg: Path


# --- tables ------------------------------------------------------------------------------------------------

def accuracy_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per machine × configuration × task: the task's headline metric in points. Random-weight
    backbones never get an accuracy number (DESIGN.md honesty rules)."""
    if "suite" not in df or "task" not in df:
        return pd.DataFrame(columns=[*KEYS, "acc_metric", "accuracy"])
    sel = df[(df.suite == "glue") & (df.status == "ok") & df.task.notna() & df.pretrained.astype(bool)]
    rows = []
    for rec in sel.to_dict("records"):
        headline = rec.get("m.metric")  # the glue suite names the task's headline metric
        preferred = headline if isinstance(headline, str) else TASK_METRIC.get(rec["task"], "accuracy")
        metric = next((m for m in (preferred, *ACCURACY_METRICS) if _number(rec.get(f"m.{m}"))), None)
        if metric is None:
            continue
        rows.append({k: rec[k] for k in KEYS} | {"acc_metric": metric, "accuracy": points(rec[f"m.{metric}"])})
    return pd.DataFrame(rows, columns=[*KEYS, "acc_metric", "accuracy"])


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def speed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """report.comparison() for each task value of the speed cells ("" for task-free cells)."""
    speed = df[df.suite != "glue"] if "suite" in df else df
    if speed.empty:
        return pd.DataFrame(columns=[*KEYS, "pretrained"])
    parts = []
    tasks = speed.task.fillna("").astype(str)
    for task in sorted(tasks.unique()):
        part = comparison(speed[tasks == task].reset_index(drop=True))
        part.insert(2, "task", task)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def board(df: pd.DataFrame, budget_pct: float = DEFAULT_BUDGET_PCT) -> pd.DataFrame:
    """The leaderboard: accuracy rows joined to their configuration's speed, plus speed-only rows."""
    speed, acc = speed_rows(df), accuracy_rows(df)
    config = [k for k in KEYS if k != "task"]
    own = acc.merge(speed, on=KEYS, how="inner")
    rest = acc.merge(own[KEYS], on=KEYS, how="left", indicator=True)
    rest = rest[rest._merge == "left_only"].drop(columns="_merge")
    borrowed = rest.merge(speed[speed.task == ""].drop(columns="task"), on=config, how="left")
    covered = pd.concat([own[KEYS], borrowed[KEYS]])
    covered_configs = covered[config].drop_duplicates()
    left = speed.merge(covered[KEYS], on=KEYS, how="left", indicator=True)
    left = left[left._merge == "left_only"].drop(columns="_merge")
    generic = left.task == ""
    left_generic = left[generic].merge(covered_configs, on=config, how="left", indicator=True)
    left_generic = left_generic[left_generic._merge == "left_only"].drop(columns="_merge")
    out = pd.concat([x for x in (own, borrowed, left[~generic], left_generic) if not x.empty],
                    ignore_index=True)
    if out.empty:
        out = pd.DataFrame(columns=[*KEYS, "pretrained", "acc_metric", "accuracy"])
    for col in ("acc_metric", "accuracy"):
        if col not in out:
            out[col] = np.nan
    out["pretrained"] = out["pretrained"].fillna("yes")
    out["acc_metric"] = out["acc_metric"].astype(object).where(out["acc_metric"].notna(), "")
    out["accuracy"] = pd.to_numeric(out["accuracy"], errors="coerce")
    out.insert(out.columns.get_loc("accuracy") + 1, "acc_drop_%", _drops(out))
    front = [*KEYS, "pretrained", "acc_metric", "accuracy", "acc_drop_%"]
    out = out[front + [c for c in out.columns if c not in front]]
    out = out.sort_values(KEYS, key=lambda s: s.astype(str)).reset_index(drop=True)
    recs = recommendations(out, budget_pct)
    chosen = {tuple(r[k] for k in KEYS) for r in recs.to_dict("records") if r["recommended"]}
    out.insert(len(KEYS), "recommended", ["yes" if tuple(r) in chosen else "" for r in out[KEYS].to_numpy()])
    return out


def _is_reference(table: pd.DataFrame) -> pd.Series:
    return np.logical_and.reduce([table[k] == v for k, v in REFERENCE.items()])


def _drops(table: pd.DataFrame) -> list[float]:
    """Relative accuracy drop (%) from the reference of the same machine/backbone/task: the torch fp32 dense
    row (cpu preferred), or the best accuracy measured when that row is missing."""
    refs = {}
    for key, g in table[table.accuracy.notna()].groupby(["machine", "backbone", "task"]):
        ref = g[_is_reference(g)].sort_values("device", key=lambda d: d != "cpu")
        refs[key] = ref.accuracy.iloc[0] if not ref.empty else g.accuracy.max()
    out = []
    for m, b, t, acc in table[["machine", "backbone", "task", "accuracy"]].to_numpy():
        ref = refs.get((m, b, t))
        out.append(100 * (ref - acc) / abs(ref) if ref and pd.notna(acc) else np.nan)
    return out


def speed_column(table: pd.DataFrame) -> tuple[str | None, bool]:
    """The column that ranks speed and whether higher is better: best throughput or batch-1 latency (s128 if
    measured), whichever more rows have (a preset may sweep batches for one runtime only), throughput on a tie."""
    lat = sorted(c for c in table.columns if c.startswith("p50_ms_s"))
    ref = next((c for c in lat if c.endswith("s128")), lat[0] if lat else None)
    options = [(c, higher) for c, higher in (("best_seq_per_s", True), (ref, False)) if c in table]
    if not options:
        return None, False
    return max(options, key=lambda o: int(table[o[0]].notna().sum()))  # max keeps the first on a tie


def recommendations(table: pd.DataFrame, budget_pct: float = DEFAULT_BUDGET_PCT) -> pd.DataFrame:
    """Fastest configuration within the accuracy budget, per machine × backbone × task."""
    col, higher = speed_column(table)
    with_acc = {(m, b) for m, b, a in table[["machine", "backbone", "accuracy"]].to_numpy() if pd.notna(a)}
    rows = []
    for (machine, backbone, task), group in table.groupby(["machine", "backbone", "task"], sort=True):
        base = {"machine": machine, "backbone": backbone, "task": task}
        timed = group[group[col].notna()] if col else group.iloc[0:0]
        fastest = _best(timed, col, higher)
        if not group.accuracy.notna().any():
            if (machine, backbone) in with_acc:
                continue  # configurations no task evaluated; the task rows recommend
            random = (group.pretrained == "no (random)").all()
            note = ("random weights (pretrained: false) never get accuracy; " if random else "") + (
                f"fastest measured: {_config(fastest)} ({_speed(fastest, col)}), speed only" if fastest is not None
                else "no speed measured either")
            rows.append(base | {"recommendation": NO_ACCURACY, "recommended": False, "note": note})
            continue
        ok = timed[timed.accuracy.notna() & (timed["acc_drop_%"].fillna(np.inf) <= budget_pct + 1e-9)]
        best = _best(ok, col, higher)
        if best is None:
            rows.append(base | {"recommendation": "none within budget", "recommended": False,
                                "note": f"no timed configuration within {budget_pct:g}% accuracy drop"})
            continue
        speedup = ""
        if col and fastest is not None:
            ref = timed[_is_reference(timed)]
            if not ref.empty:
                r = ref[col].iloc[0]
                speedup = f"; {best[col] / r if higher else r / best[col]:.2f}× the torch fp32 dense speed"
        rows.append(base | {
            "recommendation": _config(best), "recommended": True, **{k: best[k] for k in ROW[1:]},
            "speed": _speed(best, col), "accuracy": best.accuracy, "acc_metric": best.acc_metric,
            "acc_drop_%": best["acc_drop_%"],
            "note": f"fastest of {len(ok)} within {budget_pct:g}% relative accuracy drop{speedup}"})
    cols = ["machine", "backbone", "task", "recommendation", "speed", "acc_metric", "accuracy", "acc_drop_%",
            "note", "recommended", *ROW[1:]]
    return pd.DataFrame(rows, columns=cols)


def _best(rows: pd.DataFrame, col: str | None, higher: bool):
    if rows.empty or col is None:
        return None
    return rows.loc[rows[col].idxmax() if higher else rows[col].idxmin()]


def _config(row) -> str:
    return " ".join(str(row[k]) for k in ROW[1:])


def _speed(row, col: str | None) -> str:
    if row is None or col is None:
        return ""
    return f"{row[col]:.4g} seq/s" if col == "best_seq_per_s" else f"p50 {row[col]:.4g} ms"


# --- plot --------------------------------------------------------------------------------------------------

def _plain(text) -> str:
    """Matplotlib treats $...$ as math: record text must stay literal."""
    return str(text).replace("$", r"\$")


def pareto_front(x: np.ndarray, y: np.ndarray, y_higher: bool) -> np.ndarray:
    """Indices of points no other point beats on both axes (x: higher is better), ordered by x."""
    good = y if y_higher else -y
    order = np.lexsort((-good, -x))  # by x descending, ties: better y first
    front, best = [], -np.inf
    for i in order:
        value = good[i]
        if value > best:
            front.append(i)
            best = value
    return np.array(sorted(front, key=lambda i: x[i]), dtype=int)


MARKERS = "osD^vP*Xhp<>"


def _plot_caption(facets: list, hidden: int, speed: str = "throughput") -> str:
    """What the figure shows, in one sentence (it differs when no GLUE accuracy exists)."""
    n_acc = sum(f[0] == "accuracy" for f in facets)
    if not facets:
        what = "nothing to plot: no timed cell"
    elif n_acc == 0:
        what = (f"{NO_ACCURACY} yet (no GLUE records): {speed} vs weight size per backbone, "
                "Pareto front = faster and smaller")
    else:
        what = f"accuracy vs {speed} per backbone and task, Pareto front = faster and more accurate" + (
            f"; {len(facets) - n_acc} panel(s) without accuracy show {speed} vs size"
            if n_acc < len(facets) else "")
    if hidden:
        what += f"; {hidden} more panels not drawn"
    return what


def plot(table: pd.DataFrame, png: Path, svg: Path, budget_pct: float = DEFAULT_BUDGET_PCT) -> str:
    """Accuracy vs throughput per backbone × task; where no accuracy exists, throughput vs weight size per
    backbone, and the figure says so. Colour = runtime, marker = precision; only Pareto-front points are
    labelled (text is what makes big grids slow and unreadable). Returns a one-line description."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    col, higher = speed_column(table)
    facets = []
    if col:
        timed = table[table[col].notna()]
        for (backbone, task), g in timed[timed.accuracy.notna()].groupby(["backbone", "task"], sort=True):
            facets.append(("accuracy", backbone, task, g))
        with_acc = set(map(tuple, table.loc[table.accuracy.notna(), ["machine", "backbone"]].to_numpy()))
        speed_only = np.array([tuple(k) not in with_acc for k in timed[["machine", "backbone"]].to_numpy()], bool)
        for backbone, g in timed[speed_only].groupby("backbone", sort=True):
            facets.append(("size", backbone, "", g))
    hidden = max(0, len(facets) - MAX_FACETS)
    facets = facets[:MAX_FACETS]
    ncols = min(3, max(1, len(facets)))
    nrows = max(1, math.ceil(len(facets) / ncols))
    what = _plot_caption(facets, hidden, "throughput" if higher else "batch-1 speed")
    title = textwrap.wrap(what, width=int(11 * 5.4 * ncols))  # ≈ 11 characters per inch at 11 pt: never cut off
    height = 3.6 * nrows + 1.3 + 0.2 * (len(title) - 1)
    fig = Figure(figsize=(5.4 * ncols, height))  # fixed margins: layout engines cost seconds on big grids
    top = 1 - (0.95 + 0.2 * len(title)) / height
    fig.subplots_adjust(left=0.9 / (5.4 * ncols), right=1 - 0.15 / ncols, top=top, bottom=0.55 / height,
                        wspace=0.3, hspace=0.42)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    xlabel = "best throughput (sequences/s, higher is better)" if higher else "1000 / p50 latency (1/s)"
    runtimes = sorted(table.runtime.astype(str).unique())
    precisions = sorted(table.precision.astype(str).unique())
    color = {r: f"C{i % 10}" for i, r in enumerate(runtimes)}
    marker = {p: MARKERS[i % len(MARKERS)] for i, p in enumerate(precisions)}
    several_machines = table.machine.nunique() > 1
    for ax, (mode, backbone, task, g) in zip(axes, facets, strict=False):
        x = g[col].to_numpy(float) if higher else 1000 / g[col].to_numpy(float)
        if mode == "accuracy":
            y, y_higher = g.accuracy.to_numpy(float), True
            ax.set_ylabel(f"{_plain(g.acc_metric.iloc[0])} (points, higher is better)", fontsize=9)
            ax.set_title(f"{_plain(backbone)} · {_plain(task)}", fontsize=10, y=1.01)  # fixed y: no auto-placing
            ref = g[_is_reference(g)]
            if not ref.empty:
                ax.axhline(ref.accuracy.iloc[0] * (1 - budget_pct / 100), color="grey", ls=":", lw=1)
        else:
            y, y_higher = g.get("weights_MB", pd.Series(np.nan, index=g.index)).to_numpy(float), False
            ax.set_ylabel("weights (MiB, lower is better)", fontsize=9)
            ax.set_title(f"{_plain(backbone)} · {NO_ACCURACY}", fontsize=10, y=1.01)
        ok = np.isfinite(x) & np.isfinite(y)
        colors = np.array([color[str(r)] for r in g.runtime])
        for prec in sorted(set(g.precision[ok].astype(str))):  # one call per marker: calls cost more than points
            sel = ok & (g.precision.astype(str).to_numpy() == prec)
            ax.scatter(x[sel], y[sel], c=colors[sel], marker=marker[prec], s=30, zorder=3)
        if ok.any():
            idx = np.flatnonzero(ok)
            front = idx[pareto_front(x[ok], y[ok], y_higher)]
            ax.plot(x[front], y[front], color="black", lw=1, zorder=2)
            lo, hi = x[ok].min(), x[ok].max()
            for i in front:
                row = g.iloc[i]
                where = f" @{row.machine}" if several_machines else ""
                left = hi > lo and x[i] > lo + 0.6 * (hi - lo)  # labels of right-hand points grow leftwards
                ax.annotate(_plain(f"{row.runtime} {row.precision} {row.sparsity} {row.device}{where}"),
                            (x[i], y[i]), fontsize=7, xytext=(-3 if left else 3, 3), textcoords="offset points",
                            ha="right" if left else "left")
        ax.set_xlabel(xlabel, fontsize=9)
        ax.margins(x=0.25, y=0.12)  # room for the point labels
        ax.xaxis.set_major_locator(MaxNLocator(5))  # tick labels are most of the drawing time
        ax.yaxis.set_major_locator(MaxNLocator(5))
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(facets):]:
        ax.axis("off")
    if not facets:
        axes[0].text(0.5, 0.5, what, ha="center", va="center", transform=axes[0].transAxes, wrap=True)
    n_acc = sum(f[0] == "accuracy" for f in facets)
    fig.suptitle("\n".join(title), fontsize=11, y=1 - 0.12 / height, va="top")
    handles = [Line2D([], [], ls="", marker="o", color=color[r], label=_plain(r)) for r in runtimes]
    handles += [Line2D([], [], ls="", marker=marker[p], color="grey", label=_plain(p)) for p in precisions]
    handles += [Line2D([], [], color="black", lw=1, label="Pareto front (labelled)")]
    if n_acc:
        handles.append(Line2D([], [], color="grey", ls=":", lw=1, label=f"−{budget_pct:g}% accuracy budget"))
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1 - (0.25 + 0.2 * len(title)) / height),
               ncol=min(len(handles), 8), fontsize=8, frameon=False)
    fig.savefig(png, dpi=100, metadata={"Software": None}, pil_kwargs={"compress_level": 3})
    with rc_context({"svg.fonttype": "none"}):  # text stays text: smaller, faster, searchable
        fig.savefig(svg, metadata={"Date": None})
    return what


# --- outputs -----------------------------------------------------------------------------------------------

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
    ("accuracy", "that metric on the dev set, in points (100 × fraction)"),
    ("acc_drop_%", "relative accuracy drop vs torch fp32 dense of the same backbone/task (%)"),
    ("params_M", "parameters as the runtime holds them (millions)"),
    ("weights_MB", "storage of those parameters at this precision (MiB)"),
    ("nonzero_%", "share of nonzero parameters (%)"),
    (r"p50_ms_s(\d+)", "median batch-1 latency at sequence length {0} (milliseconds)"),
    (r"cv_%_s(\d+)", "coefficient of variation of the latency samples at sequence length {0} (%)"),
    (r"speedup_s(\d+)", "torch fp32 dense latency / this row's latency (same backbone, device; length {0})"),
    (r"gflops_s(\d+)", "achieved forward GFLOP/s at batch 1, sequence length {0}"),
    ("%_of_peak", "that GFLOP/s as % of the GEMM peak of the row's own precision (fp32/bf16/fp16/int8) on the same "
                  "machine"),
    ("best_seq_per_s", "best throughput over the batch sweep (sequences per second)"),
    ("best_tok_per_s", "the same in tokens per second"),
    ("at_batch", "batch size that gave the best throughput"),
    ("cells", "statuses of the cells behind the row"),
]


def column_doc(name: str) -> str:
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


SCRIPT = """(function () {
  var table = document.getElementById('board');
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var filters = Array.prototype.slice.call(document.querySelectorAll('select[data-col]'));
  var search = document.getElementById('search');
  var count = document.getElementById('count');
  function apply() {
    var q = search.value.trim().toLowerCase(), shown = 0;
    rows.forEach(function (tr) {
      var ok = filters.every(function (f) {
        return !f.value || (tr.cells[+f.dataset.col].dataset.v || '__none__') === f.value;
      });
      if (ok && q) { ok = tr.textContent.toLowerCase().indexOf(q) !== -1; }
      tr.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + ' of ' + rows.length + ' rows';
  }
  function key(td, numeric) {
    var v = td.dataset.v;
    if (v === undefined || v === '') { return null; }
    return numeric ? parseFloat(v) : v.toLowerCase();
  }
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, i) {
    th.querySelector('button').addEventListener('click', function () {
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      var numeric = th.dataset.type === 'num';
      rows.sort(function (a, b) {
        var x = key(a.cells[i], numeric), y = key(b.cells[i], numeric);
        if (x === null) { return y === null ? 0 : 1; }
        if (y === null) { return -1; }
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
      rows.forEach(function (tr) { tbody.appendChild(tr); });
    });
  });
  filters.forEach(function (f) { f.addEventListener('change', apply); });
  search.addEventListener('input', apply);
  apply();
}());"""

STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1b1f24;max-width:100%}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;font-size:12.5px;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .45rem;text-align:left;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
thead th{background:#f6f8fa;position:sticky;top:0}
th button{all:unset;cursor:pointer;font-weight:600}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
tbody tr:nth-child(even){background:#fafbfc}
.wrap{overflow-x:auto}.filters{display:flex;flex-wrap:wrap;gap:.4rem 1rem;align-items:center}
.note{color:#57606a}dt{font-weight:600;float:left;clear:left;width:11rem}dd{margin-left:11.5rem}
details{margin:.4rem 0}img{max-width:100%;height:auto}code{background:#f6f8fa;padding:0 .2rem}"""


def html_page(table: pd.DataFrame, recs: pd.DataFrame, records: list[Record], png: bytes, plot_note: str,
              bad: pd.DataFrame, budget_pct: float, title: str) -> str:
    """One self-contained page: nothing is fetched, and the CSP allows only this page's own script."""
    script_hash = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    csp = (f"default-src 'none'; script-src 'sha256-{script_hash}'; style-src 'unsafe-inline'; img-src data:; "
           "base-uri 'none'; form-action 'none'")
    shown_recs = recs.drop(columns=["recommended", *ROW[1:]])
    docs = "".join(f"<dt>{_esc(c)}</dt><dd>{_esc(column_doc(c))}</dd>" for c in table.columns if column_doc(c))
    img = base64.b64encode(png).decode()
    problems_html = (f"<h2>Cells that did not produce numbers</h2><p class=note>{len(bad)} cells, grouped by "
                     f"reason.</p><div class=wrap>{_table_html(problem_summary(bad), 'problems', False)}</div>"
                     if not bad.empty else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p class="note">{len(records)} records, {len(table)} rows, {table.machine.nunique()} machine(s).
Recommendation = the fastest configuration (by {"best throughput" if speed_column(table)[1] else "p50 latency"})
whose accuracy is within {budget_pct:g}% (relative) of torch fp32 dense; without accuracy: "{NO_ACCURACY}".</p>
<h2>Recommendations</h2>
<div class=wrap>{_table_html(shown_recs, "recommendations", False)}</div>
<h2>Leaderboard</h2>
<div class="filters">{_filters_html(table)}</div>
<div class=wrap>{_table_html(table, "board", True)}</div>
<p class="note">Click a column header to sort (again to reverse); empty values sort last.</p>
<h2>Pareto plot</h2>
<p class="note">{_esc(plot_note)}</p>
<img id="pareto" alt="{_esc(plot_note)}" src="data:image/png;base64,{img}">
<h2>Environment</h2>
{environment_html(records)}
<h2>Columns and units</h2>
<dl>{docs}</dl>
{problems_html}
<script>{SCRIPT}</script>
</body></html>
"""


def write(records: list[Record], out_dir: Path, budget_pct: float = DEFAULT_BUDGET_PCT,
          title: str = "backbone-bench leaderboard", df: pd.DataFrame | None = None) -> Paths:
    """leaderboard.md/.csv/.html and pareto.png/.svg in out_dir (`df`: report.frame(records), if at hand)."""
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
          markdown_table(table), "", f"![Pareto plot: {note}](pareto.png)", "", "Columns: " + "; ".join(
              f"`{c}` {column_doc(c)}" for c in table.columns if column_doc(c)) + "."]
    md += problem_lines(bad)
    atomic_write(paths.md, "\n".join(md) + "\n")
    atomic_write(paths.html, html_page(table, recs, records, paths.png.read_bytes(), note, bad, budget_pct, title))
    return paths
