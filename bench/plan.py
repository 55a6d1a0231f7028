"""Plans: a preset (TOML) plus CLI overrides expand into cells, the unit of measurement and of failure."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path

from bench.agreement import Agreement
from bench.catalogue import get_backbone
from bench.cell import Cell
from bench.config import from_table, integer, number
from bench.errors import UsageError
from bench.recipes import INT8_FORMS, ort_int8
from bench.runtimes import DEVICES, PRECISIONS, SPARSITIES, get_runtime
from suites import NAMES as SUITE_NAMES
from suites import all_suites, get_suite

PRESET_DIR = Path(__file__).parent / "presets"
RUN_KEYS = ("threads", "timeout_s", "seed", "isolate", "rounds", "live_workers", "pruning")
ISOLATION = ("variant", "cell")
# what a pruned80/pruned90 cell of a pretrained backbone runs: its magnitude-pruned twin (bench/pruning.py, no
# recovery, built in seconds) or its pre-sparsified backbone (bench/presparse.py: upstream pruning with
# distillation, 10-20 min of training per sparsity on 2 cores). Random-weight backbones always get the twin.
PRUNING_SOURCES = ("magnitude", "upstream")


def default_settings() -> dict[str, object]:
    """Every suite's settings at its defaults (suite name -> its settings dataclass)."""
    return {suite.name: suite.settings_type() for suite in all_suites()}


@dataclass(frozen=True)
class Matrix:
    backbones: tuple[str, ...] = ("minilm-l6-h384", "bert-base-uncased")
    runtimes: tuple[str, ...] = ("torch",)
    precisions: tuple[str, ...] = ("fp32",)
    sparsities: tuple[str, ...] = ("dense",)
    devices: tuple[str, ...] = ("cpu",)
    suites: tuple[str, ...] = SUITE_NAMES
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
    # the runtime's own settings (OpenVINO properties), names from Runtime.properties; every record carries them
    properties: dict[str, object] | None = None

    def keep(self, axis: str, values: tuple) -> tuple:
        allowed = getattr(self, axis)
        return values if allowed is None else tuple(v for v in values if v in allowed)


