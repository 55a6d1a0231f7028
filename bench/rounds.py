"""Interleaved rounds: every timed variant keeps a loaded worker, and the driver measures them in R rounds, each
round one short block per cell in a fresh random order. Whatever the machine does during the run then lands on
every variant alike, so ratios between rows (speed-ups, A/B verdicts) hold up on a second run even when absolute
times drift by tens of percent between runs minutes apart.

One variant measures at a time (no concurrent timing on a small machine); workers of other runtime environments are
started with that environment's interpreter (bench/rounds_worker.py), so all rows share the same minutes. A
worker that dies or hangs fails its variant's cells with the reason, keeping the rounds they completed; the other
variants finish.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.cell import Cell
from bench.timing import Budget

LOAD_TIMEOUT_S = 900.0


@dataclass
class Variant:
    """Cells that share one loaded adapter, and the interpreter of the environment that runs them."""

    cells: list[Cell]
    artifact: dict  # Artifact.summary()
    python: str
    cwd: Path | None = None  # a checkout of this project whose code the worker runs (the live gate's commits)


@dataclass
class Outcome:
    """What one timed cell measured: samples (s) with the round each came from, or why it stopped."""

    samples: list[float] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # from the suite's inputs (FLOPs)
    runtime: dict = field(default_factory=dict)
    libraries: dict = field(default_factory=dict)
    status: str = "ok"
    reason: str | None = None
    loaded: bool = False


def block_budget(budget: Budget, rounds: int, first: bool) -> Budget:
    """One round's share of a cell's budget: its iterations and seconds split over the rounds; the first block
    carries the whole warm-up, later ones a single iteration (caches and clocks after another variant ran)."""
    return Budget(warmup_iters=budget.warmup_iters if first else 1, warmup_s=budget.warmup_s if first else 0.0,
                  min_iters=max(1, math.ceil(budget.min_iters / rounds)), min_time_s=budget.min_time_s / rounds,
                  max_time_s=max(budget.max_time_s / rounds, 1e-3))


class LiveWorker:
    """One variant's loaded worker (bench/rounds_worker.py) and the channel to it."""

    def __init__(self, variant: Variant, settings: dict, tmp: Path, index: int):
        spec = tmp / f"variant-{index}.json"
        spec.write_text(json.dumps({"cells": [asdict(c) for c in variant.cells], "artifact": variant.artifact,
                                    "settings": settings}))
        self.stderr = (tmp / f"variant-{index}.stderr").open("w+b")
        threads = str(settings["threads"])
        env = os.environ | {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads,
                            "PYTHONUNBUFFERED": "1"}
        if variant.cwd is not None:  # that checkout's code, not this one's: `-m` puts the cwd first on the path
            env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen([variant.python, "-m", "bench.rounds_worker", str(spec)], env=env,
                                     cwd=variant.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, start_new_session=True)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)

    def ask(self, command: dict | None, timeout_s: float) -> dict:
        """Send a command (None: only wait for the next answer) and return the answer; {"error": ...} if the
        worker died or did not answer in time."""
        try:
            if command is not None:
                self.proc.stdin.write((json.dumps(command) + "\n").encode())
                self.proc.stdin.flush()
            if not self.selector.select(timeout_s):
                self.kill()
                return {"error": f"no answer within {timeout_s:g} s (killed)" + self.tail()}
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = b""
        if not line:
            code = self.proc.wait()
            return {"error": f"worker exited with code {code}" + self.tail()}
        return json.loads(line)

    def tail(self) -> str:
        self.stderr.seek(0)
        lines = [ln.strip() for ln in self.stderr.read().decode(errors="replace").splitlines() if ln.strip()]
        return ("; stderr: " + " | ".join(lines[-4:])) if lines else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"op": "close"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.kill()
        self.stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def sessions(groups: list, limit: int, is_reference: Callable[[object], bool]) -> list[list]:
    """The variants of one backbone in sessions of at most `limit` loaded at once (memory: every live worker holds
    its model), each with the reference variants first, so every row is paired with its reference."""
    refs = [g for g in groups if is_reference(g)]
    rest = [g for g in groups if not is_reference(g)]
    room = max(1, limit - len(refs))
    return [refs + rest[i:i + room] for i in range(0, len(rest), room)] or [refs]


def same_shape(cell: Cell) -> tuple:
    """Cells compared with each other: one suite and shape (a row and its reference; the two sides of an A/B)."""
    return cell.suite, cell.batch, cell.seq_len, cell.task


