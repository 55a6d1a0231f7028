"""Plans: a preset (TOML) plus CLI overrides expand into cells, the unit of measurement and of failure."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from bench.agreement import Agreement, from_table
from bench.catalogue import get_backbone
from bench.errors import UsageError
from bench.runtimes import DEVICES, PRECISIONS, SPARSITIES, get_runtime

SUITES = ("params", "latency", "throughput", "parity", "glue")
PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class Cell:
    """One measurement. `batch`/`seq_len` are 0 for suites that have no shape (params)."""

    backbone: str
    runtime: str
    precision: str
    sparsity: str
    device: str
    suite: str
    batch: int = 0
    seq_len: int = 0
    task: str | None = None

    @property
    def label(self) -> str:
        shape = f" b{self.batch} s{self.seq_len}" if self.batch else ""
        task = f" {self.task}" if self.task else ""
        return (f"{self.backbone} {self.runtime} {self.precision} {self.sparsity} {self.device} "
                f"{self.suite}{task}{shape}")

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LatencySettings:
    seq_lens: tuple[int, ...] = (32, 128, 384)
    warmup_iters: int = 3
    warmup_s: float = 1.0
    min_iters: int = 20
    min_time_s: float = 5.0
    max_time_s: float = 60.0


@dataclass(frozen=True)
class ThroughputSettings:
    seq_len: int = 128
    batches: tuple[int, ...] = (1, 8, 32)
    warmup_iters: int = 1
    warmup_s: float = 0.0
    min_iters: int = 3
    min_time_s: float = 3.0
    max_time_s: float = 60.0


@dataclass(frozen=True)
class GlueSettings:
    """Dev-set evaluation of the glue suite (fine-tuning hyper-parameters live in bench/glue/hparams.toml)."""

    batch_size: int = 32
    max_length: int = 128
    sparsities: tuple[str, ...] = ()  # sparsities that get glue cells (each is a sparse-transfer run); () = all
    train: bool = True  # false: cells whose fine-tuned checkpoint is not cached are skipped, not trained
    reuse: bool = True  # reuse a cached dev-set evaluation of the very same computation (bench/glue/evalcache.py)


@dataclass(frozen=True)
class Matrix:
    backbones: tuple[str, ...] = ("minilm-l6-h384", "bert-base-uncased")
    runtimes: tuple[str, ...] = ("torch",)
    precisions: tuple[str, ...] = ("fp32",)
    sparsities: tuple[str, ...] = ("dense",)
    devices: tuple[str, ...] = ("cpu",)
    suites: tuple[str, ...] = SUITES
    tasks: tuple[str, ...] = ()  # GLUE tasks of the glue suite (bench/glue/tasks.py names); other suites: none


@dataclass(frozen=True)
class RuntimeScope:
    """A preset's [runtime.NAME] table: narrows the matrix for one runtime (e.g. fewer suites for a slow
    one). Each listed axis keeps only the values also in the matrix, so command-line overrides still apply."""

    precisions: tuple[str, ...] | None = None
    sparsities: tuple[str, ...] | None = None
    suites: tuple[str, ...] | None = None
    seq_lens: tuple[int, ...] | None = None  # latency sequence lengths
    batches: tuple[int, ...] | None = None  # throughput batch sizes

    def keep(self, axis: str, values: tuple) -> tuple:
        allowed = getattr(self, axis)
        return values if allowed is None else tuple(v for v in values if v in allowed)


@dataclass(frozen=True)
class Plan:
    matrix: Matrix = field(default_factory=Matrix)
    latency: LatencySettings = field(default_factory=LatencySettings)
    throughput: ThroughputSettings = field(default_factory=ThroughputSettings)
    glue: GlueSettings = field(default_factory=GlueSettings)
    parity: Agreement = field(default_factory=Agreement)  # fp32 agreement with torch (export check and parity)
    scopes: dict[str, RuntimeScope] = field(default_factory=dict)  # runtime name -> narrowing
    threads: int = 0  # 0: one per physical core
    timeout_s: float = 900.0
    seed: int = 0
    isolate: str = "variant"  # one worker process per variant (loaded once) or per "cell" (bench/runner.py)
    name: str = "custom"

    def cells(self) -> list[Cell]:
        return expand(self)

    def settings(self) -> dict:
        return {"latency": asdict(self.latency), "throughput": asdict(self.throughput), "glue": asdict(self.glue),
                "parity": self.parity.describe(), "threads": self.threads, "timeout_s": self.timeout_s,
                "seed": self.seed, "isolate": self.isolate}


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str) -> Plan:
    """A preset by name (bench/presets/NAME.toml) or a path to a TOML file of the same shape."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise UsageError(f"unknown preset {name_or_path!r}; choose from: {', '.join(list_presets())}"
                             " or give a .toml file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(f"preset file {path} not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from exc
    return plan_from_dict(data, name=path.stem, where=str(path))


