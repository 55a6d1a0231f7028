"""GLUE dev scores in the report: per-task columns of the comparison table and the scores table, each score
beside what its precision or sparsity costs against the reference configuration."""

from __future__ import annotations

from dataclasses import replace
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


def _seed(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def seed_scores(df: pd.DataFrame) -> pd.DataFrame:
    """One row per machine × configuration × task of the ok GLUE records of pretrained backbones: the headline
    metric (`metric`), in points, as the median over the row's fine-tuning seeds (`score`), with `seeds` (how
    many) and `low`/`high` (their range)."""
    cols = ["machine", *ROW, "task", "metric", "score", "seeds", "low", "high"]
    if "suite" not in df or "task" not in df or "m.metric" not in df:
        return pd.DataFrame(columns=cols)
    sel = df[(df.suite == "glue") & (df.status == "ok") & df.task.notna() & df.pretrained.astype(bool)]
    groups: dict[tuple, dict] = {}
    for rec in sel.to_dict("records"):
        metric = rec.get("m.metric")
        value = rec.get(f"m.{metric}") if isinstance(metric, str) else None
        if isinstance(value, int | float) and not isinstance(value, bool) and pd.notna(value):
            key = (*(rec[k] for k in ("machine", *ROW)), rec["task"], metric)
            groups.setdefault(key, {})[_seed(rec.get("seed"))] = stats.points(float(value))
    rows = [(*key, float(np.median(list(v.values()))), len(v), min(v.values()), max(v.values()))
            for key, v in groups.items()]
    return pd.DataFrame(rows, columns=cols)


def seeds_text(row) -> str:
    """"median of 3 seeds, 84.1…86.0" for a row of several seeds, "" for one."""
    return f"median of {row.seeds} seeds, {row.low:.2f}…{row.high:.2f}" if row.seeds > 1 else ""


def paired_changes(df: pd.DataFrame) -> dict[tuple, stats.PairedChange]:
    """(machine, *ROW, task) → the row's change from the same backbone's reference row on the same dev examples,
    with its paired interval. Only records that kept their predictions, scored against the same labels; a
    reference row (or a row whose reference is missing) gets none. With several fine-tuning seeds, each seed is
    paired with the reference of the same seed and the pairs of every seed both rows have are pooled (one
    (seed, example) pair per bootstrap unit), so the interval covers the checkpoints' spread too."""
    if "dev.predictions" not in df or "task" not in df:
        return {}
    sel = df[(df.suite == "glue") & (df.status == "ok") & df.task.notna() & df["dev.predictions"].notna()]
    recs: dict[tuple, dict[int | None, dict]] = {}
    for r in sel.to_dict("records"):
        recs.setdefault(tuple(r[k] for k in CHANGE_KEY), {})[_seed(r.get("seed"))] = r
    out = {}
    for k, by_seed in recs.items():
        if is_reference(*k[2:5]):
            continue
        refs = recs.get((k[0], k[1], *REFERENCE_CONFIG.values(), k[5], k[6]), {})
        pairs = [(refs[s], rec) for s, rec in sorted(by_seed.items(), key=lambda kv: -1 if kv[0] is None else kv[0])
                 if s in refs and isinstance(rec.get("m.metric"), str) and refs[s]["dev.labels"] == rec["dev.labels"]]
        if not pairs:
            continue
        ref_preds = tuple(v for ref, _ in pairs for v in ref["dev.predictions"])
        new_preds = tuple(v for _, rec in pairs for v in rec["dev.predictions"])
        labels = tuple(v for _, rec in pairs for v in rec["dev.labels"])
        out[k] = replace(_paired(pairs[0][1]["m.metric"], ref_preds, new_preds, labels), seeds=len(pairs))
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
            examples = c.n // c.seeds  # pooled seeds: n counts (seed, example) pairs
            size = (f"{examples} dev examples x {c.seeds} seeds pooled, one example = {100 / examples:.2f} pt of one "
                    "seed's accuracy" if c.seeds > 1 else
                    f"{examples} dev examples, one example = {100 / examples:.2f} pt of accuracy")
            out.append(f"{t} ({size}): {b} {r} {p} {s} "
                       f"{d} changes by {c.relative_pct:+.2f}%, {interval_text(c)}; the interval spans the "
                       f"−{budget_pct:g}% budget, so this dev set cannot tell whether the row is within it")
    return out


def glue_columns(df: pd.DataFrame, table: pd.DataFrame) -> None:
    """Per GLUE task: its headline dev metric in points (median over seeds), and the drop (points) from the same
    backbone's reference row on the same machine and device, so accuracy sits next to latency and throughput.
    Where the row has a paired change the drop is that change's (over several seeds: pooled, the statistic its
    interval is about, which the difference of the two medians need not equal)."""
    scores = seed_scores(df)
    changes = paired_changes(df)
    for task in sorted(scores.task.unique()):
        rows = scores[scores.task == task]
        metric = rows.metric.iloc[0]
        values = rows.set_index(["machine", *ROW]).score.astype(float)
        ref = reference_values(values)
        table[f"{task}_{metric}"] = values
        table[f"{task}_drop"] = [-c.points if (c := changes.get((*key, task))) is not None
                                 else stats.drop_points(ref.get((key[0], key[1], key[5]), np.nan), v)
                                 for key, v in table[f"{task}_{metric}"].items()]


def glue_scores(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """GLUE dev scores as configuration rows × task columns, in points, each with its change from the same
    backbone's reference row (points and relative %), so what a precision or a sparsity costs reads across a
    row. A backbone with a published row in the catalogue gets it first, and its reference row shows the gap
    to it. Returns the table (empty without GLUE records) and a note per published source."""
    sel = seed_scores(df)
    if sel.empty:
        return pd.DataFrame(), []
    keys = ["machine", *ROW]
    order = [t for t in TASKS if t in set(sel.task)] + sorted(set(sel.task) - set(TASKS))
    metric = {t: sel.loc[sel.task == t, "metric"].iloc[0] for t in order}
    score = {(*(getattr(r, k) for k in keys), r.task): r.score for r in sel.itertuples(index=False)}
    spread = {(*(getattr(r, k) for k in keys), r.task): seeds_text(r) for r in sel.itertuples(index=False)}
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
                text = f"{v:.2f}" + (f" ({spread[(*k, t)]})" if spread.get((*k, t)) else "")
                if is_reference(*k[2:5]):
                    gap = pub.scores.get(t) if pub else None
                    text += f" ({stats.change_points(gap, v):+.2f} vs published)" if gap is not None else ""
                elif (c := changes.get((*k, t))) is not None:
                    # the change its interval is about: over several seeds the pooled pairs' change, which the
                    # difference of the two medians need not equal (it can even lie outside the interval)
                    pooled = "pooled over seeds: " if spread.get((*k, t)) else ""
                    text += f" ({pooled}{c.points:+.2f} pt, {c.relative_pct:+.2f}%; {interval_text(c)})"
                elif ref is not None and ref:
                    text += f" ({stats.change_points(ref, v):+.2f} pt, {stats.relative_change_pct(ref, v):+.2f}%)"
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
examples only one of the two rows gets right lean one way. With several fine-tuning seeds ([glue] seeds) a score
is the median over seeds with their range, and the change and its interval pool every seed's pairs with the
reference of the same seed ("pooled over seeds")."""
