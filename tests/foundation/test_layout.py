"""Dependencies point towards trace/ (the domain): it imports none of the outer packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTER = ("coffeetrace.api", "coffeetrace.ingest", "coffeetrace.simulators")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_trace_imports_no_outer_package() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith(OUTER))
        for path in (ROOT / "trace").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_package_imports_outer_packages_only_in_the_cli_and_runner() -> None:
    for path in (ROOT / "coffeetrace").rglob("*.py"):
        if path.name in ("cli.py", "runner.py"):
            continue
        outer = [m for m in imported_modules(path) if m.startswith((*OUTER, "coffeetrace.trace"))]
        assert outer == [], f"{path.name} imports {outer}"
