"""Analytic FLOPs vs torch's counter, and catalogue parameter counts vs published figures."""

import pytest

from bench.catalogue import get_backbone, list_backbone_names
from bench.flops import forward_flops
from bench.weights import safetensors_shapes
from tests.conftest import make_tiny_model, needs_torch

pytestmark = needs_torch

TINY = {
    "bert": {"model_type": "bert", "vocab_size": 40, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 64},
    "mobilebert": {"model_type": "mobilebert", "vocab_size": 40, "hidden_size": 64, "embedding_size": 16,
                   "true_hidden_size": 16, "intra_bottleneck_size": 16, "num_hidden_layers": 2,
                   "num_attention_heads": 2, "intermediate_size": 32, "num_feedforward_networks": 2},
    "distilbert": {"model_type": "distilbert", "vocab_size": 40, "dim": 32, "n_layers": 2, "n_heads": 4,
                   "hidden_dim": 64},
    "albert": {"model_type": "albert", "vocab_size": 40, "embedding_size": 16, "hidden_size": 32,
               "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 64},
    "electra": {"model_type": "electra", "vocab_size": 40, "embedding_size": 16, "hidden_size": 32,
                "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64},
}


@pytest.mark.parametrize("family", list(TINY))
def test_analytic_flops_match_torch_flop_counter(tmp_path, family):
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModel

    path = make_tiny_model(tmp_path, TINY[family])
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()  # SDPA is not counted
    ids = torch.ones(3, 20, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids)
    import json
    config = json.loads((path / "config.json").read_text())
    ours = forward_flops(safetensors_shapes(path / "model.safetensors"), config, 3, 20)
    assert ours == pytest.approx(counter.get_total_flops(), rel=1e-3)


@pytest.mark.parametrize("name", list_backbone_names())
def test_catalogue_configs_reproduce_published_parameter_counts(name):
    """Counted on the meta device: no memory, so BERT-large is as cheap as MiniLM."""
    import torch
    from transformers import AutoConfig, AutoModel

    b = get_backbone(name)
    cfg = dict(b.config)
    with torch.device("meta"):
        model = AutoModel.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
    total = sum(p.numel() for p in model.parameters())
    assert total / 1e6 == pytest.approx(b.published_params_m, rel=0.05)
    exact = {"minilm-l6-h384": 22_713_216, "bert-base-uncased": 109_482_240}
    if name in exact:
        assert total == exact[name]
