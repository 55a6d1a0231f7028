"""torchao: the torch model with torchao INT8 (per-channel int8 weights, dynamic per-token activations) on the tiny
seeded BERT, beside torch's own INT8 row; skipped where the torchao extra is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.base import Adapter, Numerics, Options
from bench.catalogue import get_backbone
from bench.errors import CellError
from tests.conftest import needs_torch

pytestmark = [needs_torch, pytest.mark.skipif(
    __import__("importlib").util.find_spec("torchao") is None, reason="needs the torchao extra")]

TEXTS = ["the film is good .", "it was not bad , and the boat fell over ."]


def load(model_dir, precision="int8", runtime="torchao", device="cpu"):
    from adapters.torch_hf.adapter import TorchHFAdapter
    from adapters.torch_hf.torchao_int8 import TorchAOAdapter
    from bench.artifacts import artifact_for

    adapter = TorchAOAdapter() if runtime == "torchao" else TorchHFAdapter()
    adapter.load(artifact_for(get_backbone(str(model_dir))), Numerics(precision), device, Options(threads=1))
    return adapter


def test_torchao_int8_quantizes_the_encoder_linears_and_stays_close_to_fp32(tiny_model_dir):
    ao, fp32 = load(tiny_model_dir), load(tiny_model_dir, "fp32", runtime="torch")
    try:
        assert isinstance(ao, Adapter) and ao.name == "torchao"
        batch = ao.encode(TEXTS, max_length=12)
        a, ref = ao.forward(batch), fp32.forward(fp32.encode(TEXTS, max_length=12))
        assert a.shape == ref.shape and not np.array_equal(a, ref)  # quantized: not the fp32 numbers
        cos = float((a * ref).sum() / np.linalg.norm(a) / np.linalg.norm(ref))
        assert cos > 0.98
        info = ao.info()
        assert info["torchao"] and "per-channel" in info["int8_recipe"] and info["quantized_layers"] > 0
        assert "quantized_engine" not in info
        counts, dense = ao.parameters(), fp32.parameters()
        assert counts.total == dense.total and counts.bytes < dense.bytes  # int8 weights + fp32 scales
    finally:
        ao.close()
        fp32.close()


@pytest.mark.parametrize("precision,device", [("fp32", "cpu"), ("int8", "cuda")])
def test_torchao_refuses_anything_but_int8_on_cpu(tiny_model_dir, precision, device):
    with pytest.raises(CellError, match="torchao runs int8 on cpu"):
        load(tiny_model_dir, precision, device=device)
