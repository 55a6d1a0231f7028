"""PyTorch + HF transformers adapter: fp32, bf16 (CPU/CUDA), fp16 (CUDA), INT8 dynamic quantization (CPU)."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import torch
from transformers import AutoModel, AutoModelForSequenceClassification
from transformers.utils import logging as hf_logging

from adapters.base import BaseAdapter, Batch, Numerics, Options, ParamCounts
from bench.artifacts import Artifact
from bench.environment import NATIVE_FLAGS, native_support
from bench.errors import CellError, CellSkipped
from bench.tokenizer import Encoded

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# The ONNX Runtime recipe's choices where torch has them: per-channel weight scales (one per output row), and
# the pooler and classifier left fp32 (the few FLOPs that decide the logits)
INT8_RECIPE = "dynamic: int8 per-channel weights, activation ranges at run time; pooler and classifier fp32"
FP32_HEADS = ("pooler", "classifier")


def _int8_layers(model: torch.nn.Module) -> dict:
    qconfig = torch.ao.quantization.per_channel_dynamic_qconfig
    return {name: qconfig for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and not any(part in FP32_HEADS for part in name.split("."))}


class TorchHFAdapter(BaseAdapter):
    name = "torch"

    def __init__(self) -> None:
        super().__init__()
        self.model: torch.nn.Module | None = None
        self.device = torch.device("cpu")
        self._inputs: tuple[str, ...] = ()
        self._numerics = Numerics()

    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        if device == "cuda" and not torch.cuda.is_available():
            raise CellSkipped("device cuda: torch.cuda.is_available() is False (no GPU, or a CPU-only torch)")
        if variant.precision == "int8" and device != "cpu":
            raise CellError("torch INT8 dynamic quantization runs on CPU only")
        if variant.precision in ("bf16", "fp16") and device == "cpu" and not native_support(variant.precision):
            raise CellSkipped(f"{variant.precision} on CPU: this CPU has no native {variant.precision} kernels "
                              f"(none of {', '.join(NATIVE_FLAGS[variant.precision])}); emulated it is slower than "
                              "fp32 and says nothing about the precision")
        torch.set_num_threads(options.threads)
        self._load_tokenizer(artifact)
        self.device = torch.device(device)
        self._numerics = variant
        cls = AutoModelForSequenceClassification if artifact.task else AutoModel  # fine-tuned: task head
        model = cls.from_pretrained(artifact.path, dtype=torch.float32, local_files_only=True,
                                    use_safetensors=True)
        model.eval()
        if variant.precision == "int8":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's quantized-tensor deprecation notice
                model = torch.ao.quantization.quantize_dynamic(model, _int8_layers(model), dtype=torch.qint8)
        elif variant.precision in ("bf16", "fp16"):
            model = model.to(_DTYPES[variant.precision])
        self.model = model.to(self.device)
        self._inputs = tuple(inspect.signature(model.forward).parameters)

    def _to_native(self, encoded: Encoded) -> dict[str, torch.Tensor]:
        return {k: torch.from_numpy(v).to(self.device) for k, v in encoded.as_dict().items()
                if k in self._inputs}

    def forward(self, batch: Batch) -> np.ndarray:
        with torch.inference_mode():
            out = self.model(**batch.native)[0]
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            return out.float().cpu().numpy()

    def parameters(self) -> ParamCounts:
        total = trainable = nonzero = nbytes = 0
        tensors: list[tuple[torch.Tensor, bool]] = [(p, p.requires_grad) for p in self.model.parameters()]
        for module in self.model.modules():  # packed INT8 weights are not parameters: unpack them
            if isinstance(module, torch.ao.nn.quantized.dynamic.Linear):
                weight, bias = module._packed_params._weight_bias()
                tensors += [(weight, False)] + ([(bias, False)] if bias is not None else [])
        for t, grad in tensors:
            values = t.int_repr() if t.is_quantized else t
            total += t.numel()
            trainable += t.numel() if grad else 0
            nonzero += int(torch.count_nonzero(values))
            nbytes += t.numel() * t.element_size()
        return ParamCounts(total, trainable, nonzero, nbytes)

    def info(self) -> dict:
        info = {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "threads": torch.get_num_threads(),
                "interop_threads": torch.get_num_interop_threads(),
                "attention": getattr(getattr(self.model, "config", None), "_attn_implementation", None)}
        if self._numerics.precision == "int8":
            info["quantized_engine"] = torch.backends.quantized.engine
            info["int8_recipe"] = INT8_RECIPE
        if self.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(self.device)
            info["cuda"] = torch.version.cuda
        return info

    def close(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        super().close()
