"""HF BERT checkpoint (canonical safetensors) → GluonNLP BERT parameters, numpy only.

Kept free of mxnet so the mapping can be checked in every environment (the torch env checks its parameter
count against torch's). Every GluonNLP parameter gets exactly one checkpoint tensor: a missing tensor, a
tensor with no counterpart, a shape mismatch or a config the converter does not know is an error naming the
tensor, never a half-loaded model. Names on the GluonNLP side are the structural ones
(`Block._collect_params_with_prefix`), which do not depend on how many blocks a process has created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import CellError

# HF hidden_act → GluonNLP PositionwiseFFN activation ('gelu' is erf GELU in both; gelu_new is the tanh form)
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "approx_gelu", "gelu_pytorch_tanh": "approx_gelu", "relu": "relu"}
# Non-parameter buffers HF writes into checkpoints (torch's parameters() does not count them either).
BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
# Pre-training heads torch's AutoModel also drops; recorded as ignored, never converted.
PRETRAINING_HEADS = ("cls.",)
# Config switches that change the computation; anything but these values is a model GluonNLP's BERT is not.
REQUIRED_VALUES = {"position_embedding_type": "absolute", "is_decoder": False, "add_cross_attention": False,
                   "chunk_size_feed_forward": 0}
MAX_LISTED = 5


class ConversionError(CellError):
    """The checkpoint or config cannot become a GluonNLP BERT exactly; the message names the tensor/key."""


@dataclass(frozen=True)
class BertShape:
    """What GluonNLP's BERTEncoder/BERTModel need, read from an HF BERT config."""

    vocab_size: int
    units: int
    layers: int
    heads: int
    hidden_size: int  # FFN inner size (GluonNLP's name; HF intermediate_size)
    max_length: int
    type_vocab_size: int
    layer_norm_eps: float
    activation: str
    num_labels: int | None = None  # sequence-classification head size; None: bare backbone

    @classmethod
    def from_config(cls, config: Mapping, num_labels: int | None = None) -> BertShape:
        model_type = config.get("model_type")
        if model_type != "bert":
            raise ConversionError(f"mxnet adapter supports model_type 'bert' only (GluonNLP BERTModel); "
                                  f"config has model_type {model_type!r}")
        for key, expected in REQUIRED_VALUES.items():
            if config.get(key, expected) not in (expected, None):
                raise ConversionError(f"config {key}={config[key]!r}: GluonNLP BERT supports only {expected!r}")
        if config.get("embedding_size", config.get("hidden_size")) != config.get("hidden_size"):
            raise ConversionError(f"config embedding_size={config['embedding_size']} != hidden_size: factorised "
                                  "embeddings are not GluonNLP BERT")
        act = config.get("hidden_act", "gelu")
        if act not in ACTIVATIONS:
            raise ConversionError(f"config hidden_act={act!r}: unknown to the converter "
                                  f"(knows {', '.join(ACTIVATIONS)})")
        try:
            shape = cls(vocab_size=int(config["vocab_size"]), units=int(config["hidden_size"]),
                        layers=int(config["num_hidden_layers"]), heads=int(config["num_attention_heads"]),
                        hidden_size=int(config["intermediate_size"]),
                        max_length=int(config.get("max_position_embeddings", 512)),
                        type_vocab_size=int(config.get("type_vocab_size", 2)),
                        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)), activation=ACTIVATIONS[act],
                        num_labels=num_labels)
        except KeyError as exc:
            raise ConversionError(f"config lacks {exc.args[0]!r}, which a BERT config must have") from exc
        if shape.units % shape.heads:
            raise ConversionError(f"config hidden_size={shape.units} is not divisible by "
                                  f"num_attention_heads={shape.heads}")
        if num_labels is not None and num_labels < 1:
            raise ConversionError(f"task head with num_labels={num_labels}")
        return shape


@dataclass(frozen=True)
class Entry:
    gluon: str  # structural GluonNLP name
    hf: str  # checkpoint name, without the task model's "bert." prefix for backbone tensors
    shape: tuple[int, ...]


# Per encoder layer: HF suffix → (GluonNLP suffix, shape as a function of the config)
_LAYER = (
    ("attention.self.query.weight", "attention_cell.proj_query.weight", lambda s: (s.units, s.units)),
    ("attention.self.query.bias", "attention_cell.proj_query.bias", lambda s: (s.units,)),
    ("attention.self.key.weight", "attention_cell.proj_key.weight", lambda s: (s.units, s.units)),
    ("attention.self.key.bias", "attention_cell.proj_key.bias", lambda s: (s.units,)),
    ("attention.self.value.weight", "attention_cell.proj_value.weight", lambda s: (s.units, s.units)),
    ("attention.self.value.bias", "attention_cell.proj_value.bias", lambda s: (s.units,)),
    ("attention.output.dense.weight", "proj.weight", lambda s: (s.units, s.units)),
    ("attention.output.dense.bias", "proj.bias", lambda s: (s.units,)),
    ("attention.output.LayerNorm.weight", "layer_norm.gamma", lambda s: (s.units,)),
    ("attention.output.LayerNorm.bias", "layer_norm.beta", lambda s: (s.units,)),
    ("intermediate.dense.weight", "ffn.ffn_1.weight", lambda s: (s.hidden_size, s.units)),
    ("intermediate.dense.bias", "ffn.ffn_1.bias", lambda s: (s.hidden_size,)),
    ("output.dense.weight", "ffn.ffn_2.weight", lambda s: (s.units, s.hidden_size)),
    ("output.dense.bias", "ffn.ffn_2.bias", lambda s: (s.units,)),
    ("output.LayerNorm.weight", "ffn.layer_norm.gamma", lambda s: (s.units,)),
    ("output.LayerNorm.bias", "ffn.layer_norm.beta", lambda s: (s.units,)),
)


