"""The arrows between talkbench's modules go one way (issue 11; SPEC 3).

Every module of ``bench/`` belongs to a layer (:data:`LAYERS`), and may import only from its
own layer and the layers :data:`ALLOWED` names for it. The test reads the source with ``ast``
(nothing is imported, so it takes a fraction of a second): module-level and function-level
imports alike, ``import x`` and ``from x import y``, relative imports resolved, and the lazy
imports of the registries (``REGISTRY.add("name", "bench.module:attr")``, ``import_object``,
``importlib.import_module`` with a literal target). It fails on

- a module the layer table does not name (classify it in :data:`LAYERS`, so the table stays
  the map of the package);
- an import against the order (the message names both modules and both layers);
- an import cycle between modules, even within one layer (the message shows the cycle).

Lazy registry targets count for the layers but not for cycles: a registry that names its
plugins by string, whose modules import the registry's base class, is the plugin pattern (the
string is imported on first lookup, long after both modules have loaded), not an import cycle.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

LAYERS: dict[str, tuple[str, ...]] = {
    "core": ("bench", "bench.fileio", "bench.stats", "bench.provenance", "bench.registry",
             "bench.results", "bench.core", "bench.core.*"),
    "data": ("bench.data", "bench.data.*"),
    "judges": ("bench.judges", "bench.judges.*"),
    "metrics": ("bench.metrics", "bench.metrics.*"),
    "generators": ("bench.generators", "bench.generators.*"),
    "adapters": ("bench.adapters", "bench.adapters.*"),
    "results": ("bench.scoring", "bench.aggregate", "bench.leaderboard", "bench.reported*",
                "bench.report", "bench.report.*", "bench.report_*", "bench.protocols*"),
    "runner": ("bench.runner", "bench.stages", "bench.stages.*", "bench.score",
               "bench.score_folders", "bench.folder_scoring", "bench.profile"),
    "cli": ("bench.cli", "bench.__main__"),
}
"""Layer -> the module names (``fnmatch`` patterns) it holds; the first match wins."""

_BELOW_RUNNER = frozenset({"core", "data", "judges", "metrics", "generators", "adapters",
                           "results", "runner"})

ALLOWED: dict[str, frozenset[str]] = {
    "core": frozenset({"core"}),
    "data": frozenset({"core", "data"}),
    "judges": frozenset({"core", "data", "judges"}),
    "metrics": frozenset({"core", "data", "judges", "metrics"}),
    "generators": frozenset({"core", "generators"}),
    "adapters": frozenset({"core", "data", "generators", "adapters"}),
    "results": frozenset({"core", "data", "metrics", "results"}),
    "runner": _BELOW_RUNNER,
    "cli": _BELOW_RUNNER | {"cli"},
}
"""Layer -> the layers its modules may import (nothing imports ``cli``)."""

_LAZY_CALLS = frozenset({"add", "import_object", "import_module"})
_LAZY_TARGET = re.compile(r"^bench(\.[A-Za-z_]\w*)*(:[A-Za-z_][\w.]*)?$")


# ---------------------------------------------------------------------------------------------
# Reading the package


def module_names(root: Path = BENCH) -> dict[str, Path]:
    """Dotted name -> file of every module under ``root`` (a package's ``__init__.py`` is the
    package's name)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer_of(module: str) -> str | None:
    """The layer whose patterns match ``module`` first (None: not classified)."""
    for layer, patterns in LAYERS.items():
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return layer
    return None


def _resolve(name: str, known: Iterable[str]) -> str:
    """``name``, or its longest prefix that is a known module (an attribute's module)."""
    known = set(known)
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return name


def imports_of(module: str, source: str, known: Iterable[str],
               is_package: bool = False) -> Iterator[tuple[str, int, bool]]:
    """``(imported bench module, line, lazy)`` for every import in ``source`` (anywhere in
    it), in the order of the lines; ``lazy``: a registry's string target."""
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    nodes = sorted(ast.walk(ast.parse(source)), key=lambda n: getattr(n, "lineno", 0))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "bench" or alias.name.startswith("bench."):
                    yield _resolve(alias.name, known), node.lineno, False
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                parent = ".".join(base + ([node.module] if node.module else []))
            else:
                parent = node.module or ""
            if parent != "bench" and not parent.startswith("bench."):
                continue
            for alias in node.names:
                child = f"{parent}.{alias.name}"
                yield (child if child in known else _resolve(parent, known)), node.lineno, False
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in _LAZY_CALLS:
                continue
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) \
                        and _LAZY_TARGET.match(arg.value):
                    yield _resolve(arg.value.partition(":")[0], known), node.lineno, True


Edge = tuple[str, str, int, bool]
"""``(importer, imported, line, lazy)``."""


FACADE = "bench"
"""The package root's module ``__getattr__`` (PEP 562) is the public Python API
(``bench.score_folders``): it imports its targets on first use, when a user calls them after
``bench`` has loaded, so its imports are not arrows of the layering (like a registry's string
targets, they are neither layer edges nor cycle edges). Nothing else is exempt."""


