"""Tiny GLUE-layout copies the GLUE tests make for themselves (never ../shared/glue), and their known-good table."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from bench.glue.tasks import KnownFile

WORDS = ["the", "film", "is", "good", "bad", "bridge", "rain", "fell", "over", "harbour", "boat", "report", "it",
         "was", "not", "and", "of", "to", "a"]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choices(WORDS, k=n)).capitalize() + " ."


def write_glue(root: Path, rows: dict[str, int] | None = None, seed: int = 0) -> Path:
    """SST-2, CoLA, RTE, STS-B (train + dev) and MRPC (its raw source files) with the real GLUE formats.
    Labels are learnable: RTE/SST-2 positive iff the first sentence contains "good"."""
    rows = {"train": 48, "dev": 16} | (rows or {})
    rng = random.Random(seed)
    files: dict[str, str] = {}
    for split, n in rows.items():
        sst = ["sentence\tlabel"]
        cola, rte, sts = [], ["index\tsentence1\tsentence2\tlabel"], [
            "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"]
        for i in range(n):
            s1, s2 = _sentence(rng, 5), _sentence(rng, 4)
            good = "good" in s1
            sst.append(f"{s1.lower()} \t{int(good)}")
            cola.append(f"gj04\t{int(good)}\t\t{s1}")
            rte.append(f"{i}\t{s1}\t{s2}\t{'entailment' if good else 'not_entailment'}")
            sts.append(f"{i}\tmain-captions\tMSRvid\t2012test\t{i:04d}\tnone\tnone\t{s1}\t{s2}\t"
                       f"{rng.uniform(0, 5):.3f}")
        files[f"SST-2/{split}.tsv"] = "\n".join(sst) + "\n"
        files[f"CoLA/{split}.tsv"] = "\n".join(cola) + ("\n" if split == "train" else "")  # as GLUE: dev has none
        files[f"RTE/{split}.tsv"] = "\n".join(rte) + "\n"
        files[f"STS-B/{split}.tsv"] = "\n".join(sts) + "\n"
    header = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String"
    msr = [header] + [f"{int(rng.random() < 0.6)}\t{1000 + i}\t{2000 + i}\t{_sentence(rng, 6)}\t{_sentence(rng, 5)}"
                      for i in range(rows["train"] + rows["dev"])]
    files["MRPC/msr_paraphrase_train.txt"] = "\r\n".join(msr) + "\r\n"  # Microsoft's originals are CRLF
    files["MRPC/dev_ids.tsv"] = "".join(f"{1000 + i}\t{2000 + i}\n" for i in range(0, 2 * rows["dev"], 2))
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text.encode("utf-8"))
    return root


def known_table(root: Path) -> dict[str, dict[str, KnownFile]]:
    """The fixture's own known-good table (row counts and sha256), as SOURCES.md is for the real copy."""
    from bench.glue import data
    from bench.glue.tasks import get_task

    table: dict[str, dict[str, KnownFile]] = {}
    for name in ("sst2", "cola", "rte", "stsb", "mrpc"):
        task = get_task(name)
        table[name] = {}
        for split in ("train", "dev"):
            path = root / task.glue_dir / f"{split}.tsv"
            if name == "mrpc":
                train, dev = data.assemble_mrpc((root / "MRPC/msr_paraphrase_train.txt").read_bytes(),
                                                (root / "MRPC/dev_ids.tsv").read_bytes(), str(root))
                blob = train if split == "train" else dev
            else:
                blob = path.read_bytes()
            rows = blob.decode().rstrip("\n").count("\n") + (0 if task.header is not None else 1)
            table[name][split] = KnownFile(rows, hashlib.sha256(blob).hexdigest())
    return table
