"""The `ray` executor (bench run --executor ray[=ADDRESS]): a run's units on the nodes of a Ray cluster.

- Nodes: every alive node is probed once, one after the other (a task pinned to it that owns all its CPUs, so the
  GEMM peaks it measures are its own): machine fingerprint, description, peaks, which runtime environments it has,
  whether it sees the driver's cache. A node that does not see the cache, or runs other harness code, gets nothing.
- A unit (one variant's cells, or one interleaved session) runs as a streaming task pinned to one node
  (NodeAffinitySchedulingStrategy, not soft) asking for all the node's CPUs (and its GPUs for cuda cells), with
  the thread variables set explicitly: Ray would give a task that asks for no CPUs OMP_NUM_THREADS=1. Only one unit
  runs per *host* at a time: nodes of one local cluster share a machine, and a timed cell beside another would
  measure both (HOST_RESOURCE lets the operator declare hosts). Each cell's record streams back as it finishes;
  the driver appends it (fsynced) with the fingerprint of the node that measured it (and `ray_node`).
- A node lost mid-unit: the cells it finished are kept; the rest go once to another node that can run them, else
  they are recorded failed with the reason. Ray's own retries are off (a retried generator would measure twice).
- Training (Suite.trainings) goes first, each job on a free node with torch (all its CPUs) once the job it needs
  (a sparse transfer's dense teacher) finished.
- Artifacts move through the cache path, which every node must see (a shared filesystem; one machine: the same).
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace

from bench import __version__
from bench.artifacts import cache_root
from bench.environment import OFFLINE_ENV
from bench.errors import UsageError
from bench.executor import Event, Node, Spec, TrainJob, Unit

CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 300.0  # a node's probe (it measures GEMM peaks) that takes longer: the node gets no work
# a node started with a resource named bench_host_<id> (ray start --resources '{"bench_host_a": 1}') counts as host
# <id>: the operator says which nodes are separate machines (else: nodes with one boot id are one host)
HOST_RESOURCE = "bench_host_"


def make(address: str | None = None) -> RayExecutor:
    return RayExecutor(address)


def _answers(address: str) -> str | None:
    """Why a host:port address does not answer (None: it accepts connections)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return f"expected HOST:PORT (the head node's GCS address, e.g. 10.0.0.5:6379), got {address!r}"
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"{exc.strerror or exc} (after at most {CONNECT_TIMEOUT_S:g} s)"


def _node_env(threads: int) -> dict[str, str]:
    """What every task sets before it runs anything: the thread pools' sizes and the offline switches."""
    t = str(threads)
    return OFFLINE_ENV | {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t}


def _probe(plan, pythons: dict, node_id: str, cpus: int, token: str, env: dict) -> dict:
    os.environ.update(env)
    from pathlib import Path

    from bench.local import this_node

    if not Path(token).is_file():
        return {"error": f"does not see the driver's cache ({Path(token).parent}): give every node one shared "
                "BENCH_CACHE path"}
    return {"node": this_node(plan, pythons, name=node_id, threads=cpus), "version": __version__}


def _unit(unit: Unit, settings: dict, spec: Spec, env: dict) -> Iterator[tuple[int, int, dict]]:
    os.environ.update(env)
    from bench.local import execute_unit

    yield from execute_unit(unit, settings, spec)


def _train(job: TrainJob, threads: int, env: dict) -> str | None:
    os.environ.update(env)
    from suites import get_suite

    return get_suite(job.suite).train(job, threads)


