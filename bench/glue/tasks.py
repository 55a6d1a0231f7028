"""GLUE tasks: file layout, columns, label sets, official metric, and the known-good copy of every file.

The known-good table (row counts, sha256) is that of a verified copy of the public GLUE files; the
download table holds the official GLUE locations with the checksums the HF `glue` dataset records for them.
Framework-free: used by the data importer, the fine-tuner and the glue suite alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import UsageError

SPLITS = ("train", "dev")


@dataclass(frozen=True)
class KnownFile:
    """A GLUE file as the verified copy has it: data rows (header not counted) and sha256 of the bytes."""

    rows: int
    sha256: str


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Task:
    """One GLUE task. Columns are 0-based field indexes of the task's TSV; `labels` is None for regression."""

    name: str  # harness name: sst2, mrpc, cola, stsb, rte, qnli
    glue_dir: str  # directory name in the GLUE layout
    text_a: int
    text_b: int | None
    label: int
    n_fields: int
    header: tuple[str, ...] | None  # expected header fields; None: the file has no header (CoLA)
    labels: tuple[str, ...] | None  # label strings in label-id order; None: regression (STS-B score)
    metrics: tuple[str, ...]  # official metric(s), first = headline
    files: dict[str, KnownFile]  # split -> known-good file
    index_col: int | None = None  # a 0..n-1 running index column: catches reordered rows at the line
    download: tuple[Download, ...] = ()

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        return 1 if self.labels is None else len(self.labels)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in SPLITS if s in self.files)

    @property
    def headline(self) -> str:
        return self.metrics[0]


_FB = "https://dl.fbaipublicfiles.com/glue/data/"

TASKS: dict[str, Task] = {t.name: t for t in (
    Task("sst2", "SST-2", 0, None, 1, 2, ("sentence", "label"), ("0", "1"), ("accuracy",),
         {"train": KnownFile(67349, "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1"),
          "dev": KnownFile(872, "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0")},
         download=(Download(_FB + "SST-2.zip", "d67e16fb55739c1b32cdce9877596db1c127dc322d93c082281f64057c16deaa",
                            7439277),)),
    Task("mrpc", "MRPC", 3, 4, 0, 5, ("\ufeffQuality", "#1 ID", "#2 ID", "#1 String", "#2 String"), ("0", "1"),
         ("f1", "accuracy"),
         {"train": KnownFile(3668, "122becc469405bc16f9defcb8715d2a4b7ce600e9d9381e6dc42bfdd1494c51d"),
          "dev": KnownFile(408, "81c8a1a9e1dfe461dd2c1a4f98f43fe18bece44d2bf9e3d0b245b88e5aa5eaf7")},
         download=(
             Download("https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt",
                      "60a9b09084528f0673eedee2b69cb941920f0b8cd0eeccefc464a98768457f89", 1047044),
             Download("https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_test.txt",
                      "a04e271090879aaba6423d65b94950c089298587d9c084bf9cd7439bd785f784", 441275),
             Download(_FB + "mrpc_dev_ids.tsv", "971d7767d81b997fd9060ade0ec23c4fc31cbb226a55d1bd4a1bac474eb81dc7",
                      6222))),
    Task("cola", "CoLA", 3, None, 1, 4, None, ("0", "1"), ("mcc",),
         {"train": KnownFile(8551, "cb368ebeb9f27d7ad03720d27ddc95687a311bdb100781a2fe59a5f5b1bc0624"),
          "dev": KnownFile(1043, "8c013e21dc39957cac37378d87bebe225b694a0d5fe13eded66c2856628833fd")},
         download=(Download(_FB + "CoLA.zip", "f212fcd832b8f7b435fb991f101abf89f96b933ab400603bf198960dfc32cbff",
                            376971),)),
    Task("stsb", "STS-B", 7, 8, 9, 10,
         ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
          "score"), None, ("pearson", "spearman"),
         {"train": KnownFile(5749, "41c4d978b6162abdcada7e49a982211954cca5459c228db478af333124b257a2"),
          "dev": KnownFile(1500, "fe7dc0632a5033562f3cadff991f6e8d9b9b6311861660e78c3c82eb7db67f59")},
         index_col=0,
         download=(Download(_FB + "STS-B.zip", "e60a6393de5a8b5b9bac5020a1554b54e3691f9d600b775bd131e613ac179c85",
                            802872),)),
    Task("rte", "RTE", 1, 2, 3, 4, ("index", "sentence1", "sentence2", "label"), ("entailment", "not_entailment"),
         ("accuracy",),
         {"train": KnownFile(2490, "41e3a9b063433392343fad9e962cf2f58b681c78d8f71592f4186f0837246c5c"),
          "dev": KnownFile(277, "80230dfa1347282e7b532b06a1004a76a710087541189bf874223ddf0e3819fb")},
         index_col=0,
         download=(Download(_FB + "RTE.zip", "6bf86de103ecd335f3441bd43574d23fef87ecc695977a63b82d5efb206556ee",
                            697150),)),
    # QNLI: only the dev split is verified; its two public copies disagree by 9 bytes, this is the one held here.
    Task("qnli", "QNLI", 1, 2, 3, 4, ("index", "question", "sentence", "label"), ("entailment", "not_entailment"),
         ("accuracy",),
         {"train": KnownFile(104743, ""),
          "dev": KnownFile(5463, "763e95932dd3578251de71582e06829015f9c3815a518c751dc537219b159de4")},
         index_col=0,
         download=(Download(_FB + "QNLIv2.zip", "e634e78627a29adaecd4f955359b22bf5e70f2cbd93b493f2d624138a0c0e5f5",
                            10627589),)),
)}

ALIASES = {"sst-2": "sst2", "sst": "sst2", "sts-b": "stsb", "sts": "stsb"}


def get_task(name: str) -> Task:
    """A task by harness name or GLUE directory name (case-insensitive)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in TASKS:
        raise UsageError(f"unknown GLUE task {name!r}; choose from: {', '.join(TASKS)}")
    return TASKS[key]


def parse_tasks(text: str | list[str] | tuple[str, ...]) -> list[Task]:
    """A comma list (or list) of task names, each checked; duplicates dropped, order kept."""
    names = text.split(",") if isinstance(text, str) else list(text)
    names = [n for n in (n.strip() for n in names) if n]
    if not names:
        raise UsageError("no GLUE task given; choose from: " + ", ".join(TASKS))
    return list({t.name: t for t in map(get_task, names)}.values())
