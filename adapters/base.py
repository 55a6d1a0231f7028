"""The adapter protocol every runtime implements, and the small types it exchanges with suites."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bench.artifacts import Artifact
from bench.tokenizer import Encoded, Tokenizer


@dataclass(frozen=True)
class Numerics:
    """How a loaded model represents its weights and arithmetic: the cell's precision and sparsity."""

    precision: str = "fp32"
    sparsity: str = "dense"


@dataclass(frozen=True)
class Options:
    threads: int = 1
    properties: dict | None = None  # the runtime's own settings from the preset (bench/plan.py: RuntimeScope)

    @classmethod
    def from_settings(cls, settings: dict, runtime: str) -> Options:
        """A worker's options from the record settings its spec carries (bench/plan.py: record_settings)."""
        return cls(threads=settings["threads"], properties=settings.get("properties", {}).get(runtime))


@dataclass(frozen=True)
class ParamCounts:
    """Parameters as the runtime holds them: `bytes` is their storage at the loaded precision."""

    total: int
    trainable: int
    nonzero: int
    bytes: int


@dataclass
class Batch:
    """Inputs in the runtime's native form, built once by `encode` so `forward` only runs the model."""

    encoded: Encoded
    native: Any

    @property
    def shape(self) -> tuple[int, int]:
        return self.encoded.shape


@runtime_checkable
class Adapter(Protocol):
    name: str

    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        """Load the artifact's weights at `variant` on `device`; raise CellSkipped if the device is absent."""

    def encode(self, texts: list[str], pairs: list[str] | None = None, max_length: int = 128,
               pad_to_max: bool = True) -> Batch:
        """Tokenize through the shared core tokenizer, then convert to native inputs on the device."""

    def forward(self, batch: Batch) -> np.ndarray:
        """Run the model and return its output (hidden states or logits) as float32 numpy; synchronises
        the device, so a timer around it measures the whole call."""

    def parameters(self) -> ParamCounts: ...

    def info(self) -> dict:
        """Versions and settings that explain this runtime's numbers (threads, kernels, providers)."""

    def close(self) -> None: ...


class BaseAdapter:
    """Shared plumbing: the artifact's tokenizer and the encode path."""

    name = "base"

    def __init__(self) -> None:
        self.tokenizer: Tokenizer | None = None
        self.artifact: Artifact | None = None
        # the files the model was read from (bench/resources.py: size on disk); an adapter that reads an exported
        # file instead of the artifact's safetensors replaces them in `load`
        self.model_files: tuple[Path, ...] = ()

    def _load_tokenizer(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.tokenizer = Tokenizer.from_dir(artifact.path, vocab_size=artifact.vocab_size or None)
        self.model_files = tuple(sorted(Path(artifact.path).glob("*.safetensors")))

    def encode(self, texts: list[str], pairs: list[str] | None = None, max_length: int = 128,
               pad_to_max: bool = True) -> Batch:
        assert self.tokenizer is not None, "load() first"
        encoded = self.tokenizer.encode(texts, pairs, max_length=max_length, pad_to_max=pad_to_max)
        return Batch(encoded, self._to_native(encoded))

    def _to_native(self, encoded: Encoded) -> Any:
        return encoded.as_dict()

    def close(self) -> None:
        self.tokenizer = None
