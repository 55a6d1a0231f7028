"""No loss and resume: a runner killed with SIGKILL mid-sweep loses nothing it finished, and a re-run
completes the sweep with every cell recorded exactly once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.records import RECORDS_FILE, read
from tests.test_runner import fake_model

REPO = Path(__file__).resolve().parent.parent


def test_kill_9_mid_sweep_then_rerun_records_every_cell_exactly_once(tmp_path, vocab_dir):
    fake_model(vocab_dir)
    preset = tmp_path / "sweep.toml"
    preset.write_text(f"""
[matrix]
backbones = ["{vocab_dir}"]
runtimes = ["fault"]
precisions = ["fp32"]
suites = ["latency"]
[latency]
seq_lens = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
warmup_iters = 1
warmup_s = 0.0
min_iters = 3
min_time_s = 0.3
[run]
threads = 1
""")
    out = tmp_path / "out"
    env = os.environ | {"BENCH_PLUGINS": "tests.fault_adapter", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "bench.cli", "run", "--preset", str(preset), "--out", str(out), "--no-report"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    records = out / RECORDS_FILE
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not records.exists() or len(records.read_text().splitlines()) < 3):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished_before = {r.run_key for r in read(records)}
    assert 3 <= len(finished_before) < 12

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished_before)} already recorded" in rerun.stdout
    recs = read(records)
    assert sorted(r.cell.seq_len for r in recs) == list(range(8, 20))
    assert len({r.run_key for r in recs}) == len(recs) == 12
    assert finished_before <= {r.run_key for r in recs}
    assert all(r.status == "ok" for r in recs)