@dataclass(frozen=True)
class Plan:
    matrix: Matrix = field(default_factory=Matrix)
    suite_settings: dict[str, object] = field(default_factory=default_settings)  # suite name -> its settings
    scopes: dict[str, RuntimeScope] = field(default_factory=dict)  # runtime name -> narrowing
    threads: int = 0  # 0: one per physical core
    timeout_s: float = 900.0
    seed: int = 0
    isolate: str = "variant"  # one worker process per variant (loaded once) or per "cell" (bench/local.py)
    rounds: int = 0  # > 0: timed cells of all variants measured interleaved in this many rounds (bench/rounds.py)
    live_workers: int = 8  # with rounds: variants loaded at once (each holds its model in memory)
    pruning: str = "magnitude"  # PRUNING_SOURCES: where a pruned speed cell's weights come from
    name: str = "custom"

    def cells(self) -> list[Cell]:
        return list(self._cells)

    @cached_property
    def _cells(self) -> tuple[Cell, ...]:
        return tuple(expand(self))  # once per plan: runner, preparation and CLI share one expansion

    def settings_of(self, suite: str):
        """The typed settings of `suite` (its defaults where the plan's table did not set them)."""
        return self.suite_settings.get(suite) or get_suite(suite).settings_type()

    def with_settings(self, suite: str, **changes) -> Plan:
        return replace(self, suite_settings=self.suite_settings | {suite: replace(self.settings_of(suite), **changes)})

    @property
    def criterion(self) -> Agreement:
        """fp32 agreement with the reference configuration: the parity suite's settings, which also judge every
        fp32 export."""
        return self.settings_of("parity")

    def record_settings(self, threads: int) -> dict:
        """The settings every record of a run carries: each suite's, then the run's."""
        described = {s.name: s.describe(self.settings_of(s.name)) for s in all_suites()}
        properties = {r: sc.properties for r, sc in self.scopes.items() if sc.properties}
        return {k: v for k, v in described.items() if v is not None} | {
            "threads": threads, "timeout_s": self.timeout_s, "seed": self.seed, "isolate": self.isolate,
            "rounds": self.rounds, "live_workers": self.live_workers, "pruning": self.pruning} | (
            {"properties": properties} if properties else {})


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
    tables = {suite.name: suite for suite in all_suites() if suite.describe(suite.settings_type()) is not None}
    known = {"matrix", "run", "runtime", *tables}
    unknown = set(data) - known
    if unknown:
        raise UsageError(f"{where}: unknown section(s) {sorted(unknown)}; allowed: {sorted(known)}")
    run = _section(data, "run", where)
    extra = set(run) - set(RUN_KEYS)
    if extra:
        raise UsageError(f"{where}: unknown key(s) in [run]: {sorted(extra)}")
    plan = Plan(
        matrix=from_table(Matrix, _section(data, "matrix", where), f"{where} [matrix]"),
        suite_settings=default_settings() | {
            name: suite.settings_from_table(_section(data, name, where), where) for name, suite in tables.items()},
        threads=integer(run.get("threads", 0), f"{where} [run] threads", minimum=0),
        timeout_s=number(run.get("timeout_s", 900.0), f"{where} [run] timeout_s"),
        seed=integer(run.get("seed", 0), f"{where} [run] seed", minimum=0),
        isolate=_choice(run.get("isolate", "variant"), ISOLATION, f"{where} [run] isolate"),
        rounds=integer(run.get("rounds", 0), f"{where} [run] rounds", minimum=0),
        live_workers=integer(run.get("live_workers", 8), f"{where} [run] live_workers", minimum=2),
        pruning=_choice(run.get("pruning", "magnitude"), PRUNING_SOURCES, f"{where} [run] pruning"),
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
            if key == "properties":
                parsed[key] = _properties(runtime, value, f"{where}: [runtime.{runtime}] properties")
                continue
            if not isinstance(value, list) or not value:
                raise UsageError(f"{where}: [runtime.{runtime}] {key} must be a non-empty list")
            if key in ("seq_lens", "batches"):
                parsed[key] = tuple(integer(v, f"{where}: [runtime.{runtime}] {key}", minimum=1) for v in value)
            elif not all(isinstance(v, str) for v in value):
                raise UsageError(f"{where}: [runtime.{runtime}] {key} must be a list of strings")
            else:
                parsed[key] = tuple(value)
        out[runtime] = RuntimeScope(**parsed)
    return out


def _properties(runtime: str, value, where: str) -> dict[str, object]:
    """A runtime's own settings: a table of names it declares (Runtime.properties) to strings, numbers or booleans."""
    allowed = get_runtime(runtime).properties
    if not allowed:
        raise UsageError(f"{where}: runtime {runtime!r} takes no properties")
    if not isinstance(value, dict):
        raise UsageError(f"{where} must be a table, e.g. properties = {{ {allowed[0]} = ... }}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise UsageError(f"{where}: unknown {runtime} propert{'ies' if len(unknown) > 1 else 'y'} {unknown}; "
                         f"allowed: {', '.join(allowed)}")
    bad = [k for k, v in value.items() if not isinstance(v, str | int | float | bool)]
    if bad:
        raise UsageError(f"{where}: {bad[0]} must be a string, number or boolean")
    return dict(value)


def _section(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise UsageError(f"{where}: [{key}] must be a table")
    return value


def _choice(value, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise UsageError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")
    return value


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
    seq_lens = {n for suite in all_suites() for n in suite.seq_lens(plan.settings_of(suite.name))}
    for b in m.backbones:
        limit = get_backbone(b).config.get("max_position_embeddings", 512)
        too_long = sorted(n for n in seq_lens if n > limit)
        if too_long:
            raise UsageError(f"sequence length {too_long[0]} exceeds {b}'s max_position_embeddings ({limit})")
    if min(seq_lens) < 2:
        raise UsageError("sequence lengths must be >= 2 ([CLS] and [SEP] alone take two tokens)")
    for r in m.runtimes:
        get_runtime(r)
    for form in INT8_FORMS:  # a bad INT8 recipe file stops the run before anything is written
        ort_int8(form)
    for suite in all_suites():
        suite.validate(plan.settings_of(suite.name), m)
    for axis, values, allowed in (("precision", m.precisions, PRECISIONS), ("device", m.devices, DEVICES),
                                  ("sparsity", m.sparsities, SPARSITIES), ("suite", m.suites, SUITE_NAMES)):
        for v in values:
            if v not in allowed:
                raise UsageError(f"unknown {axis} {v!r}; choose from: {', '.join(allowed)}")
    for r, sc in plan.scopes.items():
        get_runtime(r)
        for axis, values, allowed in (("precision", sc.precisions, PRECISIONS),
                                      ("sparsity", sc.sparsities, SPARSITIES), ("suite", sc.suites, SUITE_NAMES)):
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


def _scope(plan: Plan, runtime: str) -> RuntimeScope:
    return plan.scopes.get(runtime) or RuntimeScope()


def expand(plan: Plan) -> list[Cell]:
    """Cross product of the matrix (narrowed per runtime by [runtime.NAME]), unsupported combinations
    dropped; each suite makes its cells of a variant (shapes, tasks) from its settings."""
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
                        for name in scope.keep("suites", m.suites):
                            cells += get_suite(name).cells(base, plan.settings_of(name), scope, m.tasks)
    return cells
