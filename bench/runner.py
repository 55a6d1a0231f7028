"""Runner: a plan's cells → prepared files → units (a variant's cells in one worker; the timed cells of a
backbone's variants in sessions of interleaved rounds) → an executor (bench/executor.py: this machine, or a
cluster's nodes) → one fsynced record appended as each cell finishes.

Re-running the same plan skips cells already recorded `ok` or `skipped` for the same cell, artifact, harness
version and machine (any machine the executor runs on), unless `force` is set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import groupby
from pathlib import Path

from bench import __version__, rounds
from bench.artifacts import Artifact
from bench.cell import Cell
from bench.environment import apply_offline_env
from bench.errors import UsageError
from bench.executor import Node, Spec, TrainJob, Unit
from bench.keys import digest
from bench.local import LocalExecutor
from bench.plan import Plan
from bench.preparation import prepare_artifacts, resolve_forms
from bench.records import RECORDS_FILE, Record, append, read
from bench.runtimes import is_reference, pythons_from_env
from bench.worker import now
from suites import get_suite
from suites.base import Context, Ready


@dataclass
class RunSummary:
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0

    def add(self, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)


def run_key(cell: Cell, artifact: Artifact | None, machine: str) -> str:
    return digest([cell.identity(), artifact.content_hash if artifact else None, __version__, machine], 20)


def run(plan: Plan, out_dir: Path, force: bool = False,
        on_event: Callable[[str, Cell, Record | tuple | None], None] | None = None,
        pythons: dict[str, str] | None = None, executor=None) -> RunSummary:
    """Run every cell of `plan`, appending to out_dir/records.jsonl; returns counts by status. Runtimes not
    installed here run in the interpreter `pythons` gives for their extra (bench.runtimes.interpreter). The
    `executor` (bench/executor.py) says where units run: this machine (default) or a cluster's nodes."""
    apply_offline_env()
    notify = on_event or (lambda *_: None)
    executor = executor or LocalExecutor()
    pythons = pythons if pythons is not None else pythons_from_env()
    out_dir.mkdir(parents=True, exist_ok=True)
    records_path = out_dir / RECORDS_FILE
    existing = read(records_path) if records_path.exists() else []
    nodes = executor.nodes(plan, pythons)
    machines = {n.machine for n in nodes}
    others = sorted({m for r in existing if (m := (r.environment or {}).get("machine")) and m not in machines})
    if others:  # a published set, or another machine's run: this machine's numbers go in a directory of their own
        mine = ", ".join(sorted(machines))
        raise UsageError(f"{records_path} holds records of machine {', '.join(others)}, and this is machine "
                         f"{mine}: a run appends only to its own machine's records; choose another --out "
                         f"(the default, runs/{mine}/<preset>, is this machine's own)")
    done = {r.run_key for r in existing if r.status != "failed"}
    head = nodes[0]  # cells decided without running carry its machine
    cells = plan.cells()
    prepared = prepare_artifacts(cells, plan, head.threads)  # a failed artifact or file fails its cells, not the run
    resolve_forms(prepared, cells, plan.criterion)
    context = Context(plan.seed, head.threads, head.machine, head.settings, plan.criterion)
    if executor.trains:  # spread over the cluster first; the suites then find their checkpoints cached
        jobs = trainings(plan, cells, context)
        failures = executor.train(jobs, nodes, lambda line: notify("log", cells[0], line)) if jobs else {}
        context = replace(context, train=False, train_failures={_job_key(j): why for j, why in failures.items()})
    ready = _suites_prepare(plan, cells, context)
    gpu = any(n.gpu for n in nodes)
    summary = RunSummary()
    todo: list[tuple[Cell, Artifact | None, dict | None]] = []  # (cell, artifact, fields if not run)
    for cell in cells:
        own = ready.get(cell)
        artifact = own.artifact if own else prepared.artifacts.get((cell.backbone, cell.sparsity))
        if not force and any(run_key(cell, artifact, m) in done for m in machines):
            summary.resumed += 1
            notify("resumed", cell, None)
            continue
        fields = None
        why = None if own else prepared.reason(cell)
        if cell.device == "cuda" and not gpu:
            fields = {"status": "skipped", "reason": "device cuda: no CUDA GPU on this machine (nvidia-smi)"}
        elif why:
            fields = {"status": "failed", "reason": why}
        elif own and own.reason:
            fields = {"status": own.status, "reason": own.reason}
        elif own:
            fields = get_suite(cell.suite).recall(own.reuse_key, plan.settings_of(cell.suite))
        if fields is None:
            fields = executor.unavailable(cell, nodes, pythons)
        todo.append((cell, artifact, fields))

    # consecutive cells of one variant share a worker process (one load) unless isolate = "cell"; cells
    # decided without running form their own unit
    units: list[Unit] = []
    shared = plan.isolate == "variant"
    timed: list[list[tuple]] = []  # with rounds: the timed cells of each variant, measured interleaved at the end
    for _, same in groupby(todo, key=lambda t: _variant(t[0], t[1]) if shared and t[2] is None else id(t)):
        group = list(same)
        if group[0][2] is not None:
            (cell, artifact, fields), = group
            units.append(Unit([[(cell, artifact, True)]], decided=fields))
            continue
        if plan.rounds:
            timed += [[t for t in group if get_suite(t[0].suite).timed]]
            group = [t for t in group if not get_suite(t[0].suite).timed]
            if not group:
                continue
        units.append(Unit([[(cell, artifact, True) for cell, artifact, _ in group]]))
    # sessions of rounds per backbone (speed-ups compare rows of one backbone), at most plan.live_workers variants
    # loaded at once; the reference variant is in every session so each row's speed-up stays paired, and is
    # recorded from the first
    for backbone in dict.fromkeys(g[0][0].backbone for g in timed if g):
        same = [g for g in timed if g and g[0][0].backbone == backbone]
        for n, session in enumerate(rounds.sessions(same, plan.live_workers, lambda g: _is_reference(g[0][0]))):
            units.append(Unit([[(cell, artifact, n == 0 or not _is_reference(cell)) for cell, artifact, _ in g]
                               for g in session], session=True))
    budgets = {c: get_suite(c.suite).budget(plan.settings_of(c.suite))
               for u in units if u.session for c in u.cells}
    spec = Spec(plan.timeout_s, plan.rounds, plan.seed, budgets, pythons)

    def record(cell: Cell, artifact: Artifact, node: Node, fields: dict) -> None:
        libraries = fields.pop("_libraries", None)  # a worker of another environment: its own libraries
        rec = Record(cell=cell, artifact=artifact.summary() if artifact else {}, settings=node.settings,
                     environment=node.environment | ({"libraries": libraries} if libraries else {}),
                     harness_version=__version__, run_key=run_key(cell, artifact, node.machine), **fields)
        append(records_path, rec)
        summary.add(rec.status)
        notify("end", cell, rec)

    runnable = [u for u in units if u.decided is None]
    for unit in units:
        if unit.decided is not None:
            (cell, artifact, _), = unit.variants[0]
            notify("start", cell, None)
            record(cell, artifact, head, {"started": now(), "finished": now()} | unit.decided)
    try:
        for u, v, c, fields, node in executor.execute(
                runnable, nodes, spec, on_start=lambda u: notify("start", runnable[u].cells[0], None),
                on_round=lambda u, k, m: notify("round", runnable[u].cells[0], (k, m))):
            cell, artifact, keep = runnable[u].variants[v][c]
            if not keep:
                continue
            record(cell, artifact, node, fields)
            if cell in ready:
                get_suite(cell.suite).remember(ready[cell].reuse_key, fields)
            rows = runnable[u].variants[v]
            if not runnable[u].session and c + 1 < len(rows):
                notify("start", rows[c + 1][0], None)
    finally:
        executor.close()
    return summary