def plan_from_dict(data: dict, name: str = "custom", where: str = "preset") -> Plan:
    known = {"matrix", "latency", "throughput", "glue", "parity", "run", "runtime"}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{where}: unknown section(s) {sorted(unknown)}; allowed: {sorted(known)}")
    run = _section(data, "run", where)
    extra = set(run) - {"threads", "timeout_s", "seed", "isolate"}
    if extra:
        raise UsageError(f"{where}: unknown key(s) in [run]: {sorted(extra)}")
    plan = Plan(
        matrix=_build(Matrix, _section(data, "matrix", where), f"{where} [matrix]"),
        latency=_build(LatencySettings, _section(data, "latency", where), f"{where} [latency]"),
        throughput=_build(ThroughputSettings, _section(data, "throughput", where), f"{where} [throughput]"),
        glue=_build(GlueSettings, _section(data, "glue", where), f"{where} [glue]"),
        parity=from_table(_section(data, "parity", where), where),
        threads=_int(run.get("threads", 0), f"{where} [run] threads", minimum=0),
        timeout_s=_num(run.get("timeout_s", 900.0), f"{where} [run] timeout_s"),
        seed=_int(run.get("seed", 0), f"{where} [run] seed", minimum=0),
        isolate=_isolate(run.get("isolate", "variant"), f"{where} [run] isolate"),
        scopes=_scopes(_section(data, "runtime", where), where),
        name=name,
    )
    validate(plan)
    return plan


def _scopes(tables: dict, where: str) -> dict[str, RuntimeScope]:
    out = {}
    for runtime, values in tables.items():
        get_runtime(runtime)
        if not isinstance(values, dict):
            raise UsageError(f"{where}: [runtime.{runtime}] must be a table")
        unknown = set(values) - {f.name for f in fields(RuntimeScope)}
        if unknown:
            raise UsageError(f"{where}: unknown key(s) in [runtime.{runtime}]: {sorted(unknown)}; allowed: "
                             f"{sorted(f.name for f in fields(RuntimeScope))}")
        parsed = {}
        for key, value in values.items():
            if not isinstance(value, list) or not value:
                raise UsageError(f"{where}: [runtime.{runtime}] {key} must be a non-empty list")
            if key in ("seq_lens", "batches"):
                parsed[key] = tuple(_int(v, f"{where}: [runtime.{runtime}] {key}", minimum=1) for v in value)
            elif not all(isinstance(v, str) for v in value):
                raise UsageError(f"{where}: [runtime.{runtime}] {key} must be a list of strings")
            else:
                parsed[key] = tuple(value)
        out[runtime] = RuntimeScope(**parsed)
    return out


