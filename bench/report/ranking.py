"""The leaderboard's table and its recommendation: the comparison table with accuracy beside speed.

Rows are machine × backbone × task × runtime × precision × sparsity × device, so result sets from several
machines merge into one board. Speed comes from tables.comparison(); accuracy from GLUE records (`suite="glue"`,
`cell.task` set, metrics such as `accuracy`, `f1`, `mcc`, `pearson` as fractions), shown in points. Speed cells
carry no task, so each task's accuracy row borrows the speed of the same configuration; a row without any
accuracy keeps task "".

The recommendation per machine/backbone/task is the fastest configuration whose accuracy drop relative to the
reference configuration (bench.runtimes.REFERENCE_CONFIG) stays within a stated budget. Without accuracy it
says "no accuracy measured": speed alone is not a recommendation. A pick (or, speed only, the fastest) on an
unmaintained runtime (bench.runtimes.Runtime.unmaintained) says so in its note, with upstream's reason and date.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench import stats
from bench.gate.change import ACCURACY_METRICS
from bench.report.glue_scores import CHANGE_KEY, paired_changes
from bench.report.rows import REFERENCE_NAME, ROW, unmaintained
from bench.report.tables import comparison
from bench.runtimes import is_reference

# The GLUE task's headline metric when a record does not name it (`metrics["metric"]`); others: accuracy.
TASK_METRIC = {"cola": "mcc", "stsb": "pearson", "mrpc": "f1", "qqp": "f1"}
DEFAULT_BUDGET_PCT = 1.0
KEYS = ["machine", "backbone", "task", "runtime", "precision", "sparsity", "device"]
NO_ACCURACY = "no accuracy measured"
DROP_INTERVAL = ["acc_drop_low_%", "acc_drop_high_%", "acc_budget"]


def accuracy_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per machine × configuration × task: the task's headline metric in points (the median over its
    fine-tuning seeds; `acc_seeds` says how many). Random-weight backbones never get an accuracy number: it
    would measure the seed, not the runtime."""
    if "suite" not in df or "task" not in df:
        return pd.DataFrame(columns=[*KEYS, "acc_metric", "accuracy", "acc_seeds"])
    sel = df[(df.suite == "glue") & (df.status == "ok") & df.task.notna() & df.pretrained.astype(bool)]
    rows = []
    for rec in sel.to_dict("records"):
        headline = rec.get("m.metric")  # the glue suite names the task's headline metric
        preferred = headline if isinstance(headline, str) else TASK_METRIC.get(rec["task"], "accuracy")
        metric = next((m for m in (preferred, *ACCURACY_METRICS) if _number(rec.get(f"m.{m}"))), None)
        if metric is None:
            continue
        rows.append({k: rec[k] for k in KEYS} | {"acc_metric": metric, "accuracy": stats.points(rec[f"m.{metric}"])})
    out = pd.DataFrame(rows, columns=[*KEYS, "acc_metric", "accuracy"])
    return (out.groupby([*KEYS, "acc_metric"], sort=False).accuracy.agg(accuracy="median", acc_seeds="size")
            .reset_index())


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def speed_rows(df: pd.DataFrame) -> pd.DataFrame:
    """tables.comparison() for each task value of the speed cells ("" for task-free cells)."""
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
    _drop_intervals(out, paired_changes(df), budget_pct)
    front = [*KEYS, "pretrained", "acc_metric", "accuracy", "acc_drop_%", *DROP_INTERVAL]
    out = out[front + [c for c in out.columns if c not in front]]
    out = out.sort_values(KEYS, key=lambda s: s.astype(str)).reset_index(drop=True)
    recs = recommendations(out, budget_pct)
    chosen = {tuple(r[k] for k in KEYS) for r in recs.to_dict("records") if r["recommended"]}
    out.insert(len(KEYS), "recommended", ["yes" if tuple(r) in chosen else "" for r in out[KEYS].to_numpy()])
    return out


def reference_rows(table: pd.DataFrame) -> pd.Series:
    """Which rows run the reference configuration (bench.runtimes.is_reference)."""
    return pd.Series([is_reference(r, p, s) for r, p, s in table[["runtime", "precision", "sparsity"]].to_numpy()],
                     index=table.index, dtype=bool)


def _drops(table: pd.DataFrame) -> list[float]:
    """Relative accuracy drop (%) from the reference of the same machine/backbone/task: the reference row
    (cpu preferred), or the best accuracy measured when that row is missing."""
    refs = {}
    for key, g in table[table.accuracy.notna()].groupby(["machine", "backbone", "task"]):
        ref = g[reference_rows(g)].sort_values("device", key=lambda d: d != "cpu")
        refs[key] = ref.accuracy.iloc[0] if not ref.empty else g.accuracy.max()
    out = []
    for m, b, t, acc in table[["machine", "backbone", "task", "accuracy"]].to_numpy():
        ref = refs.get((m, b, t))
        out.append(stats.relative_drop_pct(ref, acc) if ref and pd.notna(acc) else np.nan)
    return out