def trainings(plan: Plan, cells: list[Cell], context: Context) -> list[TrainJob]:
    jobs: list[TrainJob] = []
    for name in dict.fromkeys(c.suite for c in cells):
        jobs += get_suite(name).trainings([c for c in cells if c.suite == name], plan.settings_of(name), context)
    return jobs


def _job_key(job: TrainJob) -> tuple:
    return job.suite, job.cell.backbone, job.cell.task, job.cell.sparsity, job.cell.seed


def _is_reference(cell: Cell) -> bool:
    return is_reference(cell.runtime, cell.precision, cell.sparsity)


def _suites_prepare(plan: Plan, cells: list[Cell], context: Context) -> dict[Cell, Ready]:
    """What each suite decided for its own cells before any runs (fine-tuned artifacts, reuse keys)."""
    ready: dict[Cell, Ready] = {}
    for name in dict.fromkeys(c.suite for c in cells):
        ready |= get_suite(name).prepare([c for c in cells if c.suite == name], plan.settings_of(name), context)
    return ready


def _variant(cell: Cell, artifact: Artifact) -> tuple:
    """Cells that can share one loaded adapter: same model file, same runtime, precision and device."""
    return cell.backbone, cell.runtime, cell.precision, cell.sparsity, cell.device, artifact.content_hash


