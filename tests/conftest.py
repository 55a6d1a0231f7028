"""Shared fixtures: tiny vocabularies and tiny models the tests make themselves (no ../shared, no hub)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from bench.environment import apply_offline_env

apply_offline_env()  # before any test imports a framework: offline, telemetry off, as the harness runs

HAS_TORCH = importlib.util.find_spec("torch") is not None and importlib.util.find_spec("transformers") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs the torch extra (torch + transformers)")

TINY_WORDS = ["the", "a", "film", "is", "good", "bad", "bridge", "rain", "fell", "over", "harbour", "boat",
              "report", "##s", "##ing", ".", ",", "?", "it", "was", "not", "and", "of", "to"]
TINY_BERT = {"model_type": "bert", "vocab_size": 40, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 512,
             "type_vocab_size": 2}


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Artifacts go to a per-session temporary cache, never the user's."""
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def write_vocab(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *TINY_WORDS]
    (directory / "vocab.txt").write_text("\n".join(tokens) + "\n")
    return directory


@pytest.fixture
def vocab_dir(tmp_path) -> Path:
    return write_vocab(tmp_path / "vocab")


def make_tiny_model(directory: Path, config: dict | None = None, seed: int = 0) -> Path:
    """A from_pretrained directory with seeded random weights and a tiny WordPiece vocab."""
    from adapters.build.random_weights import build_random_checkpoint

    config = dict(config or TINY_BERT)
    write_vocab(directory)
    config["vocab_size"] = max(config["vocab_size"], len((directory / "vocab.txt").read_text().split()))
    build_random_checkpoint(config, seed, directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    if not HAS_TORCH:
        pytest.skip("needs the torch extra (torch + transformers)")
    return make_tiny_model(tmp_path_factory.mktemp("tiny-bert"))


def read_json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
