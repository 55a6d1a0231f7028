"""Seeded random weights for catalogue backbones, written as canonical safetensors (needs transformers)."""

from __future__ import annotations

from pathlib import Path


def build_random_checkpoint(config: dict, seed: int, out: Path) -> None:
    """Initialise the HF base model from its config with `seed` and save config.json + model.safetensors."""
    import torch
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    cfg = dict(config)
    model_type = cfg.pop("model_type")
    hf_config = AutoConfig.for_model(model_type, **cfg)
    torch.manual_seed(seed)
    model = AutoModel.from_config(hf_config)
    model.save_pretrained(out, safe_serialization=True)
