"""A tiny HF-layout BERT made with numpy (no torch), and HF BertModel's forward written in numpy.

The MXNet environment has no torch, so its tests check GluonNLP's network against this reference; the torch
environment checks the reference itself against transformers' BertModel on the same weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from tests.conftest import TINY_BERT, write_vocab

TINY = {**TINY_BERT, "hidden_act": "gelu", "layer_norm_eps": 1e-12}
_LAYER_SHAPES = {
    "attention.self.query": ("units", "units"), "attention.self.key": ("units", "units"),
    "attention.self.value": ("units", "units"), "attention.output.dense": ("units", "units"),
    "intermediate.dense": ("ffn", "units"), "output.dense": ("units", "ffn"),
}


def tiny_bert_tensors(config: dict, seed: int = 0, num_labels: int | None = None) -> dict[str, np.ndarray]:
    """Random weights under HF BertModel's names (BertForSequenceClassification's if `num_labels`)."""
    rng = np.random.default_rng(seed)
    h, f = config["hidden_size"], config["intermediate_size"]
    dims = {"units": h, "ffn": f}

    def normal(*shape, scale=0.2):
        return rng.normal(0, scale, shape).astype(np.float32)

    t = {"embeddings.word_embeddings.weight": normal(config["vocab_size"], h, scale=1.0),
         "embeddings.position_embeddings.weight": normal(config["max_position_embeddings"], h, scale=0.5),
         "embeddings.token_type_embeddings.weight": normal(config["type_vocab_size"], h, scale=0.5),
         "embeddings.LayerNorm.weight": 1 + normal(h, scale=0.1), "embeddings.LayerNorm.bias": normal(h, scale=0.1),
         "embeddings.position_ids": np.arange(config["max_position_embeddings"], dtype=np.int64)[None]}
    for i in range(config["num_hidden_layers"]):
        for name, (out, inp) in _LAYER_SHAPES.items():
            t[f"encoder.layer.{i}.{name}.weight"] = normal(dims[out], dims[inp])
            t[f"encoder.layer.{i}.{name}.bias"] = normal(dims[out], scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[f"encoder.layer.{i}.{ln}.weight"] = 1 + normal(h, scale=0.1)
            t[f"encoder.layer.{i}.{ln}.bias"] = normal(h, scale=0.1)
    t["pooler.dense.weight"], t["pooler.dense.bias"] = normal(h, h), normal(h, scale=0.1)
    if num_labels is not None:
        t = {f"bert.{k}": v for k, v in t.items()}
        t["classifier.weight"], t["classifier.bias"] = normal(num_labels, h), normal(num_labels, scale=0.1)
    return t


def make_tiny_bert_dir(directory: Path, config: dict | None = None, seed: int = 0,
                       num_labels: int | None = None) -> Path:
    """A from_pretrained directory (config.json, model.safetensors, vocab.txt) written with numpy only."""
    from safetensors.numpy import save_file

    config = dict(config or TINY)
    write_vocab(directory)
    config["vocab_size"] = max(config["vocab_size"], len((directory / "vocab.txt").read_text().split()))
    if num_labels is not None:
        config |= {"architectures": ["BertForSequenceClassification"],
                   "id2label": {str(i): f"LABEL_{i}" for i in range(num_labels)}}
    save_file(tiny_bert_tensors(config, seed, num_labels), str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def _layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf)


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def bert_forward(tensors: dict[str, np.ndarray], config: dict, input_ids, attention_mask, token_type_ids,
                 num_labels: int | None = None) -> np.ndarray:
    """HF BertModel's last_hidden_state (or BertForSequenceClassification's logits), in float64 numpy."""
    p = "bert." if num_labels is not None else ""
    w = {k.removeprefix(p): v.astype(np.float64) for k, v in tensors.items() if v.dtype.kind == "f"}
    eps, heads = config["layer_norm_eps"], config["num_attention_heads"]
    batch, seq = input_ids.shape
    x = (w["embeddings.word_embeddings.weight"][input_ids]
         + w["embeddings.token_type_embeddings.weight"][token_type_ids]
         + w["embeddings.position_embeddings.weight"][np.arange(seq)][None])
    x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = np.where(attention_mask[:, None, None, :].astype(bool), 0.0, -1e30)
    hd = x.shape[-1] // heads

    def dense(v, name):
        return v @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    def split(v):
        return v.reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)

    for i in range(config["num_hidden_layers"]):
        pre = f"encoder.layer.{i}"
        q, k, v = (split(dense(x, f"{pre}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = (scores / scores.sum(-1, keepdims=True)) @ v
        ctx = ctx.transpose(0, 2, 1, 3).reshape(batch, seq, -1)
        x = _layer_norm(dense(ctx, f"{pre}.attention.output.dense") + x, w[f"{pre}.attention.output.LayerNorm.weight"],
                        w[f"{pre}.attention.output.LayerNorm.bias"], eps)
        ffn = dense(_gelu(dense(x, f"{pre}.intermediate.dense")), f"{pre}.output.dense")
        x = _layer_norm(ffn + x, w[f"{pre}.output.LayerNorm.weight"], w[f"{pre}.output.LayerNorm.bias"], eps)
    if num_labels is None:
        return x
    pooled = np.tanh(dense(x[:, 0], "pooler.dense"))
    return pooled @ tensors["classifier.weight"].astype(np.float64).T + tensors["classifier.bias"]
