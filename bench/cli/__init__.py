"""`bench` command line: list, prepare, run, report, compare, baseline, live, export, data.

Exit codes: 0 done (every cell ok or skipped); 1 done, but some cell failed (`run`, `report --check`) or a
regression was found (`compare`, `live`); 2 bad input (one line naming the valid choices, nothing written)."""

from __future__ import annotations

import argparse
import sys

from bench import __version__
from bench.cli import data, live, results, run
from bench.environment import apply_offline_env
from bench.errors import UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage too; keep it to one line)
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bench", description=__doc__)
    p.add_argument("--version", action="version", version=f"backbone-bench {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    for commands in (run, results, live, data):
        commands.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress lines reach nox/CI logs as they happen
    apply_offline_env()  # every command: no hub, no telemetry, before anything imports a framework
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except UsageError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; finished cells are saved, re-run to resume", file=sys.stderr)
        return 130
