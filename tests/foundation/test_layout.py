"""The house's layers hold, read from the code's own imports (every import, at module top
or inside a function):

- ground: `coffeetrace/` (settings, database, SQL loading, errors, console, embedded
  servers, broker helpers) imports nothing of the project above it;
- domain: `trace/` imports only the ground;
- edges: `api/`, `ingest/`, `simulators/`, `euis/` import the domain and the ground, never
  each other;
- root: `cli/` (the commands and the stack runner) imports them all; nothing imports it.

And the module graph has no cycle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# folder -> package, as pyproject's package-dir maps them
FOLDERS = {
    "coffeetrace": "coffeetrace",
    "trace": "coffeetrace.trace",
    "api": "coffeetrace.api",
    "ingest": "coffeetrace.ingest",
    "simulators": "coffeetrace.simulators",
    "cli": "coffeetrace.cli",
    "euis": "coffeetrace.euis",
}
LAYER_OF_PACKAGE = {
    "coffeetrace.trace": "domain",
    "coffeetrace.api": "api",
    "coffeetrace.ingest": "ingest",
    "coffeetrace.simulators": "simulators",
    "coffeetrace.cli": "root",
    "coffeetrace.euis": "euis",
}
ALLOWED = {
    "ground": {"ground"},
    "domain": {"ground", "domain"},
    "api": {"ground", "domain", "api"},
    "ingest": {"ground", "domain", "ingest"},
    "simulators": {"ground", "domain", "simulators"},
    "euis": {"ground", "domain", "euis"},
    "root": {"ground", "domain", "api", "ingest", "simulators", "euis", "root"},
}


def modules() -> Iterator[tuple[str, Path]]:
    for folder, package in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [package, *path.relative_to(ROOT / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


def layer(module: str) -> str:
    if module == "coffeetrace.__main__":  # `python -m coffeetrace`: an entry of the root
        return "root"
    for package, name in LAYER_OF_PACKAGE.items():
        if module == package or module.startswith(package + "."):
            return name
    return "ground"


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports (`from a import b` counts a.b when b is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(n for n in names if n in known)
    return found


def graph() -> dict[str, set[str]]:
    paths = dict(modules())
    known = set(paths)
    return {m: imports_of(p, known) - {m} for m, p in paths.items()}


def test_every_import_points_down() -> None:
    offenders = sorted(
        f"{a} ({layer(a)}) imports {b} ({layer(b)})"
        for a, targets in graph().items()
        for b in targets
        if layer(b) not in ALLOWED[layer(a)]
    )
    assert offenders == []


def test_the_module_graph_has_no_cycle() -> None:
    g = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(g[node]):
            # a package's __init__ importing its own submodules is not a cycle of meaning
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_checks_see_a_violation() -> None:
    """The layer rule is not vacuous: the graph holds edges of every allowed kind."""
    kinds = {(layer(a), layer(b)) for a, targets in graph().items() for b in targets}
    assert {
        ("domain", "ground"),
        ("api", "domain"),
        ("ingest", "ground"),
        ("root", "api"),
        ("root", "ingest"),
    } <= kinds
    assert "ground" not in ALLOWED["ground"] - {"ground"}
    assert layer("coffeetrace.api.app") == "api" and layer("coffeetrace.db") == "ground"


def test_imports_inside_functions_say_why() -> None:
    """Imports sit at module top; one inside a function carries a comment saying why (on
    its line or the line above)."""
    silent = []
    for module, path in modules():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines), str(path))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    here, above = lines[inner.lineno - 1], lines[inner.lineno - 2]
                    if "#" not in here and not above.strip().startswith("#"):
                        silent.append(f"{module}:{inner.lineno}: {here.strip()}")
    assert silent == []
