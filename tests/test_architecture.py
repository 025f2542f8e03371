"""The shape of the package, held by reading its source (``ast``; nothing under ``tuner`` is imported).

docs/ARCHITECTURE.md draws it: one subpackage per stage, arrows that point one way. Here that picture is
a set of rules over every ``import`` in ``tuner/**/*.py``, at module level and inside functions:

- every ``tuner`` import names a module that exists and names it binds (a moved module fails here
  before any code path runs the import);
- the module graph has no cycle, neither among the imports that run at import time nor once the
  imports inside functions are added (a lazy import keeps ``import tuner`` light; it is no licence
  for a cycle);
- stages import only stages to their left: base < space < data < model < training < tracking < study
  < report < cli (and only ``tuner/__main__.py`` imports ``cli``);
- ``mlflow`` is imported only under ``tuner/tracking/``;
- another stage's private modules and private names stay private (the base modules ``tuner._store``,
  ``tuner._logging`` and ``tuner._backend`` are shared by all: their module names are private to
  users, not to the stages).

An import inside ``if TYPE_CHECKING:`` never runs, so it makes no cycle; it still counts for the stage
order, ``mlflow`` and ``cli`` rules, because a type is a dependency too.
"""

from __future__ import annotations

import ast
import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tuner"

# Left to right: a stage may import itself and any stage to its left, never one to its right.
# "base" is the root package and the top-level modules (errors, metrics, _store, _logging, _backend);
# "main" is tuner/__main__.py, the one module that imports cli.
STAGE_ORDER = ("base", "space", "data", "model", "training", "tracking", "study", "report", "kerastuner", "cli", "main")
STAGE_RANK = {stage: rank for rank, stage in enumerate(STAGE_ORDER)}
SHARED_BASE_MODULES = {"tuner._store", "tuner._logging", "tuner._backend"}


# ----------------------------------------------------------------------------------------------------
# Reading the tree
# ----------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Module:
    name: str  # tuner.study._record
    path: Path
    is_package: bool
    tree: ast.Module

    @property
    def rel(self) -> str:
        return self.path.relative_to(ROOT).as_posix()

    @property
    def package(self) -> str:
        """The package a relative import starts from."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


@dataclasses.dataclass(frozen=True)
class Import:
    importer: Module
    line: int
    target: str  # the module as written, resolved to absolute: "tuner.study", "mlflow.entities"
    names: tuple[str, ...]  # for "from target import a, b"; () for "import target"
    in_function: bool
    type_checking: bool

    @property
    def where(self) -> str:
        return f"{self.importer.rel}:{self.line}"


def _modules() -> dict[str, Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        name = ".".join(parts)
        found[name] = Module(name, path, is_package, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk_imports(module: Module) -> Iterator[Import]:
    """Every import statement of a module (and ``importlib.import_module("literal")`` call)."""

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, node.lineno, alias.name, (), in_function, type_checking)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield Import(module, node.lineno, target, tuple(a.name for a in node.names), in_function, type_checking)
        elif (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
              and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            yield Import(module, node.lineno, node.args[0].value, (), in_function, type_checking)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, in_function, True)
            for child in node.orelse:
                yield from visit(child, in_function, type_checking)
            return
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner, type_checking)

    yield from visit(module.tree, False, False)


def _top_level_names(module: Module) -> set[str] | None:
    """Names a module binds at its top level; None when it answers any name (a module ``__getattr__``)."""
    names: set[str] = set()

    def bind(target: ast.AST) -> None:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                names.add(node.id)

    def visit(body: Iterable[ast.stmt]) -> bool:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    bind(target)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                bind(node.target)
            elif isinstance(node, ast.Import):
                names.update(a.asname or a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if any(a.name == "*" for a in node.names):
                    return False
                names.update(a.asname or a.name for a in node.names)
            blocks = [getattr(node, field, None) or [] for field in ("body", "orelse", "finalbody")]
            blocks += [handler.body for handler in getattr(node, "handlers", [])]
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if not all(visit(block) for block in blocks):
                    return False
        return True

    if not visit(module.tree.body):
        return None
    if "__getattr__" in names:
        return None
    return names


def _lazy_exports(module: Module) -> dict[str, str]:
    """The root package's ``_EXPORTS``: public name -> the module that defines it (imported on first use)."""
    for node in module.tree.body:
        if (isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "_EXPORTS"
                        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))):
            return {ast.literal_eval(k): ast.literal_eval(v) for k, v in zip(node.value.keys, node.value.values)}
    return {}


