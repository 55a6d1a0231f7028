"""GLUE data: parse and validate the TSV files, store each task as parquet in the data cache, load splits.

Every problem with an input file (wrong header, a truncated or reordered file, a bad label, a wrong checksum, an
empty split) is one UsageError naming the file and line. A task is parsed and checked in full before anything
is written, then written under a temporary name and renamed into place: the cache never holds half a task.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.artifacts import cache_root
from bench.errors import UsageError
from bench.files import replacing
from bench.glue.tasks import KnownFile, Task, get_task

FORMAT_VERSION = 1  # bump when the stored columns change
GLUE_DIR_ENV = "BENCH_GLUE_DIR"  # a GLUE-layout copy the runner may import from when the cache lacks a task


class DataMissing(UsageError):
    """A split that is not in the cache: the message says how to prepare it."""


@dataclass(frozen=True)
class Split:
    """One split in memory: texts, optional second texts, labels (int ids or float scores), source lines."""

    task: str
    split: str
    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray
    lines: np.ndarray  # 1-based line of each row in the source file, for messages

    def __len__(self) -> int:
        return len(self.text_a)

    def subset(self, rows: np.ndarray) -> Split:
        """The rows `rows`, in that order."""
        return Split(self.task, self.split, [self.text_a[i] for i in rows],
                     [self.text_b[i] for i in rows] if self.text_b is not None else None,
                     self.labels[rows], self.lines[rows])


@dataclass
class Parsed:
    """A parsed, validated split with where it came from."""

    split: Split
    source: str
    sha256: str
    verified: bool  # bytes equal the known-good copy
    notes: list[str] = field(default_factory=list)


def glue_cache() -> Path:
    return cache_root() / "glue"


def task_dir(task: Task) -> Path:
    return glue_cache() / task.name


# ---------------------------------------------------------------------------------------------------- parsing


def parse_tsv(task: Task, split: str, data: bytes, source: str, known: KnownFile | None = None,
              verify_checksum: bool = True) -> Parsed:
    """Validate one GLUE TSV file's bytes and turn them into a Split. `known` (default: the task's known-good
    file) gives the row count to match and the sha256 to check."""
    known = task.files.get(split) if known is None else known
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise UsageError(f"{source}:{line}: not UTF-8 text ({exc.reason})") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline; CoLA's dev.tsv has none
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    start = 0
    if task.header is not None:
        if not lines:
            raise UsageError(f"{source}: empty file (expected the header {_show(task.header)})")
        got = tuple(lines[0].split("\t"))
        if tuple(f.lstrip("\ufeff") for f in got) != tuple(f.lstrip("\ufeff") for f in task.header):
            raise UsageError(f"{source}:1: header {_show(got)} is not GLUE {task.glue_dir}'s {_show(task.header)}"
                             " (columns reordered, or the wrong file?)")
        start = 1
    a, b, labels, where = [], [], [], []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            raise UsageError(f"{source}:{number}: empty line inside the data (truncated or edited file?)")
        fields = line.split("\t")
        if len(fields) != task.n_fields:
            raise UsageError(f"{source}:{number}: {len(fields)} tab-separated fields, GLUE {task.glue_dir} has "
                             f"{task.n_fields} (truncated line or wrong file?)")
        row = len(a)
        if task.index_col is not None and fields[task.index_col] != str(row):
            raise UsageError(f"{source}:{number}: index {fields[task.index_col]!r} where row {row} belongs "
                             "(rows reordered, dropped or duplicated?)")
        labels.append(_label(task, fields[task.label], source, number))
        a.append(_text(fields[task.text_a], source, number))
        if task.text_b is not None:
            b.append(_text(fields[task.text_b], source, number))
        where.append(number)
    if not a:
        raise UsageError(f"{source}: empty split: no data rows (GLUE {task.glue_dir} {split} has "
                         f"{known.rows if known else 'some'})")
    if known is not None and known.rows and len(a) != known.rows:
        raise UsageError(f"{source}:{len(lines)}: ends after {len(a)} data rows, GLUE {task.glue_dir} {split} has "
                         f"{known.rows} (truncated or extended file?)")
    verified = bool(known and known.sha256 and digest == known.sha256)
    if verify_checksum and known is not None and known.sha256 and not verified:
        raise UsageError(f"{source}: sha256 {digest[:16]}… is not the known-good {known.sha256[:16]}… (rows "
                         "reordered or edited, or another copy; --no-verify imports a copy you trust)")
    label_array = np.array(labels, dtype=np.float32 if task.is_regression else np.int64)
    notes = [] if verified else ["checksum unknown" if not (known and known.sha256) else "checksum not verified"]
    return Parsed(Split(task.name, split, a, b if task.text_b is not None else None, label_array,
                        np.array(where, dtype=np.int32)), source, digest, verified, notes)


def _show(fields: Iterable[str]) -> str:
    return "\\t".join(f.lstrip("\ufeff") for f in fields)


def _label(task: Task, value: str, source: str, number: int) -> int | float:
    if task.labels is None:
        try:
            score = float(value)
        except ValueError:
            score = math.nan
        if not 0.0 <= score <= 5.0:
            raise UsageError(f"{source}:{number}: score {value!r} is not a number in [0, 5] (GLUE "
                             f"{task.glue_dir} similarity scores)")
        return score
    if value not in task.labels:
        raise UsageError(f"{source}:{number}: label {value!r} is not one of GLUE {task.glue_dir}'s labels "
                         f"{', '.join(task.labels)}")
    return task.labels.index(value)


def _text(value: str, source: str, number: int) -> str:
    if not value.strip():
        raise UsageError(f"{source}:{number}: empty sentence field")
    return value


# ---------------------------------------------------------------------------------------------------- MRPC


def assemble_mrpc(train_txt: bytes, dev_ids: bytes, source: str) -> tuple[bytes, bytes]:
    """train.tsv and dev.tsv from msr_paraphrase_train.txt and mrpc_dev_ids.tsv, byte for byte as GLUE's
    download_glue_data.py writes them (header with its BOM kept, rows stripped, LF line ends)."""
    try:
        text = train_txt.decode("utf-8").replace("\r\n", "\n")
        ids_text = dev_ids.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{source}: MRPC source files are not UTF-8 ({exc.reason})") from exc
    dev = {tuple(row.strip().split("\t")) for row in ids_text.splitlines() if row.strip()}
    lines = text.split("\n")
    header, rows = lines[0] + "\n", [r for r in lines[1:] if r != ""]
    train_out, dev_out, seen = [header], [header], set()
    for number, row in enumerate(rows, start=2):
        parts = row.strip().split("\t")
        if len(parts) != 5:
            raise UsageError(f"{source}/msr_paraphrase_train.txt:{number}: {len(parts)} fields, expected 5")
        label, id1, id2, s1, s2 = parts
        out = "%s\t%s\t%s\t%s\t%s\n" % (label, id1, id2, s1, s2)  # noqa: UP031 (the GLUE script's own format)
        if (id1, id2) in dev:
            dev_out.append(out)
            seen.add((id1, id2))
        else:
            train_out.append(out)
    if missing := dev - seen:
        raise UsageError(f"{source}/dev_ids.tsv: {len(missing)} dev id pair(s) not in msr_paraphrase_train.txt, "
                         f"e.g. {sorted(missing)[0]}")
    return "".join(train_out).encode(), "".join(dev_out).encode()


# ---------------------------------------------------------------------------------------------------- import


def read_task_dir(task: Task, directory: Path, known: dict[str, KnownFile] | None = None,
                  verify_checksum: bool = True) -> dict[str, Parsed]:
    """Parse every split of `task` present under `directory` (GLUE layout: DIR/<GLUE name>/<split>.tsv, or
    the task directory itself). A split listed as known-good but absent is an error, except a train split
    the machine has no copy of (QNLI here): then only dev is imported, and the manifest says so."""
    known = task.files if known is None else known
    root = directory / task.glue_dir if (directory / task.glue_dir).is_dir() else directory
    if not root.is_dir():
        raise UsageError(f"{directory}: no {task.glue_dir}/ directory (expected GLUE layout: "
                         f"{directory}/{task.glue_dir}/train.tsv, dev.tsv)")
    files = {split: root / f"{split}.tsv" for split in known}
    contents: dict[str, tuple[bytes, str]] = {}
    if task.name == "mrpc" and not all(p.is_file() for p in files.values()):
        sources = root / "msr_paraphrase_train.txt", root / "dev_ids.tsv"
        if all(p.is_file() for p in sources):
            train, dev = assemble_mrpc(sources[0].read_bytes(), sources[1].read_bytes(), str(root))
            contents = {"train": (train, f"{root}/train.tsv (assembled)"), "dev": (dev, f"{root}/dev.tsv (assembled)")}
    for split, path in files.items():
        if split not in contents and path.is_file():
            contents[split] = (path.read_bytes(), str(path))
    if "dev" not in contents:
        raise UsageError(f"{root}: no dev.tsv for GLUE {task.glue_dir}")
    if "train" not in contents and task.name != "qnli":
        raise UsageError(f"{root}: no train.tsv for GLUE {task.glue_dir}")
    return {split: parse_tsv(task, split, data, source, known.get(split), verify_checksum)
            for split, (data, source) in contents.items()}


def import_dir(directory: Path, tasks: list[Task], known: dict[str, dict[str, KnownFile]] | None = None,
               verify_checksum: bool = True) -> dict[str, Path]:
    """Import tasks from a local GLUE-layout copy. All tasks are parsed and checked before the first write."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory (give a GLUE-layout copy: DIR/SST-2/train.tsv, ...)")
    parsed = {t.name: read_task_dir(t, directory, (known or {}).get(t.name), verify_checksum) for t in tasks}
    return {name: store(get_task(name), splits, origin=str(directory.resolve())) for name, splits in parsed.items()}