def interleave(variants: list[Variant], budgets: Callable[[Cell], Budget], settings: dict, rounds: int, seed: int,
               timeout_s: float, on_round: Callable[[int, int], None] | None = None,
               together: Callable[[Cell], object] = same_shape) -> Iterator[tuple[int, int, Outcome]]:
    """(variant index, cell index, outcome) for every cell once all rounds are done (a variant that stopped
    early: its cells as soon as it stopped). Loads happen one after the other, before the first round. In each
    round the groups of cells that are compared with each other (`together`) come in a random order, and within
    a group the cells too, back to back: a ratio's two sides are then measured seconds apart."""
    rng = np.random.default_rng(seed)
    outcomes = [[Outcome() for _ in v.cells] for v in variants]
    with tempfile.TemporaryDirectory(prefix="bench-rounds-") as tmp:
        workers: dict[int, LiveWorker] = {}
        try:
            for v, variant in enumerate(variants):
                worker = LiveWorker(variant, settings, Path(tmp), v)
                answer = worker.ask(None, LOAD_TIMEOUT_S)
                if "error" in answer:
                    worker.close()
                    for c in range(len(variant.cells)):
                        outcomes[v][c].status, outcomes[v][c].reason = answer.get("status", "failed"), answer["error"]
                        yield v, c, outcomes[v][c]
                    continue
                for c, extra in enumerate(answer["extra"]):
                    outcomes[v][c].extra, outcomes[v][c].runtime = extra, answer.get("runtime", {})
                    outcomes[v][c].loaded = True
                    outcomes[v][c].libraries = answer.get("libraries", {})
                workers[v] = worker
            groups: dict[object, list[tuple[int, int]]] = {}
            for v in workers:
                for c, cell in enumerate(variants[v].cells):
                    groups.setdefault(together(cell), []).append((v, c))
            for r in range(rounds):
                order = [group[i] for g in rng.permutation(len(groups))
                         for group in [list(groups.values())[g]] for i in rng.permutation(len(group))]
                for v, c in order:
                    if v not in workers:
                        continue  # stopped earlier in this round
                    cell = variants[v].cells[c]
                    budget = block_budget(budgets(cell), rounds, first=r == 0)
                    started = time.monotonic()
                    answer = workers[v].ask({"op": "block", "cell": c, "budget": asdict(budget)},
                                            max(timeout_s, 4 * budget.max_time_s + 60))
                    if "error" in answer:
                        workers.pop(v).close()
                        for k, out in enumerate(outcomes[v]):
                            out.status = "failed"
                            out.reason = (f"round {r + 1}/{rounds}: {answer['error']} (after "
                                          f"{time.monotonic() - started:.1f} s; {r} complete rounds kept)")
                            yield v, k, out
                        continue
                    outcomes[v][c].samples += answer["samples"]
                    outcomes[v][c].rounds += [r] * len(answer["samples"])
                if on_round:
                    on_round(r + 1, rounds)
            for v in list(workers):
                # the high-water mark after all timed blocks, and what the adapter learnt meanwhile (per-shape
                # compile times); a worker of older code has no such command: its load-time values stay
                final = workers[v].ask({"op": "final"}, 30.0)
                for c, out in enumerate(outcomes[v]):
                    out.runtime = out.runtime | final.get("runtime", {})
                    yield v, c, out
        finally:
            for worker in workers.values():
                worker.close()


def measure_timed(groups: list[tuple[list[Cell], object, str]], settings: dict, rounds: int, seed: int,
                  timeout_s: float, suite_of: Callable, budget_of: Callable,
                  on_round: Callable[[int, int], None] | None = None) -> Iterator[tuple[int, int, dict]]:
    """Record fields for the timed cells of each (cells, artifact, interpreter) group, measured interleaved: the
    suite's numbers from all rounds' samples, the samples with their rounds, and each cell's speed-up over the
    reference configuration's cell of the same backbone and shape with its confidence interval (bench.stats),
    from the rounds both completed. Yields (group index, cell index, fields)."""
    from bench import stats
    from bench.runtimes import is_reference
    from bench.worker import now

    started = now()
    variants = [Variant(cells, artifact.summary(), python) for cells, artifact, python in groups]
    done: dict[tuple[int, int], Outcome] = {}
    if on_round:
        on_round(0, rounds)
    for v, c, outcome in interleave(variants, budget_of, settings, rounds, seed, timeout_s, on_round):
        done[v, c] = outcome
    shape = {}  # (backbone, device, suite, batch, seq_len) -> per-round medians of the reference cell
    for (v, c), out in done.items():
        cell = variants[v].cells[c]
        if out.samples and is_reference(cell.runtime, cell.precision, cell.sparsity):
            shape[cell.backbone, cell.device, cell.suite, cell.batch, cell.seq_len] = stats.round_medians(
                out.samples, out.rounds)
    session = {"rounds": rounds, "seed": seed, "variants": len(variants), "started": started}
    for (v, c), out in sorted(done.items()):
        cell = variants[v].cells[c]
        base = {"started": started, "finished": now(), "runtime": out.runtime | {"interleaved": session},
                "_libraries": out.libraries}
        if out.status != "ok" or not out.samples:
            kept = {"samples": {"round": out.rounds, "kept_s": out.samples}} if out.samples else {}
            yield v, c, base | kept | {"status": out.status, "reason": out.reason or "no samples"}
            continue
        result = suite_of(cell).from_samples(cell, out.samples, out.extra)
        metrics = result.metrics | {"rounds": len(set(out.rounds))}
        ref = shape.get((cell.backbone, cell.device, cell.suite, cell.batch, cell.seq_len))
        paired = stats.paired_ratio(ref, stats.round_medians(out.samples, out.rounds)) if ref else None
        if paired is not None:
            metrics |= {"speedup": paired.ratio, "speedup_low": paired.low, "speedup_high": paired.high,
                        "paired_rounds": paired.rounds}
        yield v, c, base | {"status": "ok", "metrics": metrics, "samples": result.samples | {"round": out.rounds}}