MODULES = _modules()
IMPORTS = [imp for module in MODULES.values() for imp in _walk_imports(module)]
EXPORTS = _lazy_exports(MODULES["tuner"])


def _is_tuner(target: str) -> bool:
    return target == "tuner" or target.startswith("tuner.")


@dataclasses.dataclass(frozen=True)
class Edge:
    source: str
    target: str
    imp: Import


def _edges(imp: Import) -> list[Edge]:
    """The tuner modules one import statement depends on.

    ``from tuner.x import y`` is an edge to ``tuner.x.y`` when ``y`` is a submodule, else to ``tuner.x``
    (a package, whose ``__init__`` has its own edges to the modules it re-exports). A name taken from
    the root package's lazy ``_EXPORTS`` is an edge to the module that defines it: that module is what
    runs on first use.
    """
    if not _is_tuner(imp.target):
        return []
    source = imp.importer.name
    if not imp.names:
        return [Edge(source, _known_prefix(imp.target), imp)]
    edges = []
    for name in imp.names:
        if f"{imp.target}.{name}" in MODULES:
            edges.append(Edge(source, f"{imp.target}.{name}", imp))
        elif imp.target == "tuner" and name in EXPORTS:
            edges.append(Edge(source, EXPORTS[name], imp))
        else:
            edges.append(Edge(source, _known_prefix(imp.target), imp))
    return edges


def _known_prefix(target: str) -> str:
    while target not in MODULES and "." in target:
        target = target.rpartition(".")[0]
    return target


def _stage(module: str) -> str:
    parts = module.split(".")
    if module == "tuner.__main__":
        return "main"
    if len(parts) == 1 or (len(parts) == 2 and not MODULES[".".join(parts[:2])].is_package):
        return "base"
    return parts[1]


def _find_cycles(edges: Iterable[Edge], node_of=lambda name: name) -> list[list[Edge]]:
    """One concrete cycle per strongly connected component with more than one node (or a self-loop)."""
    graph: dict[str, dict[str, Edge]] = defaultdict(dict)
    for edge in edges:
        a, b = node_of(edge.source), node_of(edge.target)
        if a == b and edge.source != edge.target:
            continue  # two modules of one stage: the stage graph has no edge for that
        if b not in graph[a]:
            graph[a][b] = edge
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(v: str) -> None:  # Tarjan, iterative enough for a package of this size
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(component)

    for v in sorted(set(graph) | {b for targets in graph.values() for b in targets}):
        if v not in index:
            strongconnect(v)

    cycles = []
    for component in components:
        members = set(component)
        start = min(component)
        if len(component) == 1 and start not in graph.get(start, {}):
            continue
        # shortest path start -> ... -> start inside the component
        paths: dict[str, list[Edge]] = {start: []}
        frontier = [start]
        found: list[Edge] | None = None
        while frontier and found is None:
            nxt = []
            for v in frontier:
                for w, edge in sorted(graph.get(v, {}).items()):
                    if w == start:
                        found = paths[v] + [edge]
                        break
                    if w in members and w not in paths:
                        paths[w] = paths[v] + [edge]
                        nxt.append(w)
                if found is not None:
                    break
            frontier = nxt
        cycles.append(found or [])
    return cycles


def _describe_cycle(cycle: list[Edge], node_of=lambda name: name) -> str:
    lines = [" -> ".join([node_of(cycle[0].source)] + [node_of(e.target) for e in cycle])]
    for edge in cycle:
        kind = "inside a function" if edge.imp.in_function else "at module level"
        lines.append(f"    {edge.imp.where}: {edge.source} imports {edge.target} ({kind})")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------
# The rules
# ----------------------------------------------------------------------------------------------------

def _hold(rule: str, problems: list[str]) -> None:
    """Fail with the rule and one line per offending import (file:line first)."""
    if problems:
        pytest.fail(f"rule: {rule}\n" + "\n".join(problems), pytrace=False)