def _drop_intervals(table: pd.DataFrame, changes: dict, budget_pct: float) -> None:
    """The paired 95% interval of each row's relative drop (bench.report.glue_scores.paired_changes) and its
    verdict against the budget: within / beyond (the whole interval) or unresolved (it spans the budget). A row
    with an interval takes its drop from the same change, so that over several seeds the drop is the pooled one
    the interval is about (the difference of the two medians can lie outside it)."""
    drop, low, high, verdict = [], [], [], []
    for row, point in zip(table[CHANGE_KEY].itertuples(index=False), table["acc_drop_%"], strict=True):
        c = changes.get(tuple(row))
        drop.append(-c.relative_pct if c else point)
        low.append(-c.high_pct if c else np.nan)  # a drop is a negative change: the interval turns over
        high.append(-c.low_pct if c else np.nan)
        verdict.append(c.verdict(budget_pct) if c else "")
    table["acc_drop_%"] = drop
    table["acc_drop_low_%"], table["acc_drop_high_%"], table["acc_budget"] = low, high, verdict


def admissible(table: pd.DataFrame, budget_pct: float) -> pd.Series:
    """Rows the budget admits, judged on the paired interval where the row has one (admitted unless the whole
    interval lies beyond the budget), else on the point estimate."""
    point = pd.Series(stats.within_budget(table["acc_drop_%"], budget_pct), index=table.index)
    if "acc_budget" not in table:
        return point
    judged = table["acc_budget"].fillna("") != ""
    return (judged & (table["acc_budget"] != "beyond")) | (~judged & point)


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
                f"fastest measured: {_config(fastest)} ({_speed(fastest, col)}), speed only{_unmaintained(fastest)}"
                if fastest is not None else "no speed measured either")
            rows.append(base | {"recommendation": NO_ACCURACY, "recommended": False, "note": note})
            continue
        ok = timed[timed.accuracy.notna() & admissible(timed, budget_pct)]
        best = _best(ok, col, higher)
        if best is None:
            rows.append(base | {"recommendation": "none within budget", "recommended": False,
                                "note": f"no timed configuration within {budget_pct:g}% accuracy drop"})
            continue
        runner_up = _best(ok.drop(index=best.name), col, higher)
        tied = _tied(best, runner_up, table, col)
        speedup = ""
        if col and fastest is not None:
            ref = timed[reference_rows(timed)]
            if not ref.empty:
                times = stats.speedup(ref[col].iloc[0], best[col], higher_is_better=higher)
                speedup = f"; {times:.2f}× the {REFERENCE_NAME} speed"
        judged = (" (none whose whole paired 95% interval lies beyond it)"
                  if (ok.get("acc_budget", pd.Series(dtype=object)).fillna("") != "").any() else "")
        unsure = (f"; its accuracy drop {best['acc_drop_%']:.2f}% (95% CI {best['acc_drop_low_%']:.2f}…"
                  f"{best['acc_drop_high_%']:.2f}%) is unresolved against the budget on this dev set"
                  if best.get("acc_budget") == "unresolved" else "")
        rows.append(base | {
            "recommendation": _config(best) + (f" (tied with {_config(runner_up)})" if tied else ""),
            "recommended": True, **{k: best[k] for k in ROW[1:]},
            "speed": _speed(best, col), "accuracy": best.accuracy, "acc_metric": best.acc_metric,
            "acc_drop_%": best["acc_drop_%"],
            "note": f"fastest of {len(ok)} the {budget_pct:g}% relative accuracy budget admits{judged}{speedup}{tied}"
                    f"{unsure}{_unmaintained(best)}"})
    cols = ["machine", "backbone", "task", "recommendation", "speed", "acc_metric", "accuracy", "acc_drop_%",
            "note", "recommended", *ROW[1:]]
    return pd.DataFrame(rows, columns=cols)


def _interval_columns(table: pd.DataFrame, col: str | None) -> tuple[str, str] | None:
    """The speed-up interval columns that go with the ranking column, where rounds measured them."""
    name = "best_speedup" if col == "best_seq_per_s" else (col or "").replace("p50_ms_", "speedup_")
    low, high = f"{name}_low", f"{name}_high"
    return (low, high) if low in table and high in table else None


def _tied(best, runner_up, table: pd.DataFrame, col: str | None) -> str:
    """A note when the runner-up's speed-up interval overlaps the best's: measured in the same rounds, the data
    cannot tell them apart, so the verdict names both ("" when they are apart or no interval was measured)."""
    cols = _interval_columns(table, col)
    if runner_up is None or cols is None:
        return ""
    (bl, bh), (rl, rh) = ((row[cols[0]], row[cols[1]]) for row in (best, runner_up))
    if any(pd.isna(v) for v in (bl, bh, rl, rh)) or not (bl <= rh and rl <= bh):
        return ""
    return (f"; tied with {_config(runner_up)}: speed-up 95% intervals overlap ({bl:.2f}-{bh:.2f}x vs "
            f"{rl:.2f}-{rh:.2f}x over interleaved rounds)")


def _best(rows: pd.DataFrame, col: str | None, higher: bool):
    if rows.empty or col is None:
        return None
    return rows.loc[rows[col].idxmax() if higher else rows[col].idxmin()]


def _unmaintained(row) -> str:
    """'; deepsparse is unmaintained: <why, since when>' for a row on an unmaintained runtime, else ''."""
    why = unmaintained(row["runtime"])
    return f"; {row['runtime']} is unmaintained: {why}" if why else ""


def _config(row) -> str:
    return " ".join(str(row[k]) for k in ROW[1:])


def _speed(row, col: str | None) -> str:
    if row is None or col is None:
        return ""
    return f"{row[col]:.4g} seq/s" if col == "best_seq_per_s" else f"p50 {row[col]:.4g} ms"
