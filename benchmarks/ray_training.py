"""The training part of a small plan on 1 vs 2 local Ray nodes (`bench run --executor ray`).

Real training code (adapters/build/torch_finetune.py, the recipes of bench/glue/hparams.toml), real Ray
(ray.cluster_utils.Cluster on this machine), on a stand-in workload small enough to repeat: the tests' tiny BERT
(seeded random weights) on the tests' synthetic GLUE copy with --rows training rows per task. Per task one dense
fine-tune and one sparse transfer to pruned80 (it waits for its fine-tune). `--real-glue DIR`: all-MiniLM-L6-v2
fine-tuned on the real tasks instead (dense only: the project's recipes, minutes per task). Each node gets ONE
CPU (this VM has two cores): 1 node trains the jobs one after the other, 2 nodes two at a time. Runs alternate
1-node and 2-node clusters (--repeats each), every run with an empty cache; the time is the executor's training
phase alone (node probes excluded).

    .nox/tests/bin/python -m benchmarks.ray_training --tasks rte,sst2,stsb,cola --rows 1500 --repeats 2 \\
        --out results/benchmarks/ray-training-<machine>.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one_run(nodes: int, tasks: str, rows: int, workdir: Path, real: Path | None = None) -> dict:
    from ray.cluster_utils import Cluster

    from adapters.ray_executor import RayExecutor
    from bench import runner
    from bench.glue import data
    from bench.glue.tasks import parse_tasks
    from bench.plan import plan_from_dict
    from suites.base import Context
    from tests.conftest import make_tiny_model
    from tests.glue_fixtures import known_table, write_glue

    os.environ["BENCH_CACHE"] = str(workdir / "cache")
    if real:  # all-MiniLM-L6-v2 fine-tuned on the real GLUE tasks, dense only
        os.environ[data.GLUE_DIR_ENV] = str(real)
        model, sparsities = "minilm-l6-h384", ["dense"]
    else:
        os.environ.pop(data.GLUE_DIR_ENV, None)
        glue = write_glue(workdir / "glue", rows={"train": rows, "dev": 64})
        data.import_dir(glue, parse_tasks(tasks), known=known_table(glue))
        model, sparsities = str(make_tiny_model(workdir / "tiny")), ["dense", "pruned80"]
    plan = plan_from_dict({"matrix": {"backbones": [model], "runtimes": ["torch"], "suites": ["glue"],
                                      "sparsities": sparsities, "tasks": tasks.split(",")},
                           "glue": {"sparsities": sparsities}, "run": {"threads": 1}})
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    executor = RayExecutor(cluster.address)
    try:
        found = executor.nodes(plan, {})
        head = found[0]
        context = Context(plan.seed, head.threads, head.machine, head.settings, plan.criterion)
        jobs = runner.trainings(plan, plan.cells(), context)
        log: list[tuple[float, str]] = []
        started = time.perf_counter()
        failures = executor.train(jobs, found, lambda line: log.append((time.perf_counter() - started, line)))
        seconds = time.perf_counter() - started
    finally:
        executor.close()
        cluster.shutdown()
    return {"nodes": nodes, "jobs": len(jobs), "failed": len(failures), "seconds": seconds,
            "machine": head.machine, "log": [f"{t:7.1f} s {line}" for t, line in log]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", default="rte,sst2")
    ap.add_argument("--rows", type=int, default=1500)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--real-glue", type=Path, metavar="DIR",
                    help="instead of the stand-in: all-MiniLM-L6-v2 on these real GLUE tasks (dense fine-tunes only), "
                    "e.g. ../shared/glue")
    args = ap.parse_args(argv)
    os.environ.setdefault("PYTHONPATH", str(REPO))
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    runs = []
    for r in range(args.repeats):
        for nodes in (1, 2):
            with tempfile.TemporaryDirectory(prefix="ray-training-") as tmp:
                run = one_run(nodes, args.tasks, args.rows, Path(tmp), args.real_glue)
            runs.append(run | {"repeat": r})
            print(f"repeat {r + 1}: {nodes} node(s): {run['jobs']} jobs, {run['failed']} failed, "
                  f"{run['seconds']:.1f} s", flush=True)
    from scipy.stats import gmean

    one = [x["seconds"] for x in runs if x["nodes"] == 1]
    two = [x["seconds"] for x in runs if x["nodes"] == 2]
    ratios = [a / b for a, b in zip(one, two, strict=True)]
    command = ["python", "-m", "benchmarks.ray_training", *(argv if argv is not None else sys.argv[1:])]
    result = {"command": " ".join(command), "machine": runs[0]["machine"], "tasks": args.tasks,
              "workload": f"all-MiniLM-L6-v2, real GLUE ({args.real_glue})" if args.real_glue else
              f"tests' tiny BERT, synthetic GLUE, {args.rows} train rows per task", "runs": runs,
              "speedup_2_vs_1_node": ratios, "speedup_geomean": float(gmean(ratios))}
    print(f"2 nodes vs 1 (1 CPU each): {', '.join(f'{x:.2f}x' for x in ratios)}; geometric mean "
          f"{result['speedup_geomean']:.2f}x")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
