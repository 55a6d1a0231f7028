"""The shape of the code: one-way imports among bench/, adapters/ and suites/, frameworks only under adapters/,
no source module over 400 lines. `python tests/test_layout.py` prints the import graph's summary."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bench", "adapters", "suites")
FRAMEWORKS = ("torch", "transformers", "onnx", "onnxruntime", "deepsparse", "mxnet", "gluonnlp", "sparseml")
MAX_LINES = 400


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported_names(path: Path, module: str) -> set[str]:
    """Every module named by every import statement of the file, at any depth (lazy imports inside functions
    and TYPE_CHECKING blocks included), relative imports resolved."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package[:len(package) - node.level + 1], node.module or ""]).strip(".") \
                if node.level else node.module
            names |= {base} | {f"{base}.{a.name}" for a in node.names}
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (a name resolves to the longest project module it starts with)."""
    mods = modules()
    graph = {}
    for module, path in mods.items():
        targets = set()
        for name in imported_names(path, module):
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module: each is an import circle."""
    names = sorted(graph)
    index = {n: i for i, n in enumerate(names)}
    rows = [index[a] for a in names for b in graph[a]]
    cols = [index[b] for a in names for b in graph[a]]
    adjacency = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), len(names)))
    count, labels = connected_components(adjacency, directed=True, connection="strong")
    groups = [[names[i] for i in np.flatnonzero(labels == c)] for c in range(count)]
    return [g for g in groups if len(g) > 1]


def test_there_are_no_import_circles_among_the_project_packages():
    found = circles(import_graph())
    assert found == [], f"import circles: {found}"


def test_a_circle_would_be_found():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_frameworks_are_imported_only_under_adapters():
    offenders = {}
    for module, path in modules().items():
        if module.startswith("adapters"):
            continue
        names = {n.split(".")[0] for n in imported_names(path, module)}
        if hit := sorted(names & set(FRAMEWORKS)):
            offenders[module] = hit
    assert offenders == {}


def test_builders_never_call_back_into_the_core_that_asks_for_their_files():
    graph = import_graph()
    asks = {m: {b for b in targets if b.startswith("adapters.build.")} for m, targets in graph.items()
            if not m.startswith("adapters")}
    assert asks["bench.exports"] == set()  # it loads its builder by name: no import edge at all
    callers = {"adapters.build.onnx_export": "bench.exports", "adapters.build.torch_finetune": "bench.glue.finetune",
               "adapters.build.random_weights": "bench.artifacts"}
    for builder, caller in callers.items():
        reachable, todo = set(), [builder]
        while todo:
            for nxt in graph[todo.pop()] - reachable:
                reachable.add(nxt)
                todo.append(nxt)
        assert caller not in reachable, f"{builder} reaches back into {caller}"


def test_no_source_module_is_longer_than_400_lines():
    long = {m: n for m, p in modules().items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_package_is_listed_in_pyproject():
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {m for m, p in modules().items() if p.name == "__init__.py"}
    assert found == listed


if __name__ == "__main__":
    g = import_graph()
    print(f"{len(g)} modules, {sum(len(t) for t in g.values())} import edges, {len(circles(g))} circles")
    for c in circles(g):
        print("  circle:", " <-> ".join(c))
    sys.exit(1 if circles(g) else 0)