def test_the_tree_is_read():
    """The rules below see the whole package (a guard against a silently empty scan)."""
    assert {"tuner", "tuner.__main__", "tuner.cli", "tuner.study", "tuner.tracking"} <= set(MODULES)
    assert any(imp.in_function for imp in IMPORTS) and any(not imp.in_function for imp in IMPORTS)
    assert EXPORTS, "tuner/__init__.py: no _EXPORTS dict found; the root-package rules below need it"


def test_every_subpackage_has_a_place_in_the_stage_order():
    unplaced = sorted({_stage(name) for name in MODULES} - set(STAGE_ORDER))
    _hold(f"every subpackage of tuner is a stage with a place in {STAGE_ORDER} (add a new one to STAGE_ORDER in "
          "tests/test_architecture.py and to docs/ARCHITECTURE.md)",
          [f"tuner/{stage}/: no place in the stage order" for stage in unplaced])


def test_every_tuner_import_names_an_existing_module_and_name():
    problems = []
    for imp in IMPORTS:
        if not _is_tuner(imp.target):
            continue
        if imp.target not in MODULES:
            problems.append(f"{imp.where}: imports {imp.target}, which is no module in tuner/")
            continue
        bound = _top_level_names(MODULES[imp.target])
        for name in imp.names:
            if f"{imp.target}.{name}" in MODULES or name == "*":
                continue
            if imp.target == "tuner" and (name in EXPORTS or name == "__version__"):
                continue
            if bound is not None and name not in bound:
                problems.append(f"{imp.where}: imports {name!r} from {imp.target} ({MODULES[imp.target].rel}), "
                                "which neither defines nor re-exports it")
    _hold("every import of a tuner module resolves (checked statically: an import inside a function that no "
          "test runs is checked too)", problems)


def test_every_public_export_points_at_a_module_that_defines_it():
    problems = []
    for name, target in sorted(EXPORTS.items()):
        if target not in MODULES:
            problems.append(f"tuner/__init__.py: _EXPORTS[{name!r}] = {target!r}, which is no module in tuner/")
            continue
        bound = _top_level_names(MODULES[target])
        if bound is not None and name not in bound:
            problems.append(f"tuner/__init__.py: _EXPORTS[{name!r}] = {target!r}, which does not define {name!r}")
    _hold("every name of the public API (tuner.__all__) points at a module that defines it", problems)


def test_the_root_package_imports_no_stage_when_imported():
    """``import tuner`` stays light: tuner/__init__.py reaches its stages only lazily (``_EXPORTS``)."""
    root = MODULES["tuner"]
    _hold("tuner/__init__.py imports nothing at module level but importlib and typing (its stages load lazily)",
          [f"{imp.where}: imports {imp.target}" for imp in IMPORTS
           if imp.importer is root and not imp.in_function and not imp.type_checking
           and imp.target.split(".")[0] not in {"__future__", "importlib", "typing"}])


def test_no_import_cycle_among_the_imports_that_run_at_import_time():
    edges = [e for imp in IMPORTS if not imp.in_function and not imp.type_checking for e in _edges(imp)]
    _hold("no import cycle between tuner modules at import time (a module that takes its own package's names "
          "through the package counts: the package is half-initialized then)",
          [_describe_cycle(c) for c in _find_cycles(edges)])


def test_no_import_cycle_between_modules_counting_imports_inside_functions():
    edges = [e for imp in IMPORTS if not imp.type_checking for e in _edges(imp)]
    _hold("no import cycle between tuner modules, imports inside functions included (a lazy import keeps "
          "`import tuner` light; it does not make a cycle one way)",
          [_describe_cycle(c) for c in _find_cycles(edges)])


def test_no_import_cycle_between_stages():
    edges = [e for imp in IMPORTS if not imp.type_checking for e in _edges(imp)]
    _hold("the stages' arrows point one way: no cycle between stages, imports inside functions included",
          [_describe_cycle(c, _stage) for c in _find_cycles(edges, node_of=_stage)])


def test_stages_import_only_stages_to_their_left():
    problems = set()
    for imp in IMPORTS:
        for edge in _edges(imp):
            src, dst = _stage(edge.source), _stage(edge.target)
            if src in STAGE_RANK and dst in STAGE_RANK and STAGE_RANK[dst] > STAGE_RANK[src]:
                problems.add(f"{imp.where}: {src} imports {dst} ({edge.target}), a stage to its right")
    _hold(f"a stage imports only itself and the stages to its left ({' < '.join(STAGE_ORDER)})", sorted(problems))


