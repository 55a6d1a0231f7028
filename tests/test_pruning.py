"""Magnitude pruning (numpy only): exact sparsity, untouched embeddings/heads, a new artifact every runtime
loads, and the sparsity axis picking it per cell."""

import json

import numpy as np
import pytest

from bench.artifacts import Artifact, artifact_for
from bench.catalogue import get_backbone
from bench.errors import UsageError
from bench.pruning import DEFAULT_SCOPE, PruneScope, check_fraction, for_sparsity, magnitude_prune, pruned_twin
from tests.conftest import needs_torch
from tests.onnx_toy import W1, W2, make_toy_dir


def tensors(seed=0):
    rng = np.random.default_rng(seed)
    return {"embeddings.word_embeddings.weight": rng.normal(size=(50, 8)).astype(np.float32),
            "encoder.layer.0.attention.self.query.weight": rng.normal(size=(8, 8)).astype(np.float32),
            "encoder.layer.0.intermediate.dense.weight": rng.normal(size=(33, 8)).astype(np.float32),
            "encoder.layer.0.intermediate.dense.bias": rng.normal(size=33).astype(np.float32),
            "encoder.layer.0.output.LayerNorm.weight": np.ones(8, np.float32),
            "pooler.dense.weight": rng.normal(size=(8, 8)).astype(np.float32),
            "classifier.weight": rng.normal(size=(2, 8)).astype(np.float32)}


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.8, 0.9, 0.999])
def test_each_scoped_matrix_loses_exactly_its_smallest_weights(sparsity):
    src = tensors()
    out, report = magnitude_prune(src, sparsity)
    for name, t in src.items():
        if not DEFAULT_SCOPE.covers(name, t.shape):
            assert np.array_equal(out[name], t), f"{name} must be untouched"
            continue
        k = round(sparsity * t.size)
        assert t.size - np.count_nonzero(out[name]) == k
        kept = np.abs(t[out[name] != 0])
        dropped = np.abs(t[out[name] == 0])
        assert not kept.size or not dropped.size or dropped.max() <= kept.min()
        assert np.array_equal(out[name][out[name] != 0], t[out[name] != 0])  # survivors keep their values
    assert set(report["tensors"]) == {"encoder.layer.0.attention.self.query.weight",
                                      "encoder.layer.0.intermediate.dense.weight"}


def test_ties_do_not_change_the_count():
    out, _ = magnitude_prune({"encoder.w.weight": np.ones((10, 10), np.float32)}, 0.8)
    assert np.count_nonzero(out["encoder.w.weight"]) == 20


def test_scope_is_configurable():
    scope = PruneScope(exclude=("embeddings", "classifier"))  # prune the pooler too
    out, report = magnitude_prune(tensors(), 0.5, scope)
    assert "pooler.dense.weight" in report["tensors"]
    assert np.count_nonzero(out["pooler.dense.weight"]) == 32


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), float("inf"), True, "0.9", None])
def test_sparsity_outside_zero_one_is_a_usage_error(bad, tmp_path):
    with pytest.raises(UsageError, match=r"sparsity must be a number in \[0, 1\)"):
        check_fraction(bad)
    with pytest.raises(UsageError, match=r"\[0, 1\)"):
        magnitude_prune(tensors(), bad)


def test_pruning_nothing_in_scope_is_a_usage_error():
    with pytest.raises(UsageError, match="nothing to prune"):
        magnitude_prune({"embeddings.word_embeddings.weight": np.ones((4, 4), np.float32)}, 0.5)


def test_pruned_artifact_is_a_new_canonical_directory(tmp_path):
    base = artifact_for(get_backbone(str(make_toy_dir(tmp_path / "toy"))))
    pruned = pruned_twin(base, 0.9)
    assert pruned.path != base.path and pruned.content_hash != base.content_hash
    assert pruned.sparsity == 0.9 and pruned.parent_hash == base.content_hash
    assert pruned.pretrained == base.pretrained and pruned.vocab_size == base.vocab_size
    assert (pruned.path / "config.json").read_text() == (base.path / "config.json").read_text()
    assert (pruned.path / "vocab.txt").is_file()
    meta = json.loads((pruned.path / "meta.json").read_text())
    assert meta["pruning"]["recovery"] == "none" and meta["pruning"]["tensors"] == 2
    from safetensors.numpy import load_file

    w = load_file(pruned.path / "model.safetensors")
    for name in (W1, W2):
        assert w[name].size - np.count_nonzero(w[name]) == round(0.9 * w[name].size)
    assert np.count_nonzero(w["embeddings.word_embeddings.weight"]) == w["embeddings.word_embeddings.weight"].size
    assert Artifact.load(pruned.path) == pruned
    assert pruned_twin(base, 0.9) == pruned  # cached, not rebuilt
    assert for_sparsity(base, "dense") == base and for_sparsity(base, "pruned90") == pruned
    with pytest.raises(UsageError, match="already pruned"):
        pruned_twin(pruned, 0.5)
    with pytest.raises(UsageError, match=r"\[0, 1\)"):
        pruned_twin(base, 1.0)


def test_old_artifacts_without_sparsity_fields_still_load(tmp_path):
    art = artifact_for(get_backbone(str(make_toy_dir(tmp_path / "toy"))))
    meta = art.summary()
    meta.pop("path"), meta.pop("sparsity"), meta.pop("parent_hash")
    (tmp_path / "toy" / "meta.json").write_text(json.dumps(meta))
    loaded = Artifact.load(tmp_path / "toy")
    assert loaded.sparsity == 0.0 and loaded.parent_hash is None


@needs_torch
def test_params_suite_reports_the_requested_sparsity_and_torch_holds_the_zeros(tiny_model_dir):
    from adapters.base import Numerics, Options
    from adapters.torch_hf.adapter import TorchHFAdapter
    from bench.cell import Cell
    from suites import params

    base = artifact_for(get_backbone(str(tiny_model_dir)))
    for name, target in (("dense", 0.0), ("pruned80", 0.8), ("pruned90", 0.9)):
        adapter = TorchHFAdapter()
        adapter.load(for_sparsity(base, name), Numerics("fp32", name), "cpu", Options(threads=1))
        cell = Cell(str(tiny_model_dir), "torch", "fp32", name, "cpu", "params")
        m = params.SUITE.run(adapter, cell, None).metrics
        assert m["target_sparsity"] == target
        assert m["scope_sparsity"] == pytest.approx(target, abs=1e-3)  # per-matrix rounding only
        assert m["nonzero"] == m["checkpoint_nonzero"] and m["total"] == m["checkpoint_total"]
        if target:
            assert m["sparsity"] < target  # embeddings (most of a tiny model) are kept dense
