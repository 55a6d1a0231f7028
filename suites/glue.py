"""GLUE accuracy: the cell's fine-tuned artifact evaluated on the task's dev split through adapter.encode/forward.

The same code runs for every runtime × precision × sparsity, so accuracy differences come from the runtime and
variant alone. Batches are sorted by length and padded to a few fixed lengths (multiples of 32), identical for
every runtime; shape-compiling runtimes then compile only a handful of shapes.

Before any cell runs (`prepare`), each glue cell gets its own artifact: the backbone fine-tuned on the cell's task
(the sparse-transfer checkpoint for pruned80/pruned90), or the reason it is recorded unrun. Glue cells never run
the one-shot pruned twins of bench/pruning.py: a pruned model's accuracy is only meaningful after pruning during
fine-tuning (sparse transfer), which is what `pruned80`/`pruned90` mean for a glue cell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from bench import exports
from bench.artifacts import artifact_for
from bench.catalogue import get_backbone
from bench.errors import CellError, CellSkipped, UsageError
from bench.executor import TrainJob
from bench.glue import data, evalcache, finetune, metrics
from bench.glue.batching import eval_batches, padded_length
from bench.glue.recipes import sparse_recipe_for, sparse_selection
from bench.glue.tasks import get_task
from bench.presparse import presparsified, recipe_for
from bench.pruning import SPARSITY_LEVELS, sparsity_of
from bench.runtimes import SPARSITIES, get_runtime
from suites.base import Ready, Suite, SuiteResult


@dataclass(frozen=True)
class GlueSettings:
    """[glue]: dev-set evaluation (fine-tuning hyper-parameters live in bench/glue/hparams.toml)."""

    batch_size: int = 32
    max_length: int = 128
    sparsities: tuple[str, ...] = ()  # sparsities that get glue cells (each is a sparse-transfer run); () = all
    train: bool = True  # false: cells whose fine-tuned checkpoint is not cached are skipped, not trained
    reuse: bool = True  # reuse a cached dev-set evaluation of the very same computation (bench/glue/evalcache.py)
    # fine-tuning seeds: each glue cell once per seed (its own fine-tune, sparse model and evaluation; the report
    # shows the median and the spread over seeds). (): the plan's seed alone, cells named as before
    seeds: tuple[int, ...] = field(default=(), metadata={"minimum": 0, "unique": True})


class Glue(Suite):
    name = "glue"
    settings_type = GlueSettings
    own_artifacts = True

    def validate(self, settings: GlueSettings, matrix) -> None:
        for t in matrix.tasks:
            get_task(t)
        if set(matrix.suites) == {"glue"} and not matrix.tasks:
            raise UsageError("suite glue needs GLUE tasks: [matrix] tasks = [\"mrpc\", ...]")
        for s in settings.sparsities:
            if s not in SPARSITIES:
                raise UsageError(f"[glue] sparsities: unknown sparsity {s!r}; choose from: {', '.join(SPARSITIES)}")

    def cells(self, base, settings: GlueSettings, scope, tasks: tuple[str, ...]) -> list:
        if base.sparsity not in (settings.sparsities or (base.sparsity,)):
            return []
        return [replace(base, suite=self.name, task=get_task(t).name, seed=s) for t in tasks
                for s in (settings.seeds or (None,))]

    def prepare(self, cells: list, settings: GlueSettings, context) -> dict:
        """Fine-tuned artifacts for every glue cell, trained once each (cached by recipe hash); with `train` off,
        only cached ones (the others are skipped with the reason)."""
        out, done = {}, {}
        for cell in cells:
            key = (cell.backbone, cell.task or "", cell.sparsity, cell.seed)
            failed = context.train_failures.get((self.name, *key))
            if failed:
                done.setdefault(key, Ready(None, failed, "failed"))
            if key not in done:
                done[key] = _artifact(cell, context.seed, context.threads, settings.train and context.train)
            ready = done[key]
            if ready.reason is None:
                ready = _forms_ready(cell, ready, context.criterion)
            if ready.reason is None:  # keyed even with reuse off: a fresh evaluation is kept for later runs
                try:
                    ready = replace(ready, reuse_key=evalcache.key(cell, ready.artifact, context.machine,
                                                                   context.threads, context.settings))
                except evalcache.CodeMissing as exc:  # never reuse blind: the cell fails, saying which module
                    ready = Ready(ready.artifact, str(exc), "failed")
            out[cell] = ready
        return out

    def trainings(self, cells: list, settings: GlueSettings, context) -> list:
        """A fine-tune per (backbone, task) whose checkpoint is not cached, a pre-sparsified backbone per pruned
        (backbone, sparsity) when a candidate transfers from it, and a pruned model per pruned cell's (backbone,
        task, sparsity), which needs its task's fine-tune (it distils from it), else the upstream model."""
        if not settings.train:
            return []
        jobs = {}
        for cell in cells:
            if cell.sparsity != "dense" and _upstream_needed(cell):
                for level in _upstream_chain(sparsity_of(cell.sparsity)):
                    up = replace(cell, task=None, sparsity=_SPARSITY_NAMES[level], seed=None)
                    key = (up.backbone, None, up.sparsity, None)
                    base = artifact_for(get_backbone(up.backbone), context.seed)
                    if key in jobs or not base.pretrained or _artifact(up, context.seed, context.threads,
                                                                      train=False).reason is None:
                        continue
                    before = jobs.get((up.backbone, None, _SPARSITY_NAMES.get(recipe_for(level).init), None))
                    jobs[key] = TrainJob(self.name, up, context.seed, f"upstream pruning of {up.backbone} to "
                                         f"{level:.0%}", needs=before.cell if before else None,
                                         cost=recipe_for(level).steps * 2)
            dense = replace(cell, sparsity="dense")
            for stage, need in ((0, dense), (1, cell)):
                key = (need.backbone, need.task, need.sparsity, need.seed)
                if key in jobs or (stage == 1 and cell.sparsity == "dense"):
                    continue
                base = artifact_for(get_backbone(need.backbone), context.seed)
                if not need.task or finetune.glue_unavailable(base, get_task(need.task)):
                    continue  # prepare records why, without training
                if _artifact(need, context.seed, context.threads, train=False).reason is None:
                    continue  # cached
                what = f"sparse transfer to {need.sparsity}" if stage else "fine-tune"
                first = jobs.get((dense.backbone, dense.task, "dense", dense.seed)) or jobs.get(
                    (need.backbone, None, need.sparsity, None))  # one dependency: the teacher, else the upstream model
                seeded = f" (seed {need.seed})" if need.seed is not None else ""
                jobs[key] = TrainJob(self.name, need, context.seed,
                                     f"{what} of {need.backbone} on {need.task}{seeded}",
                                     needs=first.cell if stage and first else None,
                                     cost=_steps(get_task(need.task), sparsity_of(need.sparsity)))
        return list(jobs.values())

    def train(self, job, threads: int) -> str | None:  # a job without a task is an upstream model
        return _artifact(job.cell, job.seed, threads, train=True).reason

    def recall(self, key: str | None, settings: GlueSettings) -> dict | None:
        return evalcache.lookup(key) if settings.reuse else None

    def remember(self, key: str | None, fields: dict) -> None:
        evalcache.store(key, fields)

    def summary(self, cell, metrics: dict, runtime: dict) -> str:
        detail = f"{cell.task} dev {metrics['metric']} {100 * metrics[metrics['metric']]:.2f} (n={metrics['n']})"
        reused = runtime.get("eval_cache")
        return detail + (f", reused evaluation of {reused['measured_finished']}" if reused else "")

    def run(self, adapter, cell, settings: GlueSettings) -> SuiteResult:
        return measure(adapter, cell, settings)


