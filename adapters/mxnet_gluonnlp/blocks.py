"""GluonNLP BERT networks as the MXNet adapter runs them. Imports mxnet at module level: the adapter imports
this module inside `load`, after it has set OMP_NUM_THREADS and MXNET_HOME (mxnet reads both at import)."""

from __future__ import annotations

import mxnet as mx
import numpy as np
from gluonnlp.model import BERTClassifier, BERTEncoder, BERTModel
from mxnet.gluon import HybridBlock

from adapters.build.gluonnlp_convert import BertShape, ConversionError, Converted

INPUT_NAMES = ["data0", "data1", "data2"]  # what HybridBlock.export calls three inputs; SymbolBlock.imports too


class Backbone(HybridBlock):
    """A bare BERTModel behind a fixed three-input signature (quantize_net_v2 probes the input count by
    calling with one more argument until TypeError). Returns (sequence, pooled): keeping the pooler an output
    keeps its weights in the exported graph, so every runtime counts the same parameters as torch."""

    def __init__(self, bert: BERTModel, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.bert = bert

    def hybrid_forward(self, F, inputs, token_types, valid_length):
        return self.bert(inputs, token_types, valid_length)


def build(shape: BertShape) -> HybridBlock:
    """GluonNLP's own BERT classes (as get_bert_model assembles them), sized from the HF config; dropout 0."""
    encoder = BERTEncoder(num_layers=shape.layers, units=shape.units, hidden_size=shape.hidden_size,
                          max_length=shape.max_length, num_heads=shape.heads, dropout=0.0,
                          output_attention=False, output_all_encodings=False, activation=shape.activation,
                          layer_norm_eps=shape.layer_norm_eps)
    bert = BERTModel(encoder, shape.vocab_size, token_type_vocab_size=shape.type_vocab_size, units=shape.units,
                     embed_size=shape.units, use_pooler=True, use_decoder=False, use_classifier=False,
                     use_token_type_embed=True)
    if shape.num_labels is not None:
        return BERTClassifier(bert, num_classes=shape.num_labels, dropout=0.0)
    return Backbone(bert)


def assign(net: HybridBlock, converted: Converted, ctx: mx.Context) -> int:
    """Load every parameter of `net` from `converted`, each exactly once; the two name sets must be equal."""
    params = net._collect_params_with_prefix()  # structural names, as save_parameters/load_parameters use
    missing = sorted(set(params) - set(converted.arrays))
    extra = sorted(set(converted.arrays) - set(params))
    if missing or extra:  # the converter's spec and this GluonNLP version disagree: never load half
        raise ConversionError(f"GluonNLP parameters without a converted weight: {missing[:5]}; converted weights "
                              f"without a GluonNLP parameter: {extra[:5]} (gluonnlp version not 0.10?)")
    for name, param in params.items():
        array = converted.arrays[name]
        declared = param.shape or ()
        if len(declared) != array.ndim or any(d not in (0, a) for d, a in zip(declared, array.shape, strict=True)):
            raise ConversionError(f"tensor {converted.source[name]!r} has shape {array.shape}; GluonNLP "
                                  f"{name!r} is declared {declared}")
        param._load_init(mx.nd.array(array, ctx=ctx, dtype=np.float32), ctx)  # what load_parameters calls
    uninitialised = [n for n, p in params.items() if p._data is None]
    if uninitialised:
        raise ConversionError(f"GluonNLP parameters left uninitialised: {uninitialised[:5]}")
    return len(params)