def _section(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: [{key}] must be a table")
    return value


def _build(cls, values: dict, where: str):
    """Dataclass from a TOML table with type checks: lists become tuples, numbers must be positive."""
    defaults = {f.name: getattr(cls(), f.name) for f in fields(cls)}
    unknown = set(values) - set(defaults)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
    out = {}
    for key, value in values.items():
        default = defaults[key]
        if isinstance(default, tuple):
            if not isinstance(value, list) or not value:
                raise UsageError(f"{where}: {key} must be a non-empty list")
            kind = type(default[0]) if default else str
            if kind is int:
                out[key] = tuple(_int(v, f"{where}: {key}", minimum=1) for v in value)
            else:
                if not all(isinstance(v, str) for v in value):
                    raise UsageError(f"{where}: {key} must be a list of strings")
                out[key] = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise UsageError(f"{where}: {key} must be true or false, got {value!r}")
            out[key] = value
        elif isinstance(default, float):
            out[key] = _num(value, f"{where}: {key}")
        else:
            out[key] = _int(value, f"{where}: {key}", minimum=0)
    return cls(**out)


def _int(value, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UsageError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


ISOLATION = ("variant", "cell")


def _isolate(value, where: str) -> str:
    if value not in ISOLATION:
        raise UsageError(f"{where} must be one of {', '.join(ISOLATION)}, got {value!r}")
    return value


def _num(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0 or value == float("inf"):
        raise UsageError(f"{where} must be a finite number >= 0, got {value!r}")
    return float(value)


def with_overrides(plan: Plan, **matrix: tuple[str, ...] | None) -> Plan:
    """Replace matrix axes given on the command line; None leaves the preset's value."""
    given = {k: tuple(v) for k, v in matrix.items() if v}
    new = replace(plan, matrix=replace(plan.matrix, **given))
    validate(new, strict_axes=tuple(given))
    return new


def validate(plan: Plan, strict_axes: tuple[str, ...] | None = None) -> None:
    """Every name must exist, and every value of a strict axis (all axes of a preset; the axes given on
    the command line for overrides) must occur in at least one runnable cell."""
    m = plan.matrix
    seq_lens = set(plan.latency.seq_lens) | {plan.throughput.seq_len}
    for b in m.backbones:
        limit = get_backbone(b).config.get("max_position_embeddings", 512)
        too_long = sorted(n for n in seq_lens if n > limit)
        if too_long:
            raise UsageError(f"sequence length {too_long[0]} exceeds {b}'s max_position_embeddings ({limit})")
    if min(seq_lens) < 2:
        raise UsageError("sequence lengths must be >= 2 ([CLS] and [SEP] alone take two tokens)")
    for r in m.runtimes:
        get_runtime(r)
    _validate_glue(plan)
    for axis, values, allowed in (("precision", m.precisions, PRECISIONS), ("device", m.devices, DEVICES),
                                  ("sparsity", m.sparsities, SPARSITIES), ("suite", m.suites, SUITES)):
        for v in values:
            if v not in allowed:
                raise UsageError(f"unknown {axis} {v!r}; choose from: {', '.join(allowed)}")
    for r, sc in plan.scopes.items():
        get_runtime(r)
        for axis, values, allowed in (("precision", sc.precisions, PRECISIONS),
                                      ("sparsity", sc.sparsities, SPARSITIES), ("suite", sc.suites, SUITES)):
            for v in values or ():
                if v not in allowed:
                    raise UsageError(f"[runtime.{r}]: unknown {axis} {v!r}; choose from: {', '.join(allowed)}")
    combos = [(r, p, d, s) for r in m.runtimes for p in _scope(plan, r).keep("precisions", m.precisions)
              for d in m.devices for s in _scope(plan, r).keep("sparsities", m.sparsities)
              if get_runtime(r).supports(p, d, s)]
    for axis, field_name, index in (("precision", "precisions", 1), ("device", "devices", 2),
                                    ("sparsity", "sparsities", 3), ("runtime", "runtimes", 0)):
        if strict_axes is not None and field_name not in strict_axes:
            continue
        for v in getattr(m, field_name):
            if not any(c[index] == v for c in combos):
                valid = ", ".join(f"{r}:{d}:{'/'.join(get_runtime(r).precisions.get(d, ()))}"
                                  for r in m.runtimes for d in m.devices)
                raise UsageError(f"no runnable cell has {axis} {v!r} with the selected runtimes/devices/"
                                 f"precisions; supported runtime:device:precisions are {valid}")
    if not combos:
        raise UsageError("no runnable cell: no selected runtime supports the selected precision/device/"
                         "sparsity combinations")


def _validate_glue(plan: Plan) -> None:
    from bench.glue.tasks import get_task

    for t in plan.matrix.tasks:
        get_task(t)
    if set(plan.matrix.suites) == {"glue"} and not plan.matrix.tasks:
        raise UsageError("suite glue needs GLUE tasks: [matrix] tasks = [\"mrpc\", ...]")
    for s in plan.glue.sparsities:
        if s not in SPARSITIES:
            raise UsageError(f"[glue] sparsities: unknown sparsity {s!r}; choose from: {', '.join(SPARSITIES)}")


def _scope(plan: Plan, runtime: str) -> RuntimeScope:
    return plan.scopes.get(runtime) or RuntimeScope()


def expand(plan: Plan) -> list[Cell]:
    """Cross product of the matrix (narrowed per runtime by [runtime.NAME]), unsupported combinations
    dropped, shapes from the suite settings."""
    m, cells = plan.matrix, []
    for b in m.backbones:
        backbone = get_backbone(b).name
        for r in m.runtimes:
            rt, scope = get_runtime(r), _scope(plan, r)
            for d in m.devices:
                for p in scope.keep("precisions", m.precisions):
                    for s in scope.keep("sparsities", m.sparsities):
                        if not rt.supports(p, d, s):
                            continue
                        base = Cell(backbone, r, p, s, d, "params")
                        for suite in scope.keep("suites", m.suites):
                            if suite in ("params", "parity"):
                                cells.append(replace(base, suite=suite))
                            elif suite == "latency":
                                cells += [replace(base, suite=suite, batch=1, seq_len=n)
                                          for n in scope.keep("seq_lens", plan.latency.seq_lens)]
                            elif suite == "throughput":
                                cells += [replace(base, suite=suite, batch=bs, seq_len=plan.throughput.seq_len)
                                          for bs in scope.keep("batches", plan.throughput.batches)]
                            elif suite == "glue" and s in (plan.glue.sparsities or (s,)):
                                cells += [replace(base, suite=suite, task=_task_name(t)) for t in m.tasks]
    return cells


def _task_name(name: str) -> str:
    from bench.glue.tasks import get_task

    return get_task(name).name