class RayExecutor:
    name = "ray"
    trains = True

    def __init__(self, address: str | None):
        import ray

        os.environ.update(OFFLINE_ENV)  # Ray's usage statistics off before it starts
        if address not in (None, "auto"):
            why = _answers(address)
            if why:
                raise UsageError(f"--executor ray={address}: the Ray cluster does not answer: {why}")
        # the driver's cache and data paths (and offline switches) on every node: artifacts move through the cache
        env = {k: v for k, v in os.environ.items() if k.startswith("BENCH_") or k == "MXNET_HOME"} | OFFLINE_ENV
        env.setdefault("BENCH_CACHE", str(cache_root()))
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                     runtime_env={"env_vars": env}, configure_logging=True)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"--executor ray{'=' + address if address else ''}: cannot connect to Ray: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self.ray = ray
        self.cpus: dict[str, int] = {}
        self.gpus: dict[str, int] = {}
        self.excluded: dict[str, str] = {}  # node id -> why it gets no work

    # -- nodes -----------------------------------------------------------------------------------------------
    def _alive(self) -> dict[str, dict]:
        return {n["NodeID"]: n for n in self.ray.nodes() if n.get("Alive")}

    def _pinned(self, node_id: str, fn, *, cpus: int = 0, gpus: int = 0):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return self.ray.remote(fn).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False))

    def nodes(self, plan, pythons: dict) -> list[Node]:
        """Every alive node that sees the cache and runs this harness version, probed one after the other."""
        token = cache_root() / f".ray-probe-{uuid.uuid4().hex}"
        token.parent.mkdir(parents=True, exist_ok=True)
        token.write_text("")
        found = []
        try:
            for node_id, info in sorted(self._alive().items()):
                cpus = max(1, int(info["Resources"].get("CPU", 1)))
                gpus = int(info["Resources"].get("GPU", 0))
                self.cpus[node_id], self.gpus[node_id] = cpus, gpus
                threads = plan.threads or cpus
                try:
                    answer = self.ray.get(self._pinned(node_id, _probe, cpus=cpus, gpus=gpus).remote(
                        plan, pythons, node_id, cpus, str(token), _node_env(threads)), timeout=PROBE_TIMEOUT_S)
                except (self.ray.exceptions.RayError, TimeoutError) as exc:  # a node whose workers never start
                    answer = {"error": f"probe failed: {_first_line(exc)}"}
                if "error" not in answer and answer["version"] != __version__:
                    answer = {"error": f"runs backbone-bench {answer['version']}, the driver {__version__}"}
                if "error" in answer:
                    self.excluded[node_id] = answer["error"]
                    continue
                node = answer["node"]
                declared = sorted(k for k in info["Resources"] if k.startswith(HOST_RESOURCE))
                found.append(replace(node, host=declared[0] if declared else node.host,
                                     environment=node.environment | {"ray_node": node_id}))
        finally:
            token.unlink(missing_ok=True)
        if not found:
            why = "; ".join(f"node {n[:12]}: {w}" for n, w in self.excluded.items()) or "no alive node"
            raise UsageError(f"--executor ray: no node of the cluster can run cells ({why})")
        return found

    def unavailable(self, cell, nodes: list[Node], pythons: dict) -> dict | None:
        if any(cell.runtime in n.runtimes for n in nodes):
            return None
        from bench.runtimes import get_runtime

        return {"status": "skipped", "reason": f"runtime {cell.runtime}: no node of the Ray cluster has its "
                f"environment ({len(nodes)} nodes; install extra '{get_runtime(cell.runtime).extra}' on one, or "
                "pass --python for an interpreter that every node has)"}

    # -- scheduling ------------------------------------------------------------------------------------------
    def _schedule(self, pending: list, can_run: Callable[[object, Node], bool], exclusive: Callable[[Node], str],
                  start: Callable[[object, Node, queue.Queue], None], nodes: list[Node]):
        """Each task of `pending` (the caller may append retries while iterating) to a free node that can run it,
        one per `exclusive(node)` key at a time; yields (task, node, kind, payload) from `start`'s threads:
        ("item", x), ("end", None), ("lost", why); a task no alive node can run: (task, None, "lost", why)."""
        events: queue.Queue = queue.Queue()
        busy: dict[str, object] = {}  # exclusive key -> task
        dead: set[str] = set()
        while pending or busy:
            alive = self._alive()
            for task in list(pending):
                free = [n for n in nodes if n.name in alive and n.name not in dead and exclusive(n) not in busy
                        and can_run(task, n)]
                if free:
                    pending.remove(task)
                    busy[exclusive(free[0])] = task
                    threading.Thread(target=start, args=(task, free[0], events), daemon=True).start()
                elif not any(n.name in alive and n.name not in dead and can_run(task, n) for n in nodes):
                    pending.remove(task)
                    yield task, None, "lost", "no alive node of the cluster can run it"
            if not busy:
                continue
            task, node, kind, payload = events.get()
            if kind in ("end", "lost"):
                busy.pop(exclusive(node), None)
                if kind == "lost" and node.name not in self._alive():
                    dead.add(node.name)
            yield task, node, kind, payload

    def execute(self, units: list[Unit], nodes: list[Node], spec: Spec,
                on_start: Callable[[int], None], on_round: Callable[[int, int, int], None]) -> Iterator[Event]:
        attempts: list[_Attempt] = [_Attempt(u, unit, [list(range(len(v))) for v in unit.variants], set())
                                    for u, unit in enumerate(units)]

        def can_run(a: _Attempt, n: Node) -> bool:
            return n.name not in a.tried and a.unit.runtimes <= set(n.runtimes) and (n.gpu or not a.unit.cuda)

        def start(a: _Attempt, node: Node, events: queue.Queue) -> None:
            on_start(a.index)
            cuda = self.gpus.get(node.name, 0) if a.unit.cuda else 0
            try:
                stream = self._pinned(node.name, _unit, cpus=self.cpus[node.name], gpus=cuda).remote(
                    a.unit, node.settings, spec, _node_env(node.threads))
                for ref in stream:
                    events.put((a, node, "item", self.ray.get(ref)))
                events.put((a, node, "end", None))
            except Exception as exc:  # a lost node, a dead worker, or an error Ray raised: the unit's rest
                events.put((a, node, "lost", _first_line(exc)))

        for a, node, kind, payload in self._schedule(attempts, can_run, lambda n: n.host, start, nodes):
            if kind == "item":
                v, c, fields = payload
                a.done.add((v, c))
                yield a.index, v, a.map[v][c], fields, node
                continue
            if kind != "lost":
                continue
            rest = [[c for c in range(len(rows)) if (v, c) not in a.done] for v, rows in enumerate(a.unit.variants)]
            if not any(rest):
                continue
            where = f" on node {node.name[:12]}" if node else ""
            if node is not None and not a.tried:  # once more elsewhere, with the cells still missing
                again = _Attempt(a.index, replace(a.unit, variants=[[a.unit.variants[v][c] for c in cs]
                                                                    for v, cs in enumerate(rest)]),
                                 [[a.map[v][c] for c in cs] for v, cs in enumerate(rest)], a.tried | {node.name},
                                 first_error=f"{where}: {payload}")
                attempts.append(again)
                continue
            why = f"Ray{where}: {payload}" + (f" (first try{a.first_error})" if a.first_error else "")
            for v, cs in enumerate(rest):
                for c in cs:
                    yield a.index, v, a.map[v][c], {"status": "failed", "reason": why}, node or nodes[0]

    def train(self, jobs: list[TrainJob], nodes: list[Node], log: Callable[[str], None]) -> dict[TrainJob, str]:
        """Each job on a free node that has torch (one job per node, all its CPUs) as soon as the job it needs
        finished: a task's sparse transfer starts while other tasks still fine-tune."""
        failures: dict[TrainJob, str] = {}
        waiting = [j for j in jobs if j.needs is not None]
        todo = [_Job(j, set()) for j in jobs if j.needs is None]
        chain = _chains(jobs)
        todo.sort(key=lambda j: -chain[j.job])  # longest chain first: the cluster's last job ends soonest

        def start(job: _Job, node: Node, events: queue.Queue) -> None:
            log(f"training on node {node.name[:12]}: {job.job.label}")
            try:
                why = self.ray.get(self._pinned(node.name, _train, cpus=self.cpus[node.name]).remote(
                    job.job, node.threads, _node_env(node.threads)))
                events.put((job, node, "item", why))
                events.put((job, node, "end", None))
            except Exception as exc:
                events.put((job, node, "lost", _first_line(exc)))

        def finished(job: TrainJob, why: str | None) -> None:
            if why:
                failures[job] = why
            for j in [j for j in waiting if j.needs == job.cell]:
                waiting.remove(j)
                if why:
                    failures[j] = f"needs {job.label}, which failed: {why}"
                else:
                    todo.append(_Job(j, set()))
            todo.sort(key=lambda j: -chain[j.job])

        for job, node, kind, payload in self._schedule(
                todo, lambda j, n: "torch" in n.runtimes and n.name not in j.tried, lambda n: n.name, start, nodes):
            if kind == "item":
                finished(job.job, payload)
            elif kind == "lost":
                if node is not None and not job.tried:
                    todo.append(_Job(job.job, {node.name}))
                else:
                    finished(job.job, f"training on the Ray cluster failed: {payload}")
        for j in waiting:  # what they need was never scheduled (cannot happen: suites list it)
            failures[j] = f"needs {j.needs.label}, which was not trained"
        return failures

    def close(self) -> None:
        """Disconnect (a local instance started here stops with it)."""
        with contextlib.suppress(Exception):
            self.ray.shutdown()


def _chains(jobs: list[TrainJob]) -> dict[TrainJob, float]:
    """Each job's cost plus its longest chain of dependents (jobs that need it, transitively)."""
    out: dict[TrainJob, float] = {}

    def chain(job: TrainJob) -> float:
        if job not in out:
            out[job] = job.cost + max((chain(d) for d in jobs if d.needs == job.cell), default=0.0)
        return out[job]

    for job in jobs:
        chain(job)
    return out


class _Attempt:
    """A unit on its way to a node: which of its cells are done, how its rows map to the original unit's."""

    def __init__(self, index: int, unit: Unit, rows: list[list[int]], tried: set[str], first_error: str = ""):
        self.index, self.unit, self.map, self.tried, self.first_error = index, unit, rows, tried, first_error
        self.done: set[tuple[int, int]] = set()


class _Job:
    def __init__(self, job: TrainJob, tried: set[str]):
        self.job, self.tried = job, tried


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