_SPARSITY_NAMES = {v: k for k, v in SPARSITY_LEVELS.items()}


def _upstream_needed(cell) -> bool:
    """Whether a pruned cell's candidates include a sparse transfer (it needs the pre-sparsified backbone)."""
    return bool(cell.task) and any(
        sparse_recipe_for(get_task(cell.task), sparsity_of(cell.sparsity), candidate=c).method == "transfer"
        for c in sparse_selection().candidates)


def _upstream_chain(level: float) -> list[float]:
    """The upstream models a pre-sparsified model at `level` is built from, lowest first, itself last."""
    chain = [level]
    while recipe_for(chain[0]).init:
        chain.insert(0, recipe_for(chain[0]).init)
    return chain


def _artifact(cell, seed: int, threads: int, train: bool) -> Ready:
    """The cell's checkpoint: `seed` is the plan's (base weights; the fine-tune's too unless the cell has its own)."""
    base = artifact_for(get_backbone(cell.backbone), seed)
    tune = seed if cell.seed is None else cell.seed
    if not cell.task and cell.sparsity != "dense":  # an upstream training job's cell
        try:
            return Ready(presparsified(base, sparsity_of(cell.sparsity), threads, build=train))
        except CellSkipped as exc:
            return Ready(base, str(exc))
        except CellError as exc:
            return Ready(base, str(exc), "failed")
    if not cell.task:
        return Ready(base, "glue cell without a task", "failed")
    task = get_task(cell.task)
    why = finetune.glue_unavailable(base, task)
    if why:
        return Ready(base, why)
    level = sparsity_of(cell.sparsity)
    try:
        if level:
            return Ready(finetune.select_sparse(base, task, level, tune, threads, build=train))
        return Ready(finetune.finetuned(base, task, tune, threads, build=train))
    except CellSkipped as exc:
        return Ready(base, str(exc))
    except CellError as exc:
        return Ready(base, str(exc), "failed")


