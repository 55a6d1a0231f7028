"""`bench data glue`: prepare GLUE in the data cache, from a local GLUE-layout copy or the official download.

Bad input raises UsageError (one line, exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import UsageError

DEFAULT_TASKS = "sst2,mrpc,cola,stsb,rte,qnli"


def add_parsers(subparsers) -> argparse.ArgumentParser:
    data = subparsers.add_parser("data", help="prepare datasets in the data cache (GLUE)",
                                 description="Prepare datasets in the data cache ($BENCH_CACHE/glue).")
    kinds = data.add_subparsers(dest="dataset", required=True, parser_class=type(data))
    glue = kinds.add_parser(
        "glue", help="GLUE train/dev splits as parquet, validated",
        description="Import GLUE from a local copy in GLUE layout (DIR/SST-2/train.tsv, DIR/MRPC/..., ...) or "
        "download it from the official locations; every file is validated (header, fields, labels, row count, "
        "sha256 against the known-good copy) and nothing is written unless the whole task is valid.")
    glue.add_argument("--tasks", default=DEFAULT_TASKS, help=f"comma list (default: {DEFAULT_TASKS})")
    glue.add_argument("--from", dest="source", type=Path, metavar="DIR",
                      help="import a local GLUE-layout copy (one folder per task, as GLUE ships them) instead of "
                      "downloading")
    glue.add_argument("--no-verify", action="store_true",
                      help="accept files whose sha256 differs from the known-good copy (row counts and format "
                      "are still checked)")
    data.set_defaults(handler=cmd_data)
    return data


def cmd_data(args) -> int:
    from bench.glue import data, download
    from bench.glue.tasks import parse_tasks

    if args.dataset != "glue":
        raise UsageError(f"unknown dataset {args.dataset!r}; choose from: glue")
    tasks = parse_tasks(args.tasks)
    if args.source is not None:
        stored = data.import_dir(args.source, tasks, verify_checksum=not args.no_verify)
    else:
        stored = download.download(tasks)
    for task in tasks:
        m = data.manifest(task)
        splits = ", ".join(f"{s} {v['rows']} rows{'' if v['verified'] else ' (' + '; '.join(v['notes']) + ')'}"
                           for s, v in sorted(m["splits"].items()))
        missing = [s for s in task.files if s not in m["splits"]]
        note = f"; no {'/'.join(missing)} split (glue cells for {task.name} are skipped)" if missing else ""
        print(f"{task.name}: {splits}{note} → {stored[task.name]}")
    return 0
