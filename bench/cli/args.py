"""Argument types and default locations shared by the `bench` commands."""

from __future__ import annotations

import argparse
from pathlib import Path

RUNS = Path("runs")  # a user's own runs: runs/<machine>/<preset>, apart from the published sets under results/
DEFAULT_BASELINES = Path("results") / "baselines"  # relative to the working directory (nox runs in the repo)


def _csv(kind):
    def parse(text: str):
        items = [t.strip() for t in text.split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        try:
            return tuple(kind(t) for t in items)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from exc
    return parse


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be >= 1")
    return value


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def default_out(preset: str) -> Path:
    """This machine's own result directory for a preset: runs/<machine>/<preset>."""
    from bench.environment import machine_fingerprint

    return RUNS / machine_fingerprint() / Path(preset).stem
