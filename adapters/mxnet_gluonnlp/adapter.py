"""MXNet + GluonNLP adapter: GluonNLP's BERT classes, hybridized, fp32 and calibrated INT8 (oneDNN) on CPU.

(Not named mxnet.py: that would shadow the library.) The network is GluonNLP's BERTEncoder/BERTModel (and
BERTClassifier for a fine-tuned head), sized from the artifact's HF config and loaded from its safetensors
through adapters/build/gluonnlp_convert.py (numpy, no torch). GluonNLP masks attention by `valid_length`, so the
shared tokenizer's right-padded attention mask becomes lengths; GluonNLP also zeroes the hidden states of
padded positions, which the parity suite ignores (it compares real tokens only).

INT8 is the GluonNLP recipe (seed 002): `quantize_net_v2` with activation ranges calibrated ahead of time on
real sentences, i.e. static INT8 (precision `int8-static`); MXNet has no dynamic INT8 (calib_mode 'none'
segfaults in 1.9.1). Runtime `mxnet-deploy` runs what a deployment loads instead: the network exported to
symbol + params files (cached beside the artifact) and re-imported as a SymbolBlock.

mxnet reads OMP_NUM_THREADS and MXNET_HOME when it is imported, so the framework is imported in `load`.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import BaseAdapter, Batch, Numerics, Options, ParamCounts
from adapters.build.gluonnlp_convert import BertShape, ConversionError, convert, read_checkpoint
from bench import exports, recipes
from bench.artifacts import Artifact, cache_root
from bench.errors import CellError, CellSkipped
from bench.files import building
from bench.keys import digest
from bench.tokenizer import Encoded

# Seed 002's recipe (GluonNLP's BERT INT8 scripts): min/max of the fp32 activations collected by GluonNLP's
# BertLayerCollector, which clips the GELU outputs' max at 10 and the LayerNorm outputs' min at -50, so a few
# outliers do not stretch the 8-bit range of every other value. "naive" (plain min/max) was this harness's
# recipe until 2026-12-02 and stays available; 'entropy' needs scipy and is slower, 'none' crashes in 1.9.1.
CALIBRATIONS = {"bert-collector": {"calib_mode": "customize", "clip_min": -50.0, "clip_max": 10.0},
                "naive": {"calib_mode": "naive"}}
CALIBRATION = "bert-collector"
CALIB_MODE = CALIBRATIONS[CALIBRATION]["calib_mode"]
QUANTIZE = {"quantized_dtype": "auto", "quantize_mode": "smart", "quantize_granularity": "channel-wise"}
FP32_BACKEND = "MKLDNN"  # oneDNN subgraph fusion (FC + bias/GELU, cached weight layouts): 3-7% less CPU here
DEPLOY_VERSION = 1  # bump when what `mxnet-deploy` writes changes
PRECISIONS = {"cpu": ("fp32", "int8-static"), "cuda": ("fp32", "fp16")}


@dataclass(frozen=True)
class Calibration:
    """How the INT8 activation ranges were calibrated (recorded in info())."""

    mode: str
    examples: int  # calibration batches of one sequence each
    texts: int  # distinct calibration sentences (bench.recipes.calibration_texts: never the parity probe)
    seq_len: int
    task_examples: int = 0  # a fine-tuned model's task train examples (bench.glue.data.calibration_sample)
    collected: int | None = None  # bert-collector: layer outputs whose ranges it collected
    clipped: int | None = None  # of which GELU (max) or LayerNorm (min) outputs it may clip


def _collector():
    """The calibration's layer-output collector: GluonNLP's clipping one, or None for MXNet's own (naive)."""
    spec = CALIBRATIONS[CALIBRATION]
    if spec["calib_mode"] != "customize":
        return None
    from gluonnlp.calibration import BertLayerCollector

    return BertLayerCollector(clip_min=spec["clip_min"], clip_max=spec["clip_max"])


