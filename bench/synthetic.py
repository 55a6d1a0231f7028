"""Synthetic records that look like real ones, for checking the gate, the report and the exports against a known
truth without running a model: lognormal timing samples (CV 5-10%, a few slow outliers as a shared machine
produces), the same metric keys the suites write, and an environment block with a machine id."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from bench.cell import Cell
from bench.records import Record
from bench.stats import summarize

MACHINE = "synthetic-01"
BACKBONES = ("minilm-l6-h384", "bert-base-uncased", "distilbert-base-uncased", "roberta-base", "e5-small",
             "bge-small", "gte-small", "electra-small", "albert-base", "deberta-small")
RUNTIMES = ("torch", "onnxruntime", "deepsparse", "mxnet")
PRECISIONS = ("fp32", "bf16", "int8")
SPARSITIES = ("dense", "pruned80", "pruned90")


def environment(machine: str = MACHINE, cpu: str = "Synthetic CPU @ 3.0GHz", cores: int = 8) -> dict:
    return {"machine": machine, "hostname": "synthetic", "os": "Linux-synthetic", "python": "3.11.7",
            "cpu": {"model": cpu, "arch": "x86_64", "flags": ["avx2", "fma"], "physical_cores": cores,
                    "logical_cores": cores, "affinity_cores": cores, "memory_gib": 32.0},
            "gpus": [], "libraries": {"numpy": "1.26.4", "torch": "2.13.0+cpu"},
            "git": {"commit": "0123456789abcdef", "dirty": False},
            "gemm_peak": {"gflops": 400.0, "n": 2048, "repeats": 8, "threads": cores}}


def lognormal(rng: np.random.Generator, median_s: float, cv: float, n: int, outliers: float = 0.02) -> list[float]:
    """Timing-like samples: lognormal around `median_s` with coefficient of variation `cv`, and a small share
    of slow outliers (preemption, page faults) that any robust test must tolerate."""
    sigma = np.sqrt(np.log1p(cv**2))
    x = median_s * rng.lognormal(0.0, sigma, n)
    slow = rng.random(n) < outliers
    x[slow] *= rng.uniform(1.3, 2.0, slow.sum())
    return x.tolist()


def timed(cell: Cell, samples: list[float], machine: str = MACHINE, finished: str = "2026-01-01T00:00:00+00:00",
          pretrained: bool = True, **env) -> Record:
    """An ok latency or throughput record with the metrics the suites would compute from `samples`."""
    stats = summarize(samples)
    metrics = stats | {"flops": 1e9, "gflops_per_s": 1e9 / (stats["p50_ms"] / 1e3) / 1e9}
    key = "latency_s"
    if cell.suite == "throughput":
        key = "batch_s"
        seconds = stats["p50_ms"] / 1e3
        metrics |= {"sequences_per_s": cell.batch / seconds, "tokens_per_s": cell.batch * cell.seq_len / seconds}
    return Record(cell=cell, status="ok", metrics=metrics, samples={key: samples},
                  artifact={"pretrained": pretrained}, settings={"threads": 8},
                  environment=environment(machine, **env), finished=finished, harness_version="0.1.0")


def params(cell: Cell, total: int = 22_000_000, machine: str = MACHINE, pretrained: bool = True) -> Record:
    bytes_per = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}.get(cell.precision, 4)
    sparsity = {"pruned80": 0.8, "pruned90": 0.9}.get(cell.sparsity, 0.0)
    return Record(cell=replace(cell, suite="params", batch=0, seq_len=0), status="ok",
                  metrics={"total": total, "bytes": total * bytes_per, "sparsity": sparsity,
                           "nonzero": int(total * (1 - sparsity))},
                  artifact={"pretrained": pretrained}, settings={"threads": 8}, environment=environment(machine),
                  finished="2026-01-01T00:00:00+00:00", harness_version="0.1.0")


def glue(cell: Cell, task: str, machine: str = MACHINE, **metrics: float) -> Record:
    """A GLUE accuracy record (fractions, as the glue suite will write them)."""
    return Record(cell=replace(cell, suite="glue", batch=0, seq_len=0, task=task), status="ok", metrics=metrics,
                  artifact={"pretrained": True}, settings={"threads": 8}, environment=environment(machine),
                  finished="2026-01-01T00:00:00+00:00", harness_version="0.1.0")


def configurations(n: int) -> list[tuple[str, str, str, str]]:
    """The first n (backbone, runtime, precision, sparsity) combinations."""
    return list(itertools.islice(itertools.product(BACKBONES, RUNTIMES, PRECISIONS, SPARSITIES), n))


def result_set(seed: int, n_cells: int = 12, slowdown: float = 1.0, machine: str = MACHINE,
               cv: tuple[float, float] = (0.05, 0.10), n: tuple[int, int] = (30, 100),
               drift: float = 0.0) -> list[Record]:
    """One run of a matrix: n_cells timed cells (latency at three lengths, throughput at one batch, cycling
    through configurations). Each cell's true median and CV depend only on the cell, so two seeds are two runs
    of the same code (an A/A pair); `slowdown` multiplies every true time (1.10 = 10% slower). `drift` is the
    run-to-run spread of a shared VM (the sd of a per-run, per-cell lognormal speed factor): each run is tight
    on its own but its median sits somewhere else."""
    rng = np.random.default_rng(seed)
    out = []
    shapes = [("latency", 1, 32), ("latency", 1, 128), ("latency", 1, 384), ("throughput", 32, 128)]
    configs = configurations(n_cells // len(shapes) + 1)
    for i, ((b, r, p, s), (suite, batch, seq)) in enumerate(itertools.product(configs, shapes)):
        if i >= n_cells:
            break
        cell = Cell(b, r, p, s, "cpu", suite, batch, seq)
        truth = np.random.default_rng(int(cell.key(), 16))  # per-cell constants, same in every run
        median = truth.uniform(0.002, 0.05) * (batch if suite == "throughput" else 1) * seq / 128
        cell_cv = truth.uniform(*cv)
        count = int(truth.integers(n[0], n[1] + 1))
        speed = rng.lognormal(0.0, drift) if drift else 1.0
        out.append(timed(cell, lognormal(rng, median * slowdown * speed, cell_cv, count), machine=machine))
    return out


def glue_predictions(cell: Cell, task: str, predictions, labels, machine: str = MACHINE) -> Record:
    """A GLUE record that kept its predictions (as the glue suite writes them): accuracy from them, so the
    report's paired intervals can be checked against the same numbers."""
    preds, gold = np.asarray(predictions), np.asarray(labels)
    rec = glue(cell, task, machine=machine, accuracy=float((preds == gold).mean()), metric="accuracy",
               n=len(gold))
    return replace(rec, samples={"predictions": preds.tolist(), "labels": gold.tolist()})
