"""`bench run --executor ray`: the same plan on a real two-node Ray cluster (ray.cluster_utils.Cluster on this
machine, each node declared a host of its own) gives the local executor's cells and statuses, each record naming
the node that measured it; a node removed mid-run loses no finished cell; training is spread over the nodes; a
cluster address that does not answer is one line, exit 2, nothing written."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from bench.cli import main
from bench.plan import plan_from_dict
from bench.records import RECORDS_FILE, read
from tests.test_runner import REPO, fake_model

ray = pytest.importorskip("ray", reason="needs the ray extra (pip install -e '.[ray]')")
from ray.cluster_utils import Cluster  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two nodes of one CPU each, declared separate hosts (bench_host_a/b), with the test runtimes importable."""
    import tempfile

    saved = {k: os.environ.get(k) for k in ("BENCH_PLUGINS", "PYTHONPATH", "BENCH_CACHE", "RAY_USAGE_STATS_ENABLED",
                                            "TMPDIR")}
    # Ray's session directory (sockets, logs) in a short fresh /tmp directory: under nox's TMPDIR
    # (.nox/tests/tmp) the cluster's workers never started and the tests hung
    os.environ.update({"BENCH_PLUGINS": "tests.fault_adapter", "PYTHONPATH": str(REPO),
                       "BENCH_CACHE": str(tmp_path_factory.mktemp("ray-cache")), "RAY_USAGE_STATS_ENABLED": "0",
                       "TMPDIR": tempfile.mkdtemp(prefix="ray-", dir="/tmp")})
    import tests.fault_adapter  # noqa: F401  (registers the runtimes in this process too)

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {"bench_host_a": 1},
                                                       "include_dashboard": False})
    worker = c.add_node(num_cpus=1, resources={"bench_host_b": 1})
    c.wait_for_nodes()
    yield c, worker
    c.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def model(tmp_path):
    from tests.conftest import write_vocab

    (tmp_path / "model").mkdir()
    fake_model(tmp_path / "model")
    write_vocab(tmp_path / "model")
    return tmp_path / "model"


def slow(model: Path, ms: float = 150.0) -> Path:
    """The steady runtime at `ms` per forward, written into the model's config: the config travels with the
    artifact to every node, while an environment variable set after the cluster started reaches no Ray worker
    (at the default 2 ms a whole variant finished before the driver saw its first record)."""
    import json

    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"steady_ms": ms}))
    return model


def plan_for(model, rounds=0, runtimes=("steady",), precisions=("fp32", "int8"), seq_lens=(8, 16)):
    return plan_from_dict({
        "matrix": {"backbones": [str(model)], "runtimes": list(runtimes), "precisions": list(precisions),
                   "suites": ["params", "latency", "throughput"]},
        "latency": {"seq_lens": list(seq_lens), "warmup_iters": 1, "warmup_s": 0.0, "min_iters": 12,
                    "min_time_s": 0.0},
        "throughput": {"seq_len": 8, "batches": [2], "warmup_iters": 1, "min_iters": 12, "min_time_s": 0.0},
        "run": {"threads": 1, "timeout_s": 120.0, "rounds": rounds}})


def outcome(out) -> dict:
    return {r.cell.label: r.status for r in read(out / RECORDS_FILE)}


def executor(cluster):
    from adapters.ray_executor import RayExecutor

    return RayExecutor(cluster[0].address)


@pytest.mark.parametrize("rounds", [0, 3])
def test_a_plan_on_two_ray_nodes_gives_the_local_executors_cells_and_statuses(cluster, model, tmp_path, rounds):
    from bench import runner

    plan = plan_for(model, rounds)
    runner.run(plan, tmp_path / "local")
    runner.run(plan, tmp_path / "ray", executor=executor(cluster))
    local, remote = outcome(tmp_path / "local"), outcome(tmp_path / "ray")
    assert remote == local and set(local.values()) == {"ok"} and len(local) == len(plan.cells())
    recs = read(tmp_path / "ray" / RECORDS_FILE)
    assert all(r.environment["machine"] and r.environment["ray_node"] for r in recs)
    if not rounds:  # four variant units over two hosts: both nodes measured some
        assert len({r.environment["ray_node"] for r in recs}) == 2
    # a second run on the cluster resumes: every cell is already recorded for one of its machines
    assert runner.run(plan, tmp_path / "ray", executor=executor(cluster)).resumed == len(plan.cells())


def test_a_node_removed_mid_run_loses_no_finished_cell(cluster, model, tmp_path):
    """At 150 ms a forward each latency cell takes seconds; the worker node is removed once it recorded a cell; the
    cells it had finished stay, the rest of its variant runs again on the other node."""
    from bench import runner

    c, worker = cluster
    plan = plan_for(slow(model), precisions=("fp32", "int8"), seq_lens=(8, 16, 24, 32))
    out = tmp_path / "ray"
    removed = threading.Event()
    before: list[str] = []

    def remove_when_started():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not removed.is_set():
            recs = read(out / RECORDS_FILE) if (out / RECORDS_FILE).is_file() else []
            if any(r.environment.get("ray_node") == worker.node_id for r in recs):
                before.extend(r.cell.label for r in recs if r.environment.get("ray_node") == worker.node_id)
                c.remove_node(worker)
                removed.set()
            time.sleep(0.2)

    killer = threading.Thread(target=remove_when_started, daemon=True)
    killer.start()
    try:
        runner.run(plan, out, executor=executor(cluster))
    finally:
        killer.join()
        if removed.is_set():  # the next tests get their second node back
            c.add_node(num_cpus=1, resources={"bench_host_b": 1})
            c.wait_for_nodes()
    assert removed.is_set()
    recs = read(out / RECORDS_FILE)
    labels = [r.cell.label for r in recs]
    assert sorted(labels) == sorted(c.label for c in plan.cells())  # every cell once, none lost, none twice
    lost = [r for r in recs if r.status != "ok"]
    assert all(r.status == "failed" and "Ray" in r.reason for r in lost)
    on_worker = {r.cell.label for r in recs if r.environment["ray_node"] == worker.node_id}
    assert before and set(before) <= on_worker and len(on_worker) < len(plan.cells()) // 2  # stopped short
    variant = {r.cell.precision for r in recs if r.cell.label in on_worker}
    assert all(r.status == "ok" for r in recs if r.cell.precision in variant)  # the rest retried elsewhere