def _import_mxnet(threads: int):
    """mxnet with `threads` OpenMP threads and a project-local MXNET_HOME (it writes ~/.mxnet otherwise)."""
    os.environ.setdefault("MXNET_HOME", str(cache_root() / "mxnet"))
    fresh = "mxnet" not in sys.modules
    if fresh:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import mxnet as mx
    except AttributeError as exc:  # numpy >= 1.24 dropped np.bool, which mxnet 1.9 uses
        raise CellError(f"mxnet cannot import with numpy {np.__version__} ({exc}); use numpy 1.23.5, as the "
                        "mxnet nox environment does") from exc
    if not fresh:
        mx.base._LIB.MXSetNumOMPThreads(ctypes.c_int(threads))
    return mx


@contextlib.contextmanager
def _quiet_type_warning():
    """SymbolBlock warns that it cannot infer the ids input's dtype: it is float32, as _to_native feeds it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cannot decide type")
        yield


def _num_labels(artifact: Artifact) -> int | None:
    """Head size of a fine-tuned artifact (None: bare backbone), as torch's AutoModelForSequenceClassification
    reads it; the artifact's record and its config must agree."""
    if not getattr(artifact, "task", None):
        return None
    config = artifact.config
    from_config = len(config["id2label"]) if config.get("id2label") else config.get("num_labels")
    recorded = getattr(artifact, "num_labels", None)
    if recorded is not None and from_config is not None and int(recorded) != int(from_config):
        raise ConversionError(f"{artifact.path}: meta.json num_labels={recorded} but config.json has "
                              f"{from_config} labels")
    return int(recorded or from_config or 2)


