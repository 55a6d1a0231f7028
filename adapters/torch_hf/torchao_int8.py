"""torchao INT8 on CPU: the quantization path torch points to now that torch.ao.quantization is deprecated.

The same HF model as the torch runtime, its encoder Linear layers swapped by torchao's `quantize_` for
Int8DynamicActivationInt8WeightConfig: int8 weights with one symmetric scale per output row (per-channel, as the
torch and ONNX Runtime recipes), activations quantized per token at run time. Pooler and classifier stay fp32, as
in the torch runtime's recipe, so the two INT8 rows differ only in the quantization library.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from adapters.base import Numerics, Options, ParamCounts
from adapters.torch_hf.adapter import FP32_HEADS, TorchHFAdapter
from bench.artifacts import Artifact
from bench.errors import CellError

INT8_RECIPE = ("torchao Int8DynamicActivationInt8WeightConfig: int8 per-channel symmetric weights, per-token "
               "dynamic int8 activations; pooler and classifier fp32")


def _quantized(module: torch.nn.Module, fqn: str) -> bool:
    return isinstance(module, torch.nn.Linear) and not any(part in FP32_HEADS for part in fqn.split("."))


class TorchAOAdapter(TorchHFAdapter):
    name = "torchao"

    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        if variant.precision != "int8" or device != "cpu":
            raise CellError(f"torchao runs int8 on cpu here, not {variant.precision} on {device}")
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        super().load(artifact, replace(variant, precision="fp32"), device, options)
        self._numerics = variant
        quantize_(self.model, Int8DynamicActivationInt8WeightConfig(), filter_fn=_quantized)

    def parameters(self) -> ParamCounts:
        """torchao's weights are tensor subclasses that report fp32: count their int8 data and scales."""
        total = trainable = nonzero = nbytes = 0
        for p in self.model.parameters():
            parts = [p.qdata, p.scale] if hasattr(p, "qdata") else [p]
            total += p.numel()
            trainable += p.numel() if p.requires_grad and not hasattr(p, "qdata") else 0
            nonzero += int(torch.count_nonzero(parts[0]))
            nbytes += sum(t.numel() * t.element_size() for t in parts)
        return ParamCounts(total, trainable, nonzero, nbytes)

    def info(self) -> dict:
        import torchao

        info = {k: v for k, v in super().info().items() if k != "quantized_engine"}  # torch.ao's, not used here
        layers = sum(1 for m in self.model.modules() if hasattr(getattr(m, "weight", None), "qdata"))
        return info | {"torchao": torchao.__version__, "int8_recipe": INT8_RECIPE, "quantized_layers": layers}
