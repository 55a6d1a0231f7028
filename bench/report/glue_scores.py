"""GLUE dev scores in the report: per-task columns of the comparison table and the scores table, each score
beside what its precision or sparsity costs against the reference configuration."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from bench import stats
from bench.catalogue import published_glue
from bench.glue.tasks import TASKS
from bench.report.rows import REFERENCE_NAME, ROW, reference_values
from bench.runtimes import REFERENCE_CONFIG, is_reference

CHANGE_KEY = ["machine", *ROW, "task"]  # what paired_changes() is keyed by
BUDGET_PCT = 1.0  # the relative-drop budget the notes hold each interval against (the leaderboard's default)


def paired_changes(df: pd.DataFrame) -> dict[tuple, stats.PairedChange]:
    """(machine, *ROW, task) → the row's change from the same backbone's reference row on the same dev examples,
    with its paired interval. Only records that kept their predictions, scored against the same labels; a
    reference row (or a row whose reference is missing) gets none."""
    if "dev.predictions" not in df or "task" not in df:
        return {}
    sel = df[(df.suite == "glue") & (df.status == "ok") & df.task.notna() & df["dev.predictions"].notna()]
    recs = {tuple(r[k] for k in CHANGE_KEY): r for r in sel.to_dict("records")}
    out = {}
    for k, rec in recs.items():
        if is_reference(*k[2:5]):
            continue
        ref = recs.get((k[0], k[1], *REFERENCE_CONFIG.values(), k[5], k[6]))
        if ref is None or not isinstance(rec.get("m.metric"), str) or ref["dev.labels"] != rec["dev.labels"]:
            continue
        out[k] = _paired(rec["m.metric"], tuple(ref["dev.predictions"]), tuple(rec["dev.predictions"]),
                         tuple(rec["dev.labels"]))
    return out


@lru_cache(maxsize=4096)  # the report, the comparison table and the leaderboard each ask for the same pairs
def _paired(metric: str, ref: tuple, new: tuple, labels: tuple) -> stats.PairedChange:
    return stats.paired_change(metric, ref, new, labels)


def interval_text(c: stats.PairedChange) -> str:
    test = f", McNemar p={c.mcnemar_p:.2g} ({c.discordant} discordant)" if c.mcnemar_p is not None else ""
    return f"95% CI {c.low_pct:+.2f}…{c.high_pct:+.2f}%{test}"


def unresolved_notes(changes: dict[tuple, stats.PairedChange], budget_pct: float = BUDGET_PCT) -> list[str]:
    """Where a task's dev set cannot tell whether a row is within the budget: its interval spans the line."""
    out = []
    for (_m, b, r, p, s, d, t), c in sorted(changes.items()):
        if c.verdict(budget_pct) == "unresolved":
            out.append(f"{t} ({c.n} dev examples, one example = {100 / c.n:.2f} pt of accuracy): {b} {r} {p} {s} "
                       f"{d} changes by {c.relative_pct:+.2f}%, {interval_text(c)}; the interval spans the "
                       f"−{budget_pct:g}% budget, so this dev set cannot tell whether the row is within it")
    return out


def glue_columns(df: pd.DataFrame, table: pd.DataFrame) -> None:
    """Per GLUE task: its headline dev metric in points, and the drop (points) from the same backbone's
    reference row on the same machine and device, so accuracy sits next to latency and throughput."""
    sel = df[(df.suite == "glue") & (df.status == "ok")] if "task" in df else df.iloc[0:0]
    for task in sorted(sel.task.dropna().unique()):
        rows = sel[sel.task == task]
        metric = rows["m.metric"].dropna().iloc[0] if "m.metric" in rows else "accuracy"
        if f"m.{metric}" not in rows:
            continue
        values = stats.points(rows.set_index(["machine", *ROW])[f"m.{metric}"].astype(float))
        ref = reference_values(values)
        table[f"{task}_{metric}"] = values
        table[f"{task}_drop"] = [stats.drop_points(ref.get((m, b, d), np.nan), v)
                                 for (m, b, _r, _p, _s, d), v in table[f"{task}_{metric}"].items()]


def glue_scores(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """GLUE dev scores as configuration rows × task columns, in points, each with its change from the same
    backbone's reference row (points and relative %), so what a precision or a sparsity costs reads across a
    row. A backbone with a published row in the catalogue gets it first, and its reference row shows the gap
    to it. Returns the table (empty without GLUE records) and a note per published source."""
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
            score[(*(rec[k] for k in keys), rec["task"])] = stats.points(float(value))
    # machine, backbone, device, then the reference row first among its backbone's rows
    configs = sorted({k[:-1] for k in score},
                     key=lambda k: (k[0], k[1], k[5], not is_reference(*k[2:5]), k[2], k[3], k[4]))
    rows, notes = [], []
    changes = paired_changes(df)
    for backbone in dict.fromkeys(k[1] for k in configs):
        pub = published_glue(backbone)
        if pub and any(t in pub.scores for t in order):
            rows.append({"machine": "", "backbone": backbone, "runtime": f"published: {pub.model}",
                         "precision": "", "sparsity": "", "device": ""} |
                        {f"{t} {metric[t]}": format(pub.scores[t], "g") for t in order if t in pub.scores})
            notes.append(f"published: {pub.model} from {pub.source}" + (f"; {pub.note}" if pub.note else ""))
        for k in (c for c in configs if c[1] == backbone):
            ref_key = (k[0], k[1], *REFERENCE_CONFIG.values(), k[5])
            row = dict(zip(keys, k, strict=True))
            for t in order:
                v, ref = score.get((*k, t)), score.get((*ref_key, t))
                if v is None:
                    continue
                text = f"{v:.2f}"
                if is_reference(*k[2:5]):
                    gap = pub.scores.get(t) if pub else None
                    text += f" ({stats.change_points(gap, v):+.2f} vs published)" if gap is not None else ""
                elif ref is not None and ref:
                    c = changes.get((*k, t))
                    text += (f" ({stats.change_points(ref, v):+.2f} pt, {stats.relative_change_pct(ref, v):+.2f}%"
                             + (f"; {interval_text(c)}" if c else "") + ")")
                row[f"{t} {metric[t]}"] = text
            rows.append(row)
    notes += unresolved_notes(changes)
    table = pd.DataFrame(rows).fillna("")
    if table["machine"].replace("", np.nan).nunique() <= 1:
        table = table.drop(columns=["machine"])
    return table, notes


GLUE_HELP = f"""Headline dev metric per task in points (accuracy; F1 for MRPC, MCC for CoLA, Pearson for STS-B).
In brackets: the change from the same backbone's {REFERENCE_NAME} row, in points and relative; on that row,
the gap to the published row where the catalogue has one. Every row evaluates the same fine-tuned weights
(sparse rows: the checkpoint pruned during fine-tuning) through its runtime and precision. The interval is a
paired bootstrap over the same dev examples (95%, relative change); McNemar's exact test asks whether the
examples only one of the two rows gets right lean one way."""
