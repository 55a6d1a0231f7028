"""The leaderboard's Pareto plot (matplotlib): accuracy vs speed per backbone × task, or speed vs weight size
where no accuracy exists, saved as PNG and SVG."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from bench import stats
from bench.report.ranking import DEFAULT_BUDGET_PCT, NO_ACCURACY, reference_rows, speed_column
from bench.report.rows import unmaintained

MAX_FACETS = 30  # panels beyond it are counted in the caption, not drawn: a figure stays readable


def _plain(text) -> str:
    """Matplotlib treats $...$ as math: record text must stay literal."""
    return str(text).replace("$", r"\$")


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
            ref = g[reference_rows(g)]
            if not ref.empty:
                ax.axhline(stats.accuracy_floor(ref.accuracy.iloc[0], budget_pct), color="grey", ls=":", lw=1)
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
            front = idx[stats.pareto_front(x[ok], y[ok], y_higher)]
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
    handles = [Line2D([], [], ls="", marker="o", color=color[r],
                      label=_plain(f"{r} (unmaintained)" if unmaintained(r) else r)) for r in runtimes]
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