def store(task: Task, splits: dict[str, Parsed], origin: str) -> Path:
    """Write a task's splits as parquet plus manifest.json beside the cache entry, then swap it into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    final = task_dir(task)
    final.parent.mkdir(parents=True, exist_ok=True)
    with replacing(final) as tmp:
        manifest = {"task": task.name, "glue_dir": task.glue_dir, "format": FORMAT_VERSION, "origin": origin,
                    "splits": {}}
        for name, p in splits.items():
            s = p.split
            columns = {"idx": pa.array(np.arange(len(s), dtype=np.int32)), "sentence1": pa.array(s.text_a),
                       "sentence2": pa.array(s.text_b if s.text_b is not None else [None] * len(s), pa.string()),
                       "label": pa.array(s.labels), "line": pa.array(s.lines)}
            pq.write_table(pa.table(columns), tmp / f"{name}.parquet")
            manifest["splits"][name] = {"rows": len(s), "source": p.source, "sha256": p.sha256,
                                        "verified": p.verified, "notes": p.notes}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return final


# ---------------------------------------------------------------------------------------------------- loading


def prepare_hint(task: Task) -> str:
    return (f"GLUE {task.glue_dir} is not prepared in {glue_cache()}: run `bench data glue --tasks {task.name} "
            f"--from DIR` (a GLUE-layout copy: one folder per task) or `bench data glue --tasks {task.name}` "
            f"(download), or set {GLUE_DIR_ENV}=DIR")


def manifest(task: Task) -> dict | None:
    try:
        return json.loads((task_dir(task) / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None


def available(task: Task, split: str) -> bool:
    m = manifest(task)
    return bool(m and m.get("format") == FORMAT_VERSION and split in m["splits"]
                and (task_dir(task) / f"{split}.parquet").is_file())


def task_manifest(task: Task, env: dict | None = None) -> dict | None:
    """The task's manifest, importing it from $BENCH_GLUE_DIR first when the cache lacks it and that
    directory holds it; None when neither has it."""
    if manifest(task) is None:
        source = (env if env is not None else os.environ).get(GLUE_DIR_ENV)
        if source and (Path(source) / task.glue_dir).is_dir():
            import_dir(Path(source), [task])
    return manifest(task)


def load_split(task: Task | str, split: str) -> Split:
    """A stored split; DataMissing (with the command that prepares it) when absent."""
    task = get_task(task) if isinstance(task, str) else task
    if not available(task, split):
        if manifest(task) is not None and split == "train":
            raise DataMissing(f"GLUE {task.glue_dir} has no train split here (only "
                              f"{', '.join(manifest(task)['splits'])}): no fine-tuned model can be made")
        raise DataMissing(prepare_hint(task))
    import pyarrow.parquet as pq

    table = pq.read_table(task_dir(task) / f"{split}.parquet").to_pydict()
    labels = np.asarray(table["label"], dtype=np.float32 if task.is_regression else np.int64)
    b = table["sentence2"] if task.text_b is not None else None
    return Split(task.name, split, table["sentence1"], b, labels, np.asarray(table["line"], dtype=np.int32))


def holdout_rows(n: int, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(kept rows, held-out rows) of a train split of `n` rows: a fixed seeded cut, both sorted. Model selection
    scores on the held-out rows, never on dev."""
    if not 0 < fraction < 1:
        raise ValueError(f"hold-out fraction {fraction} outside (0, 1)")
    perm = np.random.default_rng(seed).permutation(n)
    k = max(1, round(fraction * n))
    return np.sort(perm[k:]), np.sort(perm[:k])


def calibration_sample(task: Task, n: int = 64, seed: int = 0) -> tuple[list[str], list[str] | None]:
    """Static-INT8 calibration inputs for a task's fine-tuned model: `n` train examples fixed by `seed`. Never
    dev: calibrating on the data that is then scored would flatter INT8."""
    train = load_split(task, "train")
    idx = np.random.default_rng(seed).permutation(len(train))[:n]  # a prefix of one order: nested samples nest
    return [train.text_a[i] for i in idx], [train.text_b[i] for i in idx] if train.text_b is not None else None


def split_hash(task: Task, split: str) -> str:
    """sha256 of the source file a stored split came from: part of every fine-tuning cache key."""
    m = manifest(task)
    if not m or split not in m["splits"]:
        raise DataMissing(prepare_hint(task))
    return m["splits"][split]["sha256"]
