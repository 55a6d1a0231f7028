"""A comparison as the Markdown table `bench compare` prints and `nox -s gate` writes: regressions first, then
by verdict and size of change, with each row's thresholds, sample counts and spread so the table says what
this machine can and cannot detect."""

from __future__ import annotations

from bench.cell import Cell
from bench.gate.change import ACCURACY, LATENCY, VERDICT_ORDER, WITHIN, Change, Comparison
from bench.markdown import markdown_text

SHOW_ALL_UP_TO = 40  # rows; larger comparisons print only the rows that are not "within threshold"

LEGEND = ("`change`: NEW median vs BASE median (% for latency/throughput, points for accuracy); `p`: two-sided "
          "Mann-Whitney U on the raw samples; a REGRESSION is worse than `threshold` AND p < alpha; "
          "`too few samples`: even complete separation could not reach alpha with this many samples; with repeated "
          "runs, `p … / runs …` adds a t-test on log run medians, `run noise` is the run-to-run sd of run medians "
          "pooled over all cells and `floor` the smallest change those runs can resolve; a change beyond the "
          "threshold but not beyond the runs' noise is `within run-to-run noise`; `CV`: spread of the samples "
          "(a busy machine shows large CVs: judge timings only from an otherwise idle machine).")


def markdown(comparison: Comparison, show_all: bool = True) -> str:
    """The summary line, one row per change (all, or only those not within threshold) and the legend."""
    rows = sorted(comparison.changes, key=_row_order)
    hidden = 0
    if not show_all:
        shown = [c for c in rows if c.verdict != WITHIN]
        hidden, rows = len(rows) - len(shown), shown
    machines = len({c.machine for c in comparison.changes}) > 1
    head = ["verdict", *(["machine"] if machines else []), "cell", "metric", "BASE", "NEW", "change", "p",
            "threshold", "n BASE/NEW (runs)", "CV % BASE/NEW"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in rows:
        cols = [f"**{c.verdict}**" if c.is_regression else c.verdict, *([str(c.machine)] if machines else []),
                cell_label(c.cell), c.metric, _fmt(c.base, c.unit), _fmt(c.new, c.unit), _change(c), _p(c),
                _threshold(c), _counts(c),
                f"{c.cv_base:.1f}/{c.cv_new:.1f}" if c.cv_base is not None else ""]
        lines.append("| " + " | ".join(markdown_text(x) for x in cols) + " |")
    text = [f"**{comparison.summary()}**", "", *lines]
    if hidden:
        text += ["", f"{hidden} rows within threshold not shown (`--all` shows them)."]
    text += ["", LEGEND]
    return "\n".join(text) + "\n"


def _row_order(c: Change):
    return VERDICT_ORDER.index(c.verdict), -(c.worse or 0.0), cell_label(c.cell), c.metric


def cell_label(cell: Cell) -> str:
    """The cell's label, with its GLUE task when the label does not already name it."""
    return cell.label if not cell.task or cell.task in cell.label else f"{cell.label} {cell.task}"


def _fmt(value: float | None, unit: str) -> str:
    return "" if value is None else f"{value:.4g} {unit}"


def _change(c: Change) -> str:
    if c.base is None or c.new is None:
        return ""
    if c.kind == ACCURACY:
        return f"{c.new - c.base:+.2f} pts"
    return f"{100 * (c.new / c.base - 1):+.1f}%" if c.base else ""


def _p(c: Change) -> str:
    if c.p_value is None:
        return "n/a" if c.kind == ACCURACY and c.base is not None else ""
    text = f"{c.p_value:.1e}" if c.p_value < 1e-3 else f"{c.p_value:.3f}"
    if c.p_runs is not None:
        text += f" / runs {c.p_runs:.1e}" if c.p_runs < 1e-3 else f" / runs {c.p_runs:.3f}"
    return text


def _threshold(c: Change) -> str:
    if c.kind == ACCURACY:
        return f"{c.threshold:g} pts lower"
    text = f"{c.threshold:g}% {'slower' if c.kind == LATENCY else 'lower'}, alpha {c.alpha:g}"
    if c.noise is not None:
        text += f"; run noise {c.noise:.1f}% → floor {c.floor:.1f}%"
    return text


def _counts(c: Change) -> str:
    if not (c.n_base or c.n_new):
        return ""
    runs = f" ({c.runs_base}/{c.runs_new} runs)" if c.runs_base > 1 or c.runs_new > 1 else ""
    return f"{c.n_base}/{c.n_new}{runs}"