def test_a_driver_killed_mid_run_and_started_again_resumes(cluster, model, tmp_path):
    """The driver (bench run in its own process) is killed with SIGKILL once a cell is recorded; its tasks die with
    it; the same command again runs only what is missing, and every cell ends up recorded once."""
    import signal
    import subprocess
    import sys

    slow(model)
    preset = tmp_path / "p.toml"
    preset.write_text(f"""[matrix]
backbones = ["{model}"]
runtimes = ["steady"]
precisions = ["fp32", "int8"]
suites = ["params", "latency"]
[latency]
seq_lens = [8, 16, 24, 32]
warmup_iters = 1
warmup_s = 0.0
min_iters = 12
min_time_s = 0.0
[run]
threads = 1
""")
    out = tmp_path / "out"
    cmd = [str(Path(sys.executable).parent / "bench"), "run", "--preset", str(preset), "--executor",
           f"ray={cluster[0].address}", "--out", str(out), "--no-report"]
    env = dict(os.environ)
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ((out / RECORDS_FILE).is_file() and read(out / RECORDS_FILE)):
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    first = {r.cell.label for r in read(out / RECORDS_FILE)}
    assert 0 < len(first) < 10
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    recs = read(out / RECORDS_FILE)
    labels = [r.cell.label for r in recs]
    assert len(labels) == len(set(labels)) == 10 and first <= set(labels)
    assert {r.status for r in recs} == {"ok"}


def test_cells_of_a_runtime_no_node_has_are_skipped_with_the_reason(cluster, model, tmp_path):
    from bench import runner

    plan = plan_for(model, runtimes=("steady", "absent"), precisions=("fp32",))
    # an interpreter named for its extra that the nodes do not have counts as no environment
    runner.run(plan, tmp_path / "ray", executor=executor(cluster), pythons={"absent-extra": str(tmp_path / "nope")})
    recs = read(tmp_path / "ray" / RECORDS_FILE)
    absent = [r for r in recs if r.cell.runtime == "absent"]
    assert absent and all(r.status == "skipped" and "no node of the Ray cluster" in r.reason
                          and "absent-extra" in r.reason for r in absent)
    assert all(r.status == "ok" for r in recs if r.cell.runtime == "steady")


def test_a_cluster_address_that_does_not_answer_is_one_line_exit_2_nothing_written(tmp_path, capsys, model):
    preset = tmp_path / "p.toml"
    preset.write_text(f'[matrix]\nbackbones = ["{model}"]\nruntimes = ["steady"]\nsuites = ["params"]\n')
    out = tmp_path / "out"
    code = main(["run", "--preset", str(preset), "--executor", "ray=127.0.0.1:9", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "does not answer" in err and not out.exists()
    assert main(["run", "--preset", str(preset), "--executor", "slurm", "--out", str(out)]) == 2
    assert "unknown executor 'slurm'; choose from: local, ray[=ADDRESS]" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.torch
def test_training_is_spread_over_the_nodes_before_the_cells_run(cluster, tmp_path, monkeypatch, capsys):
    """Two GLUE tasks on a tiny model: two fine-tunes on the two nodes at once, each task's sparse transfer once its
    fine-tune is done (it distils from it); the cells then find every checkpoint cached."""
    from tests.conftest import HAS_TORCH, make_tiny_model
    from tests.glue_fixtures import known_table, write_glue

    if not HAS_TORCH:
        pytest.skip("needs the torch extra")
    from bench.glue import data
    from bench.glue.tasks import parse_tasks

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(data.GLUE_DIR_ENV, raising=False)
    glue = write_glue(tmp_path / "glue")
    data.import_dir(glue, parse_tasks("rte,sst2"), known=known_table(glue))
    model = make_tiny_model(tmp_path / "tiny")
    preset = tmp_path / "glue.toml"
    preset.write_text(f'''[matrix]
backbones = ["{model}"]
runtimes = ["torch"]
sparsities = ["dense", "pruned80"]
suites = ["glue"]
tasks = ["rte", "sst2"]
[glue]
batch_size = 8
sparsities = ["dense", "pruned80"]
[run]
threads = 1
''')
    code = main(["run", "--preset", str(preset), "--executor", f"ray={cluster[0].address}", "--out",
                 str(tmp_path / "out"), "--no-report"])
    printed = capsys.readouterr().out
    recs = read(tmp_path / "out" / RECORDS_FILE)
    assert code == 0 and {r.status for r in recs} == {"ok"} and len(recs) == 4
    trained = [line for line in printed.splitlines() if "training on node" in line]
    assert len(trained) == 4  # rte and sst2 fine-tunes, then their sparse transfers
    for task in ("rte", "sst2"):
        order = [i for i, line in enumerate(trained) if line.endswith(f"on {task}")]
        assert "fine-tune" in trained[order[0]] and "sparse transfer" in trained[order[1]]
    assert len({line.split("training on node ")[1].split(":")[0] for line in trained}) == 2