def facade_lines(source: str) -> range:
    """The lines of the module-level ``__getattr__`` function of ``source`` (empty: none)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            return range(node.lineno, (node.end_lineno or node.lineno) + 1)
    return range(0)


def import_edges(root: Path = BENCH) -> list[Edge]:
    """Every import of the whole package (once per line), self-imports and the facade's lazy
    imports (`FACADE`) left out."""
    files = module_names(root)
    edges: dict[Edge, None] = {}
    for module, path in files.items():
        source = path.read_text(encoding="utf-8")
        facade = facade_lines(source) if module == FACADE else range(0)
        for target, line, lazy in imports_of(module, source, files,
                                             path.name == "__init__.py"):
            if target != module and line not in facade:
                edges[(module, target, line, lazy)] = None
    return list(edges)


# ---------------------------------------------------------------------------------------------
# The two rules


def layer_violations(edges: Iterable[Edge]) -> list[str]:
    """One line per import against the order (or of or into an unclassified module)."""
    out = []
    for source, target, line, _ in edges:
        a, b = layer_of(source), layer_of(target)
        if a is None or b is None:
            out.append(f"{source}:{line} imports {target}: classify "
                       f"{source if a is None else target} in LAYERS")
        elif b not in ALLOWED[a]:
            out.append(f"{source}:{line} ({a}) imports {target} ({b}); {a} may import only "
                       f"{', '.join(sorted(ALLOWED[a]))}")
    return out


def find_cycles(edges: Iterable[tuple[str, str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component of more than one module
    (Tarjan's algorithm), sorted."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(_cycle_in(graph, component) for component in components)


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A cycle through the component's first module, by breadth-first search back to it."""
    start = min(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in parent:
                    parent[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle in component {sorted(component)}")


# ---------------------------------------------------------------------------------------------
# The package


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_edges()


def test_every_module_has_a_layer():
    unclassified = sorted(m for m in module_names() if layer_of(m) is None)
    assert not unclassified, ("modules missing from the layer table of "
                              f"tests/test_import_layers.py (add them to LAYERS): {unclassified}")


def test_imports_follow_the_layers(edges):
    violations = layer_violations(edges)
    assert not violations, "imports against the layer order:\n" + "\n".join(violations)


def test_no_import_cycles(edges):
    cycles = find_cycles((a, b) for a, b, _, lazy in edges if not lazy)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_walk_sees_the_package(edges):
    """Guards against a walk that silently finds nothing: known imports are seen."""
    modules = module_names()
    assert "bench.cli" in modules and "bench.data.preprocess" in modules and len(modules) > 50
    pairs = {(a, b, lazy) for a, b, _, lazy in edges}
    assert ("bench.cli", "bench.runner", False) in pairs
    assert ("bench.judges.store", "bench.judges.syncnet_train", True) in pairs


# ---------------------------------------------------------------------------------------------
# The checks themselves can fail


def test_resolution_of_every_import_form():
    known = {"bench", "bench.core", "bench.core.audio", "bench.judges", "bench.judges.syncnet",
             "bench.metrics", "bench.metrics.lse", "bench.metrics.base"}
    source = "\n".join([
        "import numpy",
        "import bench",
        "import bench.core.audio as audio",
        "from bench import EMOTIONS",
        "from bench.judges import syncnet",
        "from .base import Metric",
        "from ..core.audio import mfcc",
        "from .. import judges",
        "def later():",
        "    from bench.judges.syncnet import SyncNet",
        "    REGISTRY.add('x', 'bench.metrics.base:Metric')",
        "    importlib.import_module('bench.judges')",
    ])
    got = [t for t, _, _ in imports_of("bench.metrics.lse", source, known)]
    assert got == ["bench", "bench.core.audio", "bench", "bench.judges.syncnet",
                   "bench.metrics.base", "bench.core.audio", "bench.judges",
                   "bench.judges.syncnet", "bench.metrics.base", "bench.judges"]
    assert [t for t, _, _ in imports_of("bench.metrics", "from .base import Metric", known,
                                        is_package=True)] == ["bench.metrics.base"]
    lazy = [lazy for _, _, lazy in imports_of("bench.metrics.lse", source, known)]
    assert lazy == [False] * 8 + [True, True]


def test_layer_rules_catch_a_wrong_arrow():
    good = [("bench.metrics.lse", "bench.judges.syncnet", 1, False),
            ("bench.adapters.vougioukas", "bench.generators.vougioukas2019", 2, False),
            ("bench.cli", "bench.runner", 3, False)]
    assert layer_violations(good) == []
    bad = [("bench.judges.syncnet_train", "bench.metrics.lse", 7, False),
           ("bench.generators.common", "bench.data.preprocess", 8, True),
           ("bench.core.audio", "bench.fileio", 9, False),
           ("bench.runner", "bench.cli", 10, False),
           ("bench.mystery", "bench.core", 11, False)]
    found = layer_violations(bad)
    assert len(found) == 4
    assert found[0].startswith("bench.judges.syncnet_train:7 (judges) imports bench.metrics.lse")
    assert "classify bench.mystery" in found[-1]


def test_cycle_finder_reports_each_cycle():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"),
             ("f", "a")]
    assert find_cycles(edges) == [["a", "b", "c", "a"], ["d", "e", "d"]]
    assert find_cycles([("a", "b"), ("b", "c")]) == []


def test_only_the_package_roots_getattr_is_a_facade():
    source = "\n".join([
        "def __getattr__(name):",
        "    from bench.folder_scoring import score_folders",
        "    return score_folders",
        "def other():",
        "    from bench.runner import run",
    ])
    lines = facade_lines(source)
    assert 2 in lines and 5 not in lines
    assert facade_lines("import bench.runner") == range(0)