def test_mlflow_is_imported_only_under_tracking():
    _hold("mlflow is imported only under tuner/tracking/ (other stages talk to a Tracker or a tracking function)",
          [f"{imp.where}: imports {imp.target}" for imp in IMPORTS
           if imp.target.split(".")[0] == "mlflow" and _stage(imp.importer.name) != "tracking"])


def test_cli_is_imported_only_by_cli_and_main():
    _hold("nothing imports tuner.cli but tuner/cli/ itself and tuner/__main__.py",
          sorted({f"{edge.imp.where}: {edge.source} imports {edge.target}" for imp in IMPORTS for edge in _edges(imp)
                  if _stage(edge.target) == "cli" and _stage(edge.source) not in {"cli", "main"}}))


def _private(module: str) -> bool:
    return any(part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
               for part in module.split(".")[1:])


def test_private_modules_and_names_stay_inside_their_stage():
    problems = []
    for imp in IMPORTS:
        if not _is_tuner(imp.target) or imp.target not in MODULES:
            continue
        src, dst = _stage(imp.importer.name), _stage(imp.target)
        if src == dst or src == "main":
            continue
        if _private(imp.target) and imp.target not in SHARED_BASE_MODULES:
            problems.append(f"{imp.where}: {src} imports {imp.target}, a private module of {dst} "
                            f"(use what tuner.{dst} exports)")
        for name in imp.names:
            if name.startswith("_") and not (name.startswith("__") and name.endswith("__")):
                problems.append(f"{imp.where}: {src} imports {name}, a private name of {imp.target}")
    _hold("a module's private names, and a stage's private modules, are used only inside its own subpackage "
          f"(the base modules {sorted(SHARED_BASE_MODULES)} are shared by every stage)", problems)


# ----------------------------------------------------------------------------------------------------
# The checker checks (small synthetic graphs)
# ----------------------------------------------------------------------------------------------------

def _fake_edge(source: str, target: str) -> Edge:
    module = MODULES["tuner"]
    return Edge(source, target, Import(module, 1, target, (), False, False))


@pytest.mark.parametrize(("pairs", "n_cycles"), [
    ([("a", "b"), ("b", "c")], 0),
    ([("a", "b"), ("b", "a")], 1),
    ([("a", "b"), ("b", "c"), ("c", "a"), ("d", "d")], 2),
    ([("a", "b"), ("b", "c"), ("c", "b"), ("c", "d")], 1),
])
def test_cycle_finder(pairs, n_cycles):
    cycles = _find_cycles([_fake_edge(a, b) for a, b in pairs])
    assert len(cycles) == n_cycles
    for cycle in cycles:
        assert cycle and cycle[0].source == cycle[-1].target
        assert all(x.target == y.source for x, y in zip(cycle, cycle[1:]))


def test_import_reader_resolves_relative_imports_and_tells_function_and_type_checking_imports():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import _sibling\n"
        "from .._store import sqlite_path\n"
        "import mlflow.entities\n"
        "if TYPE_CHECKING:\n"
        "    from tuner.study import Study\n"
        "else:\n"
        "    X = 1\n"
        "class C:\n"
        "    from tuner.errors import Problem\n"
        "def f():\n"
        "    from tuner.space import KNOBS\n"
        "    return importlib.import_module('tuner.model')\n"
    )
    module = Module("tuner.report._fake", ROOT / "tuner/report/_fake.py", False, ast.parse(source))
    seen = [(imp.line, imp.target, imp.names, imp.in_function, imp.type_checking) for imp in _walk_imports(module)]
    assert seen == [
        (1, "typing", ("TYPE_CHECKING",), False, False),
        (2, "tuner.report", ("_sibling",), False, False),
        (3, "tuner._store", ("sqlite_path",), False, False),
        (4, "mlflow.entities", (), False, False),
        (6, "tuner.study", ("Study",), False, True),
        (10, "tuner.errors", ("Problem",), False, False),
        (12, "tuner.space", ("KNOBS",), True, False),
        (13, "tuner.model", (), True, False),
    ]
    assert _top_level_names(module) >= {"TYPE_CHECKING", "_sibling", "sqlite_path", "mlflow", "Study", "X", "C", "f"}
    assert _top_level_names(Module("m", ROOT / "m.py", False, ast.parse("def __getattr__(name): ..."))) is None