class MXNetAdapter(BaseAdapter):
    name = "mxnet"
    deploy = False  # MXNetDeployAdapter: run the exported files, re-imported as a SymbolBlock

    def __init__(self) -> None:
        super().__init__()
        self.mx: Any = None
        self.net: Any = None
        self.ctx: Any = None
        self.shape: BertShape | None = None
        self._numerics = Numerics()
        self._threads = 1
        self._ignored: tuple[str, ...] = ()
        self._calibration: Calibration | None = None
        self._deploy_dir: Path | None = None
        self._deploy_reused = False
        self._input_dtype = "float32"
        self._backend: str | None = None

    # -- load ------------------------------------------------------------------------------------------------
    def load(self, artifact: Artifact, variant: Numerics, device: str, options: Options) -> None:
        self.mx = _import_mxnet(options.threads)
        if variant.precision not in PRECISIONS.get(device, ()):
            raise CellError(f"mxnet: precision {variant.precision!r} on {device} is not supported "
                            f"(supports {PRECISIONS})")
        self.ctx = self._context(device)
        self._numerics, self._threads = variant, options.threads
        self._load_tokenizer(artifact)
        self.shape = BertShape.from_config(artifact.config, num_labels=_num_labels(artifact))
        if self.deploy:
            self._deploy_dir = deploy_dir(artifact, variant.precision, self._recipe())
            self._deploy_reused = _is_complete(self._deploy_dir)
            if not self._deploy_reused:
                self._build_deployment(artifact)
            self.net = self._import(self._deploy_dir)
        else:
            self.net = self._build(artifact)

    def _context(self, device: str):
        mx = self.mx
        if device == "cpu":
            return mx.cpu()
        if not mx.runtime.Features().is_enabled("CUDA"):
            raise CellSkipped(f"device cuda: this mxnet {mx.__version__} is a CPU-only build (the PyPI 'mxnet' "
                              "wheel); a CUDA build (mxnet-cuXXX) on a machine with a GPU is needed")
        if mx.context.num_gpus() == 0:
            raise CellSkipped("device cuda: mxnet is built with CUDA but sees no GPU")
        return mx.gpu(0)

    def _recipe(self) -> dict:
        """Everything that changes the bytes of a deployment export (its cache key)."""
        recipe = {"precision": self._numerics.precision, "mxnet": self.mx.__version__, "version": DEPLOY_VERSION,
                  "fp32_backend": FP32_BACKEND}
        if self._numerics.precision == "int8-static":
            recipe |= {"quantize": QUANTIZE, "calib_mode": CALIB_MODE, "calibration": CALIBRATIONS[CALIBRATION],
                       "calib_seq_len": self._calib_seq_len(),
                       "calib_texts": recipes.calibration_texts()}
            if getattr(self.artifact, "task", None):
                from bench.glue import data
                from bench.glue.tasks import get_task

                try:
                    recipe["calib_task_train"] = data.split_hash(get_task(self.artifact.task), "train")
                except data.DataMissing as exc:
                    raise CellError(f"INT8 calibration of a {self.artifact.task} model needs its train split: "
                                    f"{exc}") from exc
        return recipe

    def _build(self, artifact: Artifact):
        """Convert the checkpoint into GluonNLP's network, hybridize it and, for INT8, quantize it."""
        from adapters.mxnet_gluonnlp import blocks

        mx = self.mx
        converted = convert(self.shape, read_checkpoint(artifact.path), where=str(artifact.path))
        self._ignored = converted.ignored
        net = blocks.build(self.shape)
        blocks.assign(net, converted, self.ctx)
        if self._numerics.precision == "fp16":
            net.cast("float16")
            self._input_dtype = "float16"
        fp32_cpu = self._numerics.precision == "fp32" and self.ctx == mx.cpu()
        self._backend = FP32_BACKEND if fp32_cpu else None  # quantization starts from the plain graph
        self._hybridize(net, backend=self._backend)
        self._warm(net)
        if self._numerics.precision == "int8-static":
            net = self._quantize(net)
            self._hybridize(net)
            self._warm(net)
        mx.nd.waitall()
        return net

    def _hybridize(self, net, backend: str | None = None) -> None:
        kwargs = {"backend": backend} if backend else {}
        net.hybridize(static_alloc=True, static_shape=True, **kwargs)

    def _warm(self, net) -> None:
        """One forward builds the cached graph (export needs it) and the static allocation."""
        batch = self.encode(recipes.calibration_texts()[:1], max_length=self._calib_seq_len())
        self._run(net, batch)

    def _quantize(self, net):
        """GluonNLP's INT8 recipe: calibrated static quantization into oneDNN's fused INT8 subgraphs."""
        mx = self.mx
        if self.ctx != mx.cpu():
            raise CellError("mxnet INT8 (oneDNN) runs on CPU only")
        calib, task_examples = self._calibration_batches()
        label = mx.nd.zeros((1,), ctx=self.ctx)
        collector = _collector()
        # calib_data must yield (data..., label): quantize_net_v2 drops the last item as the label
        data = [(*b.native, label) for b in calib]
        try:
            with _quiet_type_warning():
                qnet = mx.contrib.quantization.quantize_net_v2(
                    net, **QUANTIZE, exclude_layers=None, exclude_operators=None, calib_data=data,
                    calib_mode=CALIB_MODE, num_calib_examples=len(data), ctx=self.ctx, logger=None,
                    LayerOutputCollector=collector)
        except Exception as exc:  # MXNetError and friends: this cell only, with the reason
            raise CellError(f"mxnet quantize_net_v2 failed: {type(exc).__name__}: {exc}") from exc
        names = list(collector.min_max_dict) if collector is not None else None
        self._calibration = Calibration(
            CALIBRATION, len(data), len(recipes.calibration_texts()), self._calib_seq_len(), task_examples,
            len(names) if names is not None else None,
            sum("gelu0_leakyrelu0" in n or "layernorm0_layernorm0" in n for n in names) if names is not None else None)
        return qnet

    def _calibration_batches(self) -> tuple[list[Batch], int]:
        """The calibration set of bench/recipes.py, as for ONNX static INT8: each calibration sentence alone,
        windows of real text filling 128 tokens and, for a fine-tuned model, examples of its task's train split.
        Batches of one padded to 128: quantize_net_v2 binds every batch to the first one's shape."""
        n = self._calib_seq_len()
        texts = recipes.calibration_texts() + recipes.calibration_windows()
        batches = [self.encode([t], max_length=n) for t in texts]
        if not getattr(self.artifact, "task", None):
            return batches, 0
        from bench.glue.data import DataMissing

        try:
            a, b = recipes.task_calibration(self.artifact.task)
        except DataMissing as exc:
            raise CellError(f"INT8 calibration of a {self.artifact.task} model needs its train split: {exc}") from exc
        batches += [self.encode([a[i]], [b[i]] if b else None, max_length=n) for i in range(len(a))]
        return batches, len(a)

    def _calib_seq_len(self) -> int:
        return min(recipes.CALIBRATION_SEQ_LEN, self.shape.max_length)

    # -- deployment: symbol + params files, re-imported as a SymbolBlock -------------------------------------
    def _build_deployment(self, artifact: Artifact) -> None:
        net = self._build(artifact)
        final = self._deploy_dir
        with building(final) as tmp:
            net.export(str(tmp / "model"), epoch=0)
            files = {p.name: p.stat().st_size for p in tmp.iterdir()}
            meta = {"recipe": self._recipe(), "files": files, "content_hash": artifact.content_hash,
                    "artifact": str(artifact.path), "shape": asdict(self.shape), "ignored_tensors": self._ignored,
                    "calibration": asdict(self._calibration) if self._calibration else None}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))

    def _import(self, directory: Path):
        from adapters.mxnet_gluonnlp.blocks import INPUT_NAMES

        mx = self.mx
        meta = _check_intact(directory)
        self._ignored = tuple(meta.get("ignored_tensors", ()))
        if meta.get("calibration"):
            self._calibration = Calibration(**meta["calibration"])
        try:
            with _quiet_type_warning():
                net = mx.gluon.SymbolBlock.imports(str(directory / "model-symbol.json"), INPUT_NAMES,
                                                   str(directory / "model-0000.params"), ctx=self.ctx)
        except Exception as exc:
            raise CellError(f"{directory}: mxnet cannot import the deployment files: {type(exc).__name__}: "
                            f"{exc}; delete the directory to rebuild it") from exc
        self.model_files = (directory / "model-symbol.json", directory / "model-0000.params")  # what a deployment reads
        if self._numerics.precision == "fp16":
            self._input_dtype = "float16"
        if self._numerics.precision == "fp32" and self.ctx == mx.cpu():
            self._backend = meta["recipe"].get("fp32_backend")  # the exported graph is already partitioned
        self._hybridize(net)
        self._warm(net)
        return net

    # -- run -------------------------------------------------------------------------------------------------
    def _to_native(self, encoded: Encoded) -> tuple:
        """(ids, token types, valid_length) as float32 NDArrays, GluonNLP's input convention (ids are exact
        in float32). GluonNLP masks by length, so the attention mask must be right padding."""
        if encoded.shape[1] > self.shape.max_length:  # mxnet's Embedding would clip positions silently
            raise CellError(f"mxnet: sequence length {encoded.shape[1]} exceeds the model's "
                            f"max_position_embeddings ({self.shape.max_length})")
        mask = encoded.attention_mask.astype(bool)
        lengths = mask.sum(axis=1)
        if not np.array_equal(mask, np.arange(mask.shape[1])[None, :] < lengths[:, None]):
            raise CellError("mxnet: GluonNLP BERT masks attention by valid_length, so inputs must be right-padded; "
                            "this attention mask has holes or left padding")
        nd, ctx, dtype = self.mx.nd, self.ctx, self._input_dtype
        return (nd.array(encoded.input_ids, ctx=ctx, dtype="float32" if dtype == "float32" else "int32"),
                nd.array(encoded.token_type_ids, ctx=ctx, dtype="float32" if dtype == "float32" else "int32"),
                nd.array(lengths, ctx=ctx, dtype=dtype))

    def _run(self, net, batch: Batch) -> np.ndarray:
        out = net(*batch.native)
        out = out[0] if isinstance(out, (list, tuple)) else out  # backbone: (sequence, pooled); head: logits
        out.wait_to_read()
        self.mx.nd.waitall()  # the pooled output too: a timer around forward sees the whole graph
        return out.asnumpy().astype(np.float32, copy=False)

    def forward(self, batch: Batch) -> np.ndarray:
        return self._run(self.net, batch)

    def parameters(self) -> ParamCounts:
        """Parameters as this runtime holds them. Quantized graphs keep FullyConnected weights in float32 and
        oneDNN quantizes them internally, so bytes stay float32; deployment graphs have no trainer: trainable 0."""
        total = trainable = nonzero = nbytes = 0
        graph = self.deploy or self._numerics.precision == "int8-static"
        for param in self.net.collect_params().values():
            array = param.data(self.ctx).asnumpy()
            total += array.size
            trainable += array.size if not graph and param.grad_req != "null" else 0
            nonzero += int(np.count_nonzero(array))
            nbytes += array.nbytes
        return ParamCounts(total, trainable, nonzero, nbytes)

    def info(self) -> dict:
        mx = self.mx
        import gluonnlp

        features = mx.runtime.Features()
        info = {"mxnet": mx.__version__, "gluonnlp": gluonnlp.__version__, "threads": self._threads,
                "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                **{k.lower(): os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ},
                "engine": os.environ.get("MXNET_ENGINE_TYPE", "ThreadedEnginePerDevice"),
                "onednn": features.is_enabled("MKLDNN"), "cuda_build": features.is_enabled("CUDA"),
                "hybridize": {"static_alloc": True, "static_shape": True, "backend": self._backend},
                "network": "BERTClassifier" if self.shape and self.shape.num_labels else "BERTModel",
                "deployed_symbolblock": self.deploy, "ignored_tensors": list(self._ignored)}
        if self._calibration:
            info["calibration"] = asdict(self._calibration)
            info["quantize"] = QUANTIZE
            info["int8_weights"] = "float32 in params; oneDNN quantizes them per channel inside fused FC"
        if self._deploy_dir:
            info["deploy_dir"] = str(self._deploy_dir)
            info["deploy_reused"] = self._deploy_reused
        if self.ctx is not None and self.ctx.device_type == "gpu":
            info["gpu_count"] = mx.context.num_gpus()
        return info

    def close(self) -> None:
        self.net = None
        if self.mx is not None:
            self.mx.nd.waitall()
        super().close()


class MXNetDeployAdapter(MXNetAdapter):
    """What a deployment runs: the (quantized) network exported to symbol + params and re-imported as a
    SymbolBlock (no GluonNLP classes involved), as GluonNLP's deploy scripts do."""

    name = "mxnet-deploy"
    deploy = True


def deploy_dir(artifact: Artifact, precision: str, recipe: dict) -> Path:
    key = digest([artifact.content_hash, recipe], 12)
    return exports.derived_dir(artifact) / "mxnet" / f"{precision}-{key}"


def _is_complete(directory: Path) -> bool:
    return (directory / "meta.json").is_file()


def _check_intact(directory: Path) -> dict:
    """The files against the sizes recorded when they were written: a truncated file is refused clearly."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CellError(f"{directory}/meta.json: unreadable export record ({exc}); delete the directory") from exc
    for name, size in meta.get("files", {}).items():
        path = directory / name
        actual = path.stat().st_size if path.is_file() else None
        if actual != size:
            raise CellError(f"{path}: {actual} bytes but {size} were written (truncated or modified); delete "
                            f"{directory} to rebuild it")
    return meta
