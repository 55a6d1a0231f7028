"""Report: pandas over records → one comparison table (Markdown + CSV) plus failures and the environment.

One row per backbone × runtime × precision × sparsity × device. Speed-up is against that backbone's torch
fp32 dense row on the same device at the reference sequence length; GFLOP/s is shown as % of the fp32 GEMM
peak the harness measured on the same machine in the same run.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from bench.records import Record

ROW = ["backbone", "runtime", "precision", "sparsity", "device"]
REFERENCE_SEQ = 128


def frame(records: list[Record]) -> pd.DataFrame:
    """One row per record (latest record of each cell per machine wins), metrics flattened."""
    rows = []
    for r in records:
        env = r.environment or {}
        rows.append(asdict(r.cell) | {
            "status": r.status, "reason": r.reason, "finished": r.finished or "",
            "pretrained": bool(r.artifact.get("pretrained")), "machine": env.get("machine"),
            "cpu": (env.get("cpu") or {}).get("model"), "threads": (r.settings or {}).get("threads"),
            "peak_gflops": (env.get("gemm_peak") or {}).get("gflops"),
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
        peak = df.drop_duplicates("machine").set_index("machine")["peak_gflops"]
        table[f"gflops_s{ref_seq}"] = gflops
        table["%_of_peak"] = [100 * g / peak.get(idx[0], np.nan) if pd.notna(g) else np.nan
                              for idx, g in gflops.reindex(table.index).items()]
    tput = df[(df.suite == "throughput") & (df.status == "ok")]
    if not tput.empty:
        best = tput.sort_values("m.sequences_per_s").groupby(["machine", *ROW]).tail(1).set_index(
            ["machine", *ROW])
        table["best_seq_per_s"] = best["m.sequences_per_s"]
        table["best_tok_per_s"] = best["m.tokens_per_s"]
        table["at_batch"] = best["batch"].astype("Int64")
    counts = df.groupby(["machine", *ROW])["status"].value_counts().unstack(fill_value=0)
    table["cells"] = [", ".join(f"{int(n)} {s}" for s, n in counts.loc[i].items() if n) for i in table.index]
    table["pretrained"] = table["pretrained"].map({True: "yes", False: "no (random)"})
    return table.reset_index()


def problems(df: pd.DataFrame) -> pd.DataFrame:
    bad = df[df.status != "ok"]
    return bad[[*ROW, "suite", "batch", "seq_len", "status", "reason"]].reset_index(drop=True)


def environment_lines(records: list[Record]) -> list[str]:
    seen, lines = set(), []
    for r in records:
        env = r.environment or {}
        if env.get("machine") in seen:
            continue
        seen.add(env.get("machine"))
        cpu, peak = env.get("cpu", {}), env.get("gemm_peak", {})
        libs = ", ".join(f"{k} {v}" for k, v in sorted(env.get("libraries", {}).items()))
        git = env.get("git") or {}
        lines.append(
            f"- machine `{env.get('machine')}`: {cpu.get('model')}, {cpu.get('physical_cores')} cores "
            f"({cpu.get('logical_cores')} logical), {cpu.get('memory_gib')} GiB, flags "
            f"{' '.join(cpu.get('flags', []))}; GPUs: {', '.join(g['name'] for g in env.get('gpus', [])) or 'none'};"
            f" threads per cell {r.settings.get('threads')}; fp32 GEMM peak {peak.get('gflops', float('nan')):.0f}"
            f" GFLOP/s (numpy {peak.get('n')}²); {libs}; git {str(git.get('commit'))[:10]}"
            f"{' (dirty)' if git.get('dirty') else ''}")
    return lines


def write(records: list[Record], out_dir: Path, title: str = "backbone-bench report") -> dict[str, Path]:
    """Write report.md and report.csv (and problems.csv when any cell did not pass)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    df = frame(records)
    table = comparison(df)
    bad = problems(df)
    paths = {"csv": out_dir / "report.csv", "md": out_dir / "report.md"}
    _atomic_write(paths["csv"], table.to_csv(index=False, float_format="%.4g"))
    shown = table.drop(columns=["machine"]) if table["machine"].nunique() == 1 else table
    md = [f"# {title}", "", *environment_lines(records), "",
          shown.to_markdown(index=False, floatfmt=".3g"), "", COLUMN_HELP]
    if not bad.empty:
        md += ["", "## Cells that did not produce numbers", "", bad.to_markdown(index=False)]
    _atomic_write(paths["md"], "\n".join(md) + "\n")
    return paths


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


COLUMN_HELP = """Columns: `pretrained` no = seeded random weights (speed and size only, never accuracy);
`params_M` parameters as the runtime holds them (millions); `weights_MB` their storage at that precision;
`nonzero_%` share of nonzero parameters; `p50_ms_sN` median batch-1 latency at sequence length N;
`cv_%` coefficient of variation of those samples; `speedup` torch fp32 dense latency / this row's (same
backbone, device, sequence length); `gflops` achieved forward GFLOP/s at batch 1, and `%_of_peak` that as a
share of the fp32 GEMM peak measured in the same run (INT8/bf16 rows can exceed 100%); `best_seq_per_s` /
`best_tok_per_s` best throughput over the batch sweep, `at_batch` the batch that gave it; `cells` cell
statuses of the row."""
