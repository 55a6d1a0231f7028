"""Pre-sparsified backbones, sparse transfer with a fixed mask and recipe selection on a train hold-out (issue 21).

The tiny model of tests/conftest.py and the tiny RTE copy of tests/glue_fixtures.py; upstream pruning runs a few
steps on a small corpus written here.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from bench.errors import UsageError
from bench.glue import data, finetune
from bench.glue.recipes import SparseRecipe, lr_factor, sparse_recipe_for, sparsity_at
from bench.glue.tasks import get_task, parse_tasks
from bench.presparse import load_corpus, presparsified, recipe_for
from tests.conftest import HAS_TORCH, make_tiny_model
from tests.glue_fixtures import known_table, write_glue

torch_only = [pytest.mark.torch, pytest.mark.skipif(not HAS_TORCH, reason="needs the torch extra")]


def _corpus(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "a.txt").write_text("\n".join(f"the quick brown fox number {i} jumps over the lazy dog ." for i in
                                          range(400)), encoding="utf-8")
    return root


def test_a_missing_empty_or_binary_corpus_is_one_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        load_corpus(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no .txt files"):
        load_corpus(tmp_path / "empty")
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "a.txt").write_text("  \n\n")
    with pytest.raises(UsageError, match="hold no text"):
        load_corpus(tmp_path / "blank")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_corpus(tmp_path / "bad")


def test_the_corpus_hash_follows_its_content(tmp_path):
    one = load_corpus(_corpus(tmp_path / "c"))
    (tmp_path / "c" / "a.txt").write_text("other words entirely .", encoding="utf-8")
    assert load_corpus(tmp_path / "c").sha256 != one.sha256


def test_upstream_recipes_reject_unknown_keys_and_a_sparsity_outside_0_1(tmp_path):
    bad = tmp_path / "h.toml"
    bad.write_text("[upstream]\nsteps = 3\nlr = 1\n")
    with pytest.raises(UsageError, match="unknown key.*allowed"):
        recipe_for(0.8, bad)
    with pytest.raises(UsageError, match=r"\[0, 1\)"):
        recipe_for(1.0)
    assert recipe_for(0.9).init == 0.8  # the 90% model continues from the 80% one


def test_sparse_candidates_name_their_allowed_keys_and_methods(tmp_path):
    doc = tmp_path / "h.toml"
    doc.write_text("[sparse.candidates.x]\nmethod = \"magic\"\n")
    with pytest.raises(UsageError, match="method must be one of gmp, transfer"):
        sparse_recipe_for(get_task("rte"), 0.8, doc, candidate="x")
    with pytest.raises(UsageError, match="no \\[sparse.candidates.y\\]"):
        sparse_recipe_for(get_task("rte"), 0.8, doc, candidate="y")


def test_one_shot_starts_the_cubic_schedule_and_rewinding_restarts_the_rate_at_each_pruning_step():
    r = SparseRecipe(target=0.8, one_shot=0.3, prune_end=0.5, prune_updates=5, rewind=True)
    assert sparsity_at(0, 100, r) == pytest.approx(0.3)
    assert sparsity_at(50, 100, r) == pytest.approx(0.8)
    assert all(sparsity_at(s, 100, r) <= sparsity_at(s + 1, 100, r) for s in range(99))
    rates = [lr_factor(s, 100, 0, r) for s in range(100)]
    assert [s for s in range(1, 50) if rates[s] > rates[s - 1]] == [10, 20, 30, 40]  # rewound at each update
    assert rates[50] == 1.0 and rates[99] < 0.05
    plain = dataclasses.replace(r, rewind=False)
    assert all(lr_factor(s, 100, 0, plain) >= lr_factor(s + 1, 100, 0, plain) for s in range(99))


def test_a_holdout_cut_is_fixed_disjoint_and_complete():
    keep, held = data.holdout_rows(100, 0.1, seed=0)
    assert len(held) == 10 and not set(keep) & set(held) and len(keep) + len(held) == 100
    assert np.array_equal(held, data.holdout_rows(100, 0.1, seed=0)[1])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from bench.artifacts import artifact_for
    from bench.catalogue import get_backbone

    root = tmp_path_factory.mktemp("presparse")
    mp = pytest.MonkeyPatch()
    mp.setenv("BENCH_CACHE", str(root / "cache"))
    mp.setenv(finetune.INPROCESS_ENV, "1")
    mp.delenv(data.GLUE_DIR_ENV, raising=False)
    glue = write_glue(root / "glue")
    data.import_dir(glue, parse_tasks("rte"), known=known_table(glue))
    model = make_tiny_model(root / "tiny")
    corpus = load_corpus(_corpus(root / "corpus"))
    yield {"root": root, "base": artifact_for(get_backbone(str(model))), "corpus": corpus}
    mp.undo()


@pytest.mark.parametrize("_", [0], ids=[""])
class TestTorch:
    pytestmark = torch_only

    @pytest.fixture(autouse=True)
    def _module_cache(self, env, monkeypatch):
        monkeypatch.setenv("BENCH_CACHE", str(env["root"] / "cache"))
        monkeypatch.setenv(finetune.INPROCESS_ENV, "1")
        monkeypatch.delenv(data.GLUE_DIR_ENV, raising=False)

    def test_upstream_pruning_gives_a_cached_base_artifact_at_the_target_with_recipe_and_corpus_hash(self, env, _):
        from bench.pruning import scope_sparsity

        recipe = dataclasses.replace(recipe_for(0.8), steps=3, batch_size=2, seq_len=16)
        art = presparsified(env["base"], 0.8, recipe=recipe, corpus=env["corpus"])
        assert scope_sparsity(art.path / "model.safetensors")["scope_sparsity"] == pytest.approx(0.8, abs=1e-3)
        meta = json.loads((art.path / "meta.json").read_text())
        assert meta["pruning"]["corpus"]["sha256"] == env["corpus"].sha256 and meta["task"] is None
        assert meta["pruning"]["stats"]["held_out_after"]["windows"] >= 1
        again = presparsified(env["base"], 0.8, recipe=recipe, corpus=env["corpus"], build=False)
        assert again.path == art.path

    def test_sparse_transfer_keeps_the_mask_and_a_candidate_reports_its_holdout_score(self, env, _, monkeypatch):
        from bench import presparse
        from bench.glue.recipes import SparseSelection
        from bench.pruning import scope_sparsity

        recipe = dataclasses.replace(recipe_for(0.8), steps=3, batch_size=2, seq_len=16)
        up = presparsified(env["base"], 0.8, recipe=recipe, corpus=env["corpus"])
        monkeypatch.setattr(presparse, "presparsified", lambda *a, **k: up)
        task = get_task("rte")
        sp = dataclasses.replace(sparse_recipe_for(task, 0.8, candidate="transfer"), epochs=1)
        art = finetune.sparse_transfer(env["base"], task, 0.8, 0, recipe=sp, holdout=SparseSelection(holdout=0.25))
        from safetensors.numpy import load_file

        before, after = load_file(up.path / "model.safetensors"), load_file(art.path / "model.safetensors")
        name = "encoder.layer.0.attention.self.query.weight"
        trained = next(k for k in after if k.endswith(name))
        assert np.array_equal(before[name] == 0, after[trained] == 0)  # the upstream mask, kept exactly
        assert scope_sparsity(art.path / "model.safetensors")["scope_sparsity"] == pytest.approx(0.8, abs=1e-3)
        stats = json.loads((art.path / "meta.json").read_text())["finetune"]["stats"]
        assert stats["holdout"]["n"] >= 1 and "accuracy" in stats["holdout"]

    def test_with_upstream_pruning_a_pruned_cell_of_a_pretrained_backbone_runs_its_presparsified_backbone(
            self, env, _, monkeypatch):
        """[run] pruning = "upstream": the speed cells' pruned80 artifact is the upstream-pruned model (trained on
        first use), dense stays the base; with training off and nothing cached the pruned cells fail with that
        reason and the dense ones still have their artifact."""
        from bench import presparse
        from bench.plan import plan_from_dict
        from bench.preparation import prepare_artifacts

        small = dataclasses.replace(recipe_for(0.8), steps=4, batch_size=2, seq_len=16)  # not cached by another test
        monkeypatch.setattr(presparse, "recipe_for", lambda target, path=None: small)
        monkeypatch.setenv("BENCH_CORPUS_DIR", str(env["corpus"].root))
        name = env["base"].backbone

        def plan(**run):
            return plan_from_dict({"matrix": {"backbones": [name], "sparsities": ["dense", "pruned80"],
                                              "suites": ["params"]}, "run": run})

        off = plan(pruning="upstream").with_settings("glue", train=False)
        cold = prepare_artifacts(off.cells(), off)
        assert "not cached" in cold.failed[name, "pruned80"] and (name, "dense") in cold.artifacts
        up = prepare_artifacts(plan(pruning="upstream").cells(), plan(pruning="upstream"))
        art = up.artifacts[name, "pruned80"]
        assert art.path.name.split("-")[-2] == "upstream80" and art.path == presparsified(env["base"], 0.8).path
        assert up.artifacts[name, "dense"].path == env["base"].path
        twin = prepare_artifacts(plan().cells(), plan()).artifacts[name, "pruned80"]
        assert "-pruned80-" in twin.path.name and twin.content_hash != art.content_hash

    def test_a_checkpoint_whose_zeros_do_not_match_the_mask_is_refused(self, env, _):
        import torch
        from transformers import AutoModel

        from adapters.build.torch_finetune import Pruner
        from bench.pruning import DEFAULT_SCOPE

        model = AutoModel.from_pretrained(env["base"].path, local_files_only=True)
        with torch.no_grad(), pytest.raises(ValueError, match="mask does not match the checkpoint"):
            Pruner(model, DEFAULT_SCOPE).fix(0.8)  # a dense checkpoint is not an 80% one
