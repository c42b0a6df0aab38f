"""The layering of DESIGN.md, executable: the import graph of `runlab` (imports inside
functions included, read from the source with `ast`) has no cycle between packages, no arrow
from a lower layer to a higher one, no cycle between modules, and no import of another
package's `_private` module.

KNOWN lists arrows allowed against the layers for a while (none now: `Run` emits its records
and the mirrors attach to it as listeners from above); the test fails when the list says more
or less than the code does.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# lower number = lower layer; a package imports only packages of lower layers
LAYERS = {
    "core": 0,  # errors, registry, evaluators, _ids, _imports, _io, _yaml, _secrets, ...: light
    "tracking": 1,
    "config": 1,
    "finance": 1,
    "sinks": 2,
    "monitor": 2,
    "report": 2,
    "integrations": 3,
    "train": 3,
    "rl": 4,  # PortfolioEnv (runlab.finance), loop: ppo (runlab.train.epochs)
    "sweep": 4,
    "queue": 5,  # launches from the dashboard: recipes, the file queue, workers
    "flow": 5,  # steps on a launcher: runlab.sweep's schedulers
    "web": 6,  # a study's importance (runlab.sweep), launches (runlab.queue)
    "cli": 7,
    "contracts": 7,  # the contract test suites of each role, for third parties
    "facade": 8,  # runlab/__init__.py (the public API) and runlab/__main__.py
}
KNOWN: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "runlab").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package(module: str) -> str:
    parts = module.split(".")
    if module in ("runlab", "runlab.__main__"):
        return "facade"
    if len(parts) >= 2 and (SRC / "runlab" / parts[1]).is_dir():
        return parts[1]
    return "core"


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (annotations only, never imported)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(c for c in ast.iter_child_nodes(node) if not _type_checking(c))
    return out


def _imports(module: str) -> set[str]:
    """The runlab modules ``module`` imports, at any depth of its code."""
    path = MODULES[module]
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + 1]
                if path.name != "__init__.py":
                    base = base[:-1] if node.level == 1 else base
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            subs = [f"{base_name}.{a.name}" for a in node.names]
            # `from runlab import _io` imports the module runlab._io, not the facade's names
            names = subs if all(n in MODULES for n in subs) else [base_name, *subs]
        else:
            continue
        out |= {n for n in names if n in MODULES and n != module}
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def _package_edges() -> set[tuple[str, str]]:
    return {
        (_package(a), _package(b))
        for a, targets in GRAPH.items()
        for b in targets
        if _package(a) != _package(b)
    }


def test_no_arrow_against_the_layers() -> None:
    upward = {(a, b) for a, b in _package_edges() if LAYERS[a] <= LAYERS[b]}
    assert upward == KNOWN, f"imports against the layers: {sorted(upward - KNOWN)}"


def test_no_cycle_between_packages() -> None:
    edges = _package_edges() - KNOWN
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, set()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(p for p in list(graph) if reaches(p, p, {p}))
    assert cycles == [], f"packages on a cycle: {cycles}"


def test_no_import_of_another_packages_private_module() -> None:
    private = sorted(
        (a, b)
        for a, targets in GRAPH.items()
        for b in targets
        if _package(a) != _package(b)
        and _package(b) != "core"  # runlab/_io.py and friends are the shared low level
        and any(p.startswith("_") and not p.startswith("__") for p in b.split(".")[2:])
    )
    assert private == []


def test_the_graph_sees_imports_inside_functions() -> None:
    """The check itself: an import inside a function body is an arrow too."""
    assert "runlab.train.checks" in GRAPH["runlab.cli.train"]  # imported in a function
    assert "runlab.sinks.mirror" in GRAPH["runlab"]  # start_run(sinks=...) in the facade


def test_no_cycle_between_modules() -> None:
    """Within a package too: a circle of modules hidden by imports inside functions (the
    7-module one of issue 16 went config -> monitor -> config) is a cycle all the same."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert cycles == [], f"modules on a cycle: {cycles}"


def test_no_function_body_over_80_lines() -> None:
    """Long functions hide copies and drift (the two training loops had drifted): a body
    (from its first statement; a Typer command's options are declarations) stays under 80."""
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = (node.end_lineno or 0) - node.body[0].lineno + 1
                if body > 80:
                    long.append(f"{module}.{node.name}: {body}")
    assert long == []
