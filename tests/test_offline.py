"""No surprise network: a small sweep (runner + cell workers + report) with every socket connection and
DNS lookup from Python refused by an audit hook installed in each process."""

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import needs_torch

REPO = Path(__file__).resolve().parent.parent
GUARD = """
import os, sys
_log = os.environ["NET_GUARD_LOG"]
def _guard(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "urllib.Request"):
        if event == "socket.connect" and args and getattr(args[0], "family", None) == 1:  # AF_UNIX is local
            return
        with open(_log, "a") as f:
            f.write(f"{event} {args!r:.200}\\n")
        raise OSError(f"network blocked by test: {event}")
sys.addaudithook(_guard)
"""


@needs_torch
def test_sweep_makes_no_network_access(tmp_path, tiny_model_dir):
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "network.log"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}  # the harness must set them
    env |= {"PYTHONPATH": f"{guard_dir}{os.pathsep}{REPO}", "NET_GUARD_LOG": str(log)}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bench.cli", "run", "--backbones", str(tiny_model_dir), "--runtimes", "torch",
           "--sparsities", "dense", "--precisions", "fp32,int8", "--devices", "cpu", "--suites", "params,latency",
           "--seq-lens", "8", "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "4 ok" in proc.stdout
    assert not log.exists(), log.read_text()