def spec(shape: BertShape) -> list[Entry]:
    """Every GluonNLP parameter of the network the adapter builds, with its checkpoint tensor and shape.
    Torch's Linear and mxnet's Dense both store weights (out, in), so nothing is transposed."""
    s = shape
    entries = [
        Entry("bert.word_embed.0.weight", "embeddings.word_embeddings.weight", (s.vocab_size, s.units)),
        Entry("bert.token_type_embed.0.weight", "embeddings.token_type_embeddings.weight",
              (s.type_vocab_size, s.units)),
        Entry("bert.encoder.position_weight", "embeddings.position_embeddings.weight", (s.max_length, s.units)),
        Entry("bert.encoder.layer_norm.gamma", "embeddings.LayerNorm.weight", (s.units,)),
        Entry("bert.encoder.layer_norm.beta", "embeddings.LayerNorm.bias", (s.units,)),
    ]
    for i in range(s.layers):
        entries += [Entry(f"bert.encoder.transformer_cells.{i}.{g}", f"encoder.layer.{i}.{h}", fn(s))
                    for h, g, fn in _LAYER]
    entries += [Entry("bert.pooler.weight", "pooler.dense.weight", (s.units, s.units)),
                Entry("bert.pooler.bias", "pooler.dense.bias", (s.units,))]
    if s.num_labels is not None:
        entries += [Entry("classifier.0.weight", "classifier.weight", (s.num_labels, s.units)),
                    Entry("classifier.0.bias", "classifier.bias", (s.num_labels,))]
    return entries


def parameter_count(shape: BertShape) -> int:
    return sum(int(np.prod(e.shape)) for e in spec(shape))


@dataclass(frozen=True)
class Converted:
    arrays: dict[str, np.ndarray]  # GluonNLP structural name → float32 array
    source: dict[str, str]  # GluonNLP name → checkpoint tensor it came from
    ignored: tuple[str, ...]  # buffers and heads the cell does not run (torch ignores them too)


def _listing(names: list[str]) -> str:
    more = f" (+{len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return ", ".join(repr(n) for n in names[:MAX_LISTED]) + more


def convert(shape: BertShape, tensors: Mapping[str, np.ndarray], where: str = "checkpoint") -> Converted:
    """Map checkpoint tensors onto the GluonNLP parameters of `shape`; every parameter exactly once."""
    head = shape.num_labels is not None
    # Task checkpoints (BertForSequenceClassification) keep the backbone under "bert."; torch strips it.
    prefix = "bert." if any(k.startswith("bert.") for k in tensors) else ""
    entries = spec(shape)
    by_hf = {(e.hf if e.gluon.startswith("classifier.") else prefix + e.hf): e for e in entries}
    if len(by_hf) != len(entries) or len({e.gluon for e in entries}) != len(entries):
        raise AssertionError("converter spec maps two parameters to one name")  # a bug here, not bad input
    unknown, ignored = [], []
    for name in tensors:
        if name in by_hf:
            continue
        bare = name.removeprefix(prefix)
        if bare in BUFFERS or bare.startswith(PRETRAINING_HEADS) or (not head and name.startswith("classifier.")):
            ignored.append(name)
        else:
            unknown.append(name)
    if unknown:
        raise ConversionError(f"{where}: tensor(s) {_listing(sorted(unknown))} have no GluonNLP BERT counterpart "
                              f"for this config ({shape.layers} layers{', task head' if head else ''}); "
                              "refusing to drop weights silently")
    missing = [hf for hf in by_hf if hf not in tensors]
    if missing:
        layers = sorted({int(m.split(".")[m.split(".").index("layer") + 1]) for m in missing if ".layer." in m})
        what = f"missing weights for layer(s) {layers}: " if layers else "missing weights: "
        raise ConversionError(f"{where}: {what}{_listing(missing)} (config: {shape.layers} layers"
                              f"{', task head' if head else ''})")
    arrays, source = {}, {}
    for hf, entry in by_hf.items():
        array = tensors[hf]
        if tuple(array.shape) != entry.shape:
            raise ConversionError(f"{where}: tensor {hf!r} has shape {tuple(array.shape)}, but the config needs "
                                  f"{entry.shape} for GluonNLP {entry.gluon!r}")
        if array.dtype.kind != "f":
            raise ConversionError(f"{where}: tensor {hf!r} has dtype {array.dtype}, not floating point")
        arrays[entry.gluon] = np.ascontiguousarray(array, dtype=np.float32)
        source[entry.gluon] = hf
    return Converted(arrays, source, tuple(sorted(ignored)))


def read_checkpoint(directory: Path) -> dict[str, np.ndarray]:
    """All tensors of a from_pretrained directory's safetensors files (numpy: no torch needed)."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise ConversionError(f"{directory}: no *.safetensors weights")
    tensors: dict[str, np.ndarray] = {}
    for f in files:
        try:
            part = load_file(f)
        except (SafetensorError, OSError, ValueError, TypeError) as exc:  # bf16 has no numpy dtype: TypeError
            raise ConversionError(f"{f}: unreadable as numpy safetensors ({type(exc).__name__}: {exc})") from exc
        clash = set(part) & set(tensors)
        if clash:
            raise ConversionError(f"{f}: tensor(s) {_listing(sorted(clash))} also in another shard")
        tensors |= part
    return tensors
