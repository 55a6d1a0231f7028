"""The HF → GluonNLP weight converter (numpy only: runs in every environment) and, where torch is installed,
its parameter count against torch's for every BERT-type catalogue backbone."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.build.gluonnlp_convert import (
    BertShape,
    ConversionError,
    convert,
    parameter_count,
    read_checkpoint,
    spec,
)
from bench.catalogue import get_backbone as backbone
from bench.catalogue import list_backbone_names
from bench.errors import CellError
from tests.bert_numpy import TINY, make_tiny_bert_dir, tiny_bert_tensors
from tests.conftest import needs_torch

BERT_BACKBONES = [n for n in list_backbone_names() if backbone(n).model_type == "bert"]
pytestmark = pytest.mark.mxnet  # selected by nox -s tests_mxnet too; needs no mxnet itself


def tiny(num_labels=None):
    shape = BertShape.from_config(TINY, num_labels=num_labels)
    return shape, tiny_bert_tensors(TINY, num_labels=num_labels)


def test_every_gluonnlp_parameter_gets_exactly_one_checkpoint_tensor():
    shape, tensors = tiny()
    converted = convert(shape, tensors)
    entries = spec(shape)
    assert set(converted.arrays) == {e.gluon for e in entries}
    assert len(set(converted.source.values())) == len(converted.source) == len(entries)  # a bijection
    for name, array in converted.arrays.items():
        np.testing.assert_array_equal(array, tensors[converted.source[name]])
        assert array.dtype == np.float32
    assert converted.ignored == ("embeddings.position_ids",)
    # torch counts every checkpoint tensor that is a parameter (buffers are not)
    assert parameter_count(shape) == sum(v.size for k, v in tensors.items() if k != "embeddings.position_ids")


def test_a_task_checkpoint_converts_with_its_head_and_the_bert_prefix():
    shape, tensors = tiny(num_labels=3)
    converted = convert(shape, tensors)
    assert converted.source["classifier.0.weight"] == "classifier.weight"
    assert converted.source["bert.pooler.weight"] == "bert.pooler.dense.weight"
    assert converted.arrays["classifier.0.weight"].shape == (3, TINY["hidden_size"])
    # the same checkpoint as a bare backbone (torch's AutoModel): the head is dropped, and says so
    bare = convert(BertShape.from_config(TINY), tensors)
    assert "classifier.weight" in bare.ignored and "classifier.0.weight" not in bare.arrays


def test_missing_weights_for_a_layer_name_the_layer_and_tensor():
    shape, tensors = tiny()
    del tensors["encoder.layer.1.intermediate.dense.weight"]
    with pytest.raises(ConversionError, match=r"missing weights for layer\(s\) \[1\]: "
                                              r"'encoder.layer.1.intermediate.dense.weight'"):
        convert(shape, tensors)
    shape3 = BertShape.from_config({**TINY, "num_hidden_layers": 3})  # config says 3 layers, checkpoint has 2
    with pytest.raises(ConversionError, match=r"layer\(s\) \[2\]"):
        convert(shape3, tiny_bert_tensors(TINY))


def test_missing_classifier_head_is_an_error_when_the_artifact_has_a_task():
    shape, tensors = tiny(num_labels=2)
    del tensors["classifier.bias"]
    with pytest.raises(ConversionError, match="missing weights: 'classifier.bias'.*task head"):
        convert(shape, tensors)


@pytest.mark.parametrize("extra", ["encoder.layer.0.attention.self.query.extra_weight", "decoder.weight",
                                   "encoder.layer.2.output.dense.weight"])
def test_an_unknown_tensor_is_named_never_dropped(extra):
    shape, tensors = tiny()
    tensors[extra] = np.zeros((2, 2), np.float32)
    with pytest.raises(ConversionError, match=f"'{extra}' have no GluonNLP BERT counterpart"):
        convert(shape, tensors)


def test_a_shape_mismatch_names_the_tensor_and_both_shapes():
    shape, tensors = tiny()
    tensors["encoder.layer.0.output.dense.weight"] = np.zeros((32, 65), np.float32)
    with pytest.raises(ConversionError, match=r"'encoder.layer.0.output.dense.weight' has shape \(32, 65\), but the "
                                              r"config needs \(32, 64\) for GluonNLP "
                                              r"'bert.encoder.transformer_cells.0.ffn.ffn_2.weight'"):
        convert(shape, tensors)


def test_a_head_of_the_wrong_size_is_a_shape_mismatch():
    _, tensors = tiny(num_labels=3)
    with pytest.raises(ConversionError, match=r"'classifier.weight' has shape \(3, 32\).*\(2, 32\)"):
        convert(BertShape.from_config(TINY, num_labels=2), tensors)


def test_integer_weights_are_refused():
    shape, tensors = tiny()
    tensors["pooler.dense.bias"] = np.zeros(32, np.int32)
    with pytest.raises(ConversionError, match="'pooler.dense.bias' has dtype int32"):
        convert(shape, tensors)


@pytest.mark.parametrize(("change", "message"), [
    ({"model_type": "distilbert"}, "supports model_type 'bert' only"),
    ({"hidden_act": "swish"}, "hidden_act='swish': unknown to the converter"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key'"),
    ({"is_decoder": True}, "is_decoder=True"),
    ({"num_attention_heads": 5}, "not divisible by num_attention_heads=5"),
    ({"embedding_size": 16}, "embedding_size=16 != hidden_size"),
    ({"intermediate_size": None}, "intermediate_size"),
])
def test_a_config_the_converter_does_not_know_is_refused_by_name(change, message):
    config = {k: v for k, v in {**TINY, **change}.items() if v is not None}
    with pytest.raises(ConversionError, match=message):
        BertShape.from_config(config)
    assert issubclass(ConversionError, CellError)  # the cell fails with this one line, the run goes on


def test_activations_and_defaults_follow_hf():
    assert BertShape.from_config({**TINY, "hidden_act": "gelu_new"}).activation == "approx_gelu"
    shape = BertShape.from_config({k: v for k, v in TINY.items() if k not in ("layer_norm_eps", "hidden_act")})
    assert (shape.layer_norm_eps, shape.activation) == (1e-12, "gelu")


def test_read_checkpoint_reads_safetensors_without_torch(tmp_path):
    path = make_tiny_bert_dir(tmp_path / "m")
    tensors = read_checkpoint(path)
    assert "encoder.layer.1.output.LayerNorm.bias" in tensors
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConversionError, match="no \\*.safetensors"):
        read_checkpoint(tmp_path / "empty")
    (path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ConversionError, match="unreadable as numpy safetensors"):
        read_checkpoint(path)


@needs_torch
@pytest.mark.parametrize("name", BERT_BACKBONES)
def test_converted_parameter_count_equals_torch_for_every_bert_backbone(name):
    """The spec is exactly the parameters the MXNet adapter holds (tests/test_mxnet_adapter.py checks that
    against GluonNLP); here it must equal what torch's BertModel holds for the same config."""
    import torch
    from transformers import AutoConfig, AutoModel

    config = dict(backbone(name).config)
    hf = AutoConfig.for_model(config.pop("model_type"), **config)
    with torch.device("meta"):
        model = AutoModel.from_config(hf)
    torch_total = sum(p.numel() for p in model.parameters())
    assert parameter_count(BertShape.from_config(backbone(name).config)) == torch_total


@needs_torch
def test_the_numpy_reference_is_hf_bert(tmp_path):
    """tests/bert_numpy.py (what the MXNet env compares against) agrees with transformers on the same weights,
    for a bare backbone and a classification head."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    from tests.bert_numpy import bert_forward

    rng = np.random.default_rng(1)
    ids = rng.integers(0, 29, (3, 12))
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    types = np.zeros_like(ids)
    types[0, 6:] = 1
    for labels, cls in ((None, AutoModel), (3, AutoModelForSequenceClassification)):
        path = make_tiny_bert_dir(tmp_path / f"m{labels}", num_labels=labels)
        model = cls.from_pretrained(path, dtype=torch.float32).eval()
        with torch.inference_mode():
            got = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                        token_type_ids=torch.from_numpy(types))[0].numpy()
        ref = bert_forward(read_checkpoint(path), TINY, ids, mask, types, num_labels=labels)
        keep = mask.astype(bool) if labels is None else slice(None)
        assert np.abs(got[keep] - ref[keep]).max() < 1e-5
