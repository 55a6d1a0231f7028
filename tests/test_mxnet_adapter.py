"""The MXNet GluonNLP adapter in its own environment (no torch there): a tiny BERT written with numpy, its
HF-semantics reference outputs from tests/bert_numpy.py, and the real MiniLM where the torch env has cached
its reference. Run with `nox -s tests_mxnet`; skipped where mxnet is not importable."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from bench import exports, recipes
from bench.agreement import Agreement
from bench.artifacts import Artifact, artifact_for
from bench.catalogue import get_backbone
from bench.errors import CellError, CellSkipped
from bench.plan import Cell, plan_from_dict
from bench.records import RECORDS_FILE, read
from bench.tokenizer import Tokenizer
from tests.bert_numpy import TINY, bert_forward, make_tiny_bert_dir

HAS_MXNET = all(importlib.util.find_spec(m) is not None for m in ("mxnet", "gluonnlp"))
pytestmark = [pytest.mark.mxnet,
              pytest.mark.skipif(not HAS_MXNET, reason="mxnet/gluonnlp not importable: they need their own "
                                 "environment (numpy 1.23.5); run nox -s tests_mxnet")]
PROJECT_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "backbone-bench"


def _artifact(directory: Path, num_labels: int | None = None) -> Artifact:
    art = artifact_for(get_backbone(str(make_tiny_bert_dir(directory, num_labels=num_labels))))
    if num_labels is not None:
        art = dataclasses.replace(art, task="toy", num_labels=num_labels)
    tok = Tokenizer.from_dir(art.path, vocab_size=art.vocab_size or None)
    encoded = recipes.probe(tok)
    from adapters.build.gluonnlp_convert import read_checkpoint

    out = bert_forward(read_checkpoint(art.path), art.config, encoded.input_ids, encoded.attention_mask,
                       encoded.token_type_ids, num_labels=num_labels)
    exports.write_reference(art, encoded, out, runtime={"numpy": "tests/bert_numpy.py"})
    return art


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mx")
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before conftest's per-test cache isolation
        mp.setenv("BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        return {"bare": _artifact(tmp / "bare"), "head": _artifact(tmp / "head", num_labels=3)}


def load(artifact, precision="fp32", runtime="mxnet", device="cpu"):
    from adapters.base import Numerics, Options
    from bench.runtimes import get_runtime

    adapter = get_runtime(runtime).load_adapter_class()()
    adapter.load(artifact, Numerics(precision), device, Options(threads=1))
    return adapter


def parity(adapter, precision="fp32"):
    from suites import parity

    cell = Cell(adapter.artifact.backbone, adapter.name, precision, "dense", "cpu", "parity")
    return parity.SUITE.run(adapter, cell, Agreement()).metrics


@pytest.mark.parametrize("runtime", ["mxnet", "mxnet-deploy"])
@pytest.mark.parametrize("kind", ["bare", "head"])
def test_fp32_matches_hf_semantics_within_1e4(toys, runtime, kind):
    adapter = load(toys[kind], runtime=runtime)
    m = parity(adapter)
    assert m["max_abs_diff"] <= 1e-4 and m["within_tolerance"], m
    assert adapter.info()["network"] == ("BERTClassifier" if kind == "head" else "BERTModel")
    if kind == "head":
        assert m["agreement"] == 1.0
    adapter.close()


def test_every_parameter_is_assigned_exactly_once_from_its_checkpoint_tensor(toys):
    import mxnet as mx

    from adapters.build.gluonnlp_convert import BertShape, convert, read_checkpoint, spec
    from adapters.mxnet_gluonnlp import blocks

    for kind, labels in (("bare", None), ("head", 3)):
        shape = BertShape.from_config(TINY, num_labels=labels)
        converted = convert(shape, read_checkpoint(toys[kind].path))
        net = blocks.build(shape)
        params = net._collect_params_with_prefix()
        assert set(params) == {e.gluon for e in spec(shape)}  # the spec is exactly GluonNLP's parameter set
        assert blocks.assign(net, converted, mx.cpu()) == len(params)
        for name, param in params.items():
            np.testing.assert_array_equal(param.data().asnumpy(), converted.arrays[name])


def test_assign_refuses_a_half_loaded_network(toys):
    import mxnet as mx

    from adapters.build.gluonnlp_convert import BertShape, ConversionError, Converted, convert, read_checkpoint
    from adapters.mxnet_gluonnlp import blocks

    shape = BertShape.from_config(TINY)
    good = convert(shape, read_checkpoint(toys["bare"].path))
    missing = {k: v for k, v in good.arrays.items() if k != "bert.encoder.transformer_cells.1.proj.bias"}
    with pytest.raises(ConversionError, match="without a converted weight: \\['bert.encoder.transformer_cells.1."
                                              "proj.bias'\\]"):
        blocks.assign(blocks.build(shape), Converted(missing, good.source, ()), mx.cpu())
    extra = good.arrays | {"bert.encoder.transformer_cells.2.proj.bias": good.arrays["bert.pooler.bias"]}
    with pytest.raises(ConversionError, match="without a GluonNLP parameter: \\['bert.encoder.transformer_cells.2"):
        blocks.assign(blocks.build(shape), Converted(extra, good.source, ()), mx.cpu())
    wrong = good.arrays | {"bert.pooler.bias": np.zeros(7, np.float32)}
    with pytest.raises(ConversionError, match="'pooler.dense.bias' has shape \\(7,\\)"):
        blocks.assign(blocks.build(shape), Converted(wrong, good.source, ()), mx.cpu())


@pytest.mark.parametrize("runtime", ["mxnet", "mxnet-deploy"])
@pytest.mark.parametrize("precision", ["fp32", "int8-static"])
def test_parameter_counts_equal_torch_counts(toys, runtime, precision):
    """torch counts every checkpoint tensor but the position_ids buffer; so must every MXNet form."""
    from safetensors.numpy import load_file

    tensors = load_file(toys["bare"].path / "model.safetensors")
    expected = sum(v.size for k, v in tensors.items() if k != "embeddings.position_ids")
    counts = load(toys["bare"], precision, runtime).parameters()
    assert counts.total == expected and counts.nonzero == expected and counts.bytes == 4 * expected
    assert counts.trainable == (expected if (runtime, precision) == ("mxnet", "fp32") else 0)


@pytest.mark.parametrize("runtime", ["mxnet", "mxnet-deploy"])
def test_int8_static_is_calibrated_on_real_sentences_and_reports_its_drift(toys, runtime):
    adapter = load(toys["bare"], "int8-static", runtime)
    info = adapter.info()
    calibration = info["calibration"]
    assert {k: calibration[k] for k in ("mode", "examples", "texts", "seq_len", "task_examples")} == {
        "mode": "bert-collector", "examples": 20, "texts": 16, "seq_len": 128, "task_examples": 0}
    # GluonNLP's collector found this network's layer outputs by name, the GELU/LayerNorm ones among them
    assert calibration["collected"] > 0 and calibration["clipped"] > 0
    assert info["quantize"]["quantize_mode"] == "smart"
    m = parity(adapter, "int8-static")
    assert m["finite"] and m["criterion"] is None and "within_tolerance" not in m
    assert 0 < m["max_abs_diff"] < 1.0 and m["cosine"] > 0.9, m


def test_deployment_files_are_reused_and_a_truncated_one_is_refused(tmp_path):
    art = _artifact(tmp_path / "fresh")  # its own derived directory: nothing exported yet
    first = load(art, "int8-static", "mxnet-deploy")
    directory = Path(first.info()["deploy_dir"])
    assert not first.info()["deploy_reused"]
    assert {p.name for p in directory.iterdir()} == {"model-symbol.json", "model-0000.params", "meta.json"}
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["calibration"]["mode"] == "bert-collector" and meta["recipe"]["precision"] == "int8-static"
    again = load(art, "int8-static", "mxnet-deploy")
    assert again.info()["deploy_reused"]
    batch = first.encode(["the film is good ."])
    np.testing.assert_array_equal(first.forward(batch), again.forward(batch))
    params = directory / "model-0000.params"
    params.write_bytes(params.read_bytes()[:-10])
    with pytest.raises(CellError, match="truncated or modified"):
        load(art, "int8-static", "mxnet-deploy")


def test_forward_returns_float32_numpy_of_the_torch_shape_and_pads_are_right_padding(toys):
    adapter = load(toys["bare"])
    batch = adapter.encode(["rain fell over the harbour .", "a boat"], max_length=16)
    out = adapter.forward(batch)
    assert out.shape == (2, 16, 32) and out.dtype == np.float32
    head = load(toys["head"])
    assert head.forward(head.encode(["the film is good ."], max_length=8)).shape == (1, 3)
    holes = dataclasses.replace(batch.encoded, attention_mask=np.flip(batch.encoded.attention_mask, axis=1).copy())
    with pytest.raises(CellError, match="right-padded"):
        adapter._to_native(holes)
    with pytest.raises(CellError, match="sequence length 513 exceeds the model's max_position_embeddings"):
        adapter.encode(["the film is good ."], max_length=513)  # mxnet would clip positions, torch raises


def test_a_non_bert_backbone_fails_its_cell_with_the_reason(tmp_path):
    path = make_tiny_bert_dir(tmp_path / "d")
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(config | {"model_type": "distilbert"}))
    with pytest.raises(CellError, match="supports model_type 'bert' only"):
        load(artifact_for(get_backbone(str(path))))


def test_cuda_is_skipped_with_the_reason_on_a_cpu_build(toys):
    import mxnet as mx

    if mx.runtime.Features().is_enabled("CUDA") and mx.context.num_gpus():
        pytest.skip("a CUDA mxnet with a GPU: nothing to skip")
    with pytest.raises(CellSkipped, match="device cuda: "):
        load(toys["bare"], device="cuda")


def test_cells_run_through_the_runner(toys, tmp_path, monkeypatch):
    from bench.runner import run

    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parent.parent))
    plan = plan_from_dict({"matrix": {"backbones": [str(toys["bare"].path)], "runtimes": ["mxnet", "mxnet-deploy"],
                                      "precisions": ["fp32", "int8-static"], "suites": ["params", "parity"]},
                           "run": {"threads": 1, "timeout_s": 300}})
    summary = run(plan, tmp_path / "out")
    assert (summary.ok, summary.failed) == (8, 0)
    recs = read(tmp_path / "out" / RECORDS_FILE)
    fp32 = [r for r in recs if r.cell.suite == "parity" and r.cell.precision == "fp32"]
    assert len(fp32) == 2 and all(r.metrics["within_tolerance"] for r in fp32)
    assert all(r.runtime["mxnet"] == "1.9.1" for r in recs)


def _cached_real(name: str) -> Artifact:
    for directory in sorted((PROJECT_CACHE / "artifacts").glob(f"{name}-*")):
        if (directory / "meta.json").is_file() and "-pruned" not in directory.name:
            art = Artifact.load(directory)
            if art.sparsity == 0 and not getattr(art, "task", None):
                return art
    pytest.skip(f"no cached {name} artifact in {PROJECT_CACHE}: run the torch environment first")


def test_real_minilm_matches_torch_fp32_and_reports_int8_drift(monkeypatch):
    """The real all-MiniLM-L6-v2 weights against torch's own outputs, cached by the torch environment."""
    monkeypatch.setenv("BENCH_CACHE", str(PROJECT_CACHE))
    art = _cached_real("minilm-l6-h384")
    if not exports.is_built(art, exports.REFERENCE_OUTPUTS):
        pytest.skip("no torch reference outputs cached for MiniLM: run the torch environment first")
    fp32 = parity(load(art))
    assert fp32["max_abs_diff"] <= 1e-4, fp32
    int8 = parity(load(art, "int8-static"), "int8-static")
    assert int8["cosine"] > 0.95, int8


def test_int8_of_a_fine_tuned_model_also_calibrates_on_its_task_train_split(tmp_path):
    """As the ONNX static-INT8 export: a task model's calibration adds train examples of its task, never dev."""
    from bench.glue import data
    from bench.glue.tasks import get_task, parse_tasks
    from tests.glue_fixtures import known_table, write_glue

    glue = write_glue(tmp_path / "glue")
    data.import_dir(glue, parse_tasks("mrpc"), known=known_table(glue))
    art = dataclasses.replace(_artifact(tmp_path / "mrpc", num_labels=2), task="mrpc")
    calibration = load(art, "int8-static").info()["calibration"]
    # 64 examples, or half of a small train split (the other half is the INT8 fallback search's)
    assert calibration["task_examples"] == min(64, len(data.load_split(get_task("mrpc"), "train")) // 2) > 0
    assert calibration["examples"] == 20 + calibration["task_examples"]