def _steps(task, sparsity: float) -> float:
    """Optimizer steps of the task's recipe (fine-tune, or sparse transfer to `sparsity`): a training's cost."""
    from bench.glue.recipes import hparams_for

    rows = ((data.manifest(task) or {}).get("splits", {}).get("train") or {}).get("rows") or 1
    hp = hparams_for(task)
    epochs = sum(sparse_recipe_for(task, sparsity, candidate=c).epochs
                 for c in sparse_selection().candidates) if sparsity else hp.epochs
    return -(-rows // hp.batch_size) * epochs


def _forms_ready(cell, ready: Ready, criterion) -> Ready:
    """A runtime that runs an exported file (ONNX) needs it cached or buildable here, intact and agreeing with
    torch; otherwise the cell fails with the reason instead of stopping the whole run."""
    form = get_runtime(cell.runtime).form(cell.precision)
    why = exports.resolve(ready.artifact, form, criterion) if form else None
    if why:
        return Ready(ready.artifact, f"{cell.task} checkpoint: {why}", "failed")
    return ready


def measure(adapter, cell, settings: GlueSettings) -> SuiteResult:
    if not cell.task:
        raise CellError("glue suite needs a cell with a task")
    task = get_task(cell.task)
    art = adapter.artifact
    if not art.pretrained:
        raise CellSkipped(f"{cell.backbone} has random weights (pretrained: false): never an accuracy number")
    if art.task != task.name:
        raise CellError(f"artifact {art.path} is fine-tuned for {art.task!r}, not {task.name!r}")
    try:
        dev = data.load_split(task, "dev")
    except data.DataMissing as exc:
        raise CellSkipped(str(exc)) from exc
    outputs, seconds, tokens = evaluate(adapter, dev, settings.batch_size, settings.max_length)
    preds = metrics.predictions(task, outputs)
    result = metrics.compute(task, preds, dev.labels)
    # every prediction, in dev order: the report's paired intervals compare rows on the very same examples
    kept = {"predictions": [round(float(v), 5) if task.is_regression else int(v) for v in preds],
            "labels": [float(v) if task.is_regression else int(v) for v in dev.labels]}
    chosen = finetune.selection_of(art)
    result |= {"sparse_selection": chosen} if chosen else {}
    return SuiteResult(result | {
        "metric": task.headline, "n": len(dev), "eval_s": seconds, "split": "dev",
        "sequences_per_s": len(dev) / seconds, "tokens_per_s": tokens / seconds,
        "batch_size": settings.batch_size, "max_length": settings.max_length,
        "dev_sha256": data.manifest(task)["splits"]["dev"]["sha256"]}, samples=kept)


def evaluate(adapter, split: data.Split, batch_size: int, max_length: int) -> tuple[np.ndarray, float, int]:
    """Outputs for every example in the split's order, forward seconds (encode excluded), padded tokens."""
    lengths = adapter.tokenizer.encode(split.text_a, split.text_b, max_length=max_length,
                                       pad_to_max=False).attention_mask.sum(axis=1)
    outputs: np.ndarray | None = None
    seconds, tokens = 0.0, 0
    for idx in eval_batches(lengths, batch_size):
        width = padded_length(lengths[idx].max(), max_length)
        batch = adapter.encode([split.text_a[i] for i in idx],
                               [split.text_b[i] for i in idx] if split.text_b is not None else None,
                               max_length=width, pad_to_max=True)
        start = time.perf_counter()
        out = np.asarray(adapter.forward(batch), dtype=np.float32)
        seconds += time.perf_counter() - start
        tokens += int(np.prod(batch.shape))
        out = out.reshape(len(idx), -1)
        if outputs is None:
            outputs = np.zeros((len(split), out.shape[1]), dtype=np.float32)
        outputs[idx] = out
    return outputs, seconds, tokens


SUITE = Glue()
