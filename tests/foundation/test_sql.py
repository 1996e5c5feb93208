"""One way to run SQL: every statement lives in a package's sql/*.sql file, under a name
unique in the project; a module loads the files it needs once, at module level
(`SQL = load_queries("coffeetrace.x", "file.sql")`), and uses queries by literal names
only (`SQL["lot_by_id"]`), so that these tests can check, without running anything, that
every used name exists and every defined query is used.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coffeetrace.sql import parse_queries

ROOT = Path(__file__).resolve().parents[2]
# folder -> package, as pyproject's package-dir maps them
PACKAGES = {
    "coffeetrace": "coffeetrace",
    "cli": "coffeetrace.cli",
    "api": "coffeetrace.api",
    "trace": "coffeetrace.trace",
    "ingest": "coffeetrace.ingest",
    "simulators": "coffeetrace.simulators",
    "euis": "coffeetrace.euis",
}
FOLDER = {package: folder for folder, package in PACKAGES.items() if (ROOT / folder).is_dir()}

# a statement's first keyword followed by more words ("create" alone is a command name)
SQL_TEXT = re.compile(
    r"^\s*(select|insert|update|delete|with|create|alter|copy|drop)\s+\S", re.IGNORECASE
)

# String constants that look like SQL but may stay in .py files, each with the reason.
# Key: (file relative to the repository, the constant's text).
IDENTIFIER = (
    "a psycopg sql.SQL composition: the names are identifiers, which cannot travel "
    "as query parameters"
)
ALLOWED_SQL_TEXT: dict[tuple[str, str], str] = {
    ("coffeetrace/db.py", "create database {}"): IDENTIFIER,
    ("coffeetrace/db.py", "drop database if exists {} with (force)"): IDENTIFIER,
    ("simulators/seeding.py", "alter table {} drop constraint {}"): IDENTIFIER,
    ("simulators/seeding.py", "alter table {} add constraint {} {}"): IDENTIFIER
    + "; the definition is pg_get_constraintdef() of the key just dropped",
    ("simulators/seeding.py", "drop index {}"): IDENTIFIER,
}


def _modules() -> list[Path]:
    found = []
    for folder in PACKAGES:
        found.extend(sorted((ROOT / folder).rglob("*.py")))
    return found


def _sql_files() -> list[Path]:
    found = []
    for folder in PACKAGES:
        found.extend(sorted((ROOT / folder / "sql").glob("*.sql")))
    return found


def _defined() -> dict[Path, dict[str, str]]:
    return {path: parse_queries(path.read_text(encoding="utf-8")) for path in _sql_files()}


@dataclass
class ModuleUse:
    path: Path
    loaded: dict[str, Path] = field(default_factory=dict)  # variable -> .sql file
    used: list[tuple[str, str, int]] = field(default_factory=list)  # variable, name, line
    problems: list[str] = field(default_factory=list)


def _is_load_queries(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "load_queries")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "load_queries")
    )


def _scan(path: Path) -> ModuleUse:
    rel = path.relative_to(ROOT)
    use = ModuleUse(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    allowed_calls: set[int] = set()
    for stmt in tree.body:
        if (
            isinstance(stmt, (ast.Assign, ast.AnnAssign))
            and stmt.value is not None
            and _is_load_queries(stmt.value)
        ):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            call = stmt.value
            assert isinstance(call, ast.Call)
            allowed_calls.add(id(call))
            args = call.args
            if (
                len(targets) != 1
                or not isinstance(targets[0], ast.Name)
                or call.keywords
                or len(args) != 2
                or not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args)
            ):
                use.problems.append(
                    f"{rel}:{stmt.lineno}: load_queries must be "
                    '`NAME = load_queries("package", "file.sql")`'
                )
                continue
            package, filename = (a.value for a in args)  # type: ignore[attr-defined]
            if package not in FOLDER:
                use.problems.append(f"{rel}:{stmt.lineno}: unknown package {package!r}")
                continue
            target = targets[0]
            assert isinstance(target, ast.Name)
            sql_file = ROOT / FOLDER[package] / "sql" / filename
            if not sql_file.is_file():
                use.problems.append(f"{rel}:{stmt.lineno}: no file {sql_file.relative_to(ROOT)}")
                continue
            use.loaded[target.id] = sql_file
    for node in ast.walk(tree):
        if _is_load_queries(node) and id(node) not in allowed_calls:
            use.problems.append(
                f"{rel}:{node.lineno}: load_queries used other than as a "  # type: ignore[attr-defined]
                "module-level assignment"
            )
    # every use of a loaded variable must be `VAR["literal"]`
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Name) and node.id in use.loaded):
            continue
        parent = parents.get(id(node))
        if isinstance(parent, ast.Assign) and node in parent.targets:
            continue  # the module-level assignment itself
        if (
            isinstance(parent, ast.Subscript)
            and parent.value is node
            and isinstance(parent.slice, ast.Constant)
            and isinstance(parent.slice.value, str)
        ):
            use.used.append((node.id, parent.slice.value, node.lineno))
        else:
            use.problems.append(
                f"{rel}:{node.lineno}: {node.id} must be subscripted with a "
                "string literal (no names built at run time, no passing the "
                "mapping around)"
            )
    return use


def _scans() -> list[ModuleUse]:
    return [_scan(path) for path in _modules()]


def test_load_queries_only_at_module_level_with_literal_names() -> None:
    problems = [p for use in _scans() for p in use.problems]
    assert not problems, "\n".join(problems)


def test_every_used_name_exists() -> None:
    defined = _defined()
    missing = []
    for use in _scans():
        for var, name, line in use.used:
            sql_file = use.loaded[var]
            if name not in defined.get(sql_file, {}):
                missing.append(
                    f"{use.path.relative_to(ROOT)}:{line}: {var}[{name!r}] is not "
                    f"defined in {sql_file.relative_to(ROOT)}"
                )
    assert not missing, "\n".join(missing)


def test_every_defined_query_is_used() -> None:
    used = {(use.loaded[var], name) for use in _scans() for var, name, _ in use.used}
    unused = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, queries in _defined().items()
        for name in queries
        if (path, name) not in used
    ]
    assert not unused, "defined but never used:\n" + "\n".join(unused)


def test_query_names_are_unique_across_the_project() -> None:
    """Across every sql/*.sql file of the repository: the packages', the benchmarks' and
    the tests' own."""
    where: dict[str, list[str]] = defaultdict(list)
    files = sorted(
        p
        for p in ROOT.glob("**/sql/*.sql")
        if not {".venv", "build", ".typecheck", "node_modules"} & set(p.parts)
    )
    assert set(_sql_files()) <= set(files)
    for path in files:
        for name in parse_queries(path.read_text(encoding="utf-8")):
            where[name].append(str(path.relative_to(ROOT)))
    assert {name: files for name, files in where.items() if len(files) > 1} == {}


def test_every_sql_folder_ships_with_its_package() -> None:
    """pyproject's package-data names each package's sql/*.sql (else an installed copy,
    such as the Docker image, lacks the queries)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    package_data = pyproject["tool"]["setuptools"]["package-data"]
    missing = [
        package
        for folder, package in PACKAGES.items()
        if list((ROOT / folder / "sql").glob("*.sql"))
        and "sql/*.sql" not in package_data.get(package, [])
    ]
    assert missing == []


def _sql_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_TEXT.match(node.value)
        ):
            found.append((node.lineno, node.value))
    return found


def test_no_sql_text_in_python_modules() -> None:
    inline = []
    seen_allowed = set()
    for path in _modules():
        rel = str(path.relative_to(ROOT))
        for line, text in _sql_constants(path):
            key = (rel, text.strip())
            if key in ALLOWED_SQL_TEXT:
                seen_allowed.add(key)
                continue
            inline.append(f"{rel}:{line}: {text.strip()[:60]!r}")
    assert not inline, "SQL text in .py files (move it to a sql/*.sql file):\n" + "\n".join(inline)
    # an allowance nobody needs any more goes too
    assert set(ALLOWED_SQL_TEXT) - seen_allowed == set()


@pytest.mark.parametrize(
    "text",
    [
        'SQL = load_queries("coffeetrace.trace", "lots.sql")\n'
        'def f(conn):\n    return conn.execute(SQL["no_such_query"])\n',
    ],
)
def test_checks_notice_an_unknown_name(tmp_path: Path, text: str, monkeypatch) -> None:
    """The checks above can fail: a module using an undefined name is reported."""
    module = ROOT / "trace" / "_probe_unknown_name.py"
    use = _scan_text(module, text)
    defined = _defined()
    assert [n for v, n, _ in use.used if n not in defined[use.loaded[v]]] == ["no_such_query"]


@pytest.mark.parametrize(
    "text",
    [
        'SQL = load_queries("coffeetrace.trace", "lots.sql")\n'
        "def f(conn, name):\n    return conn.execute(SQL[name])\n",
        'SQL = load_queries("coffeetrace.trace", "lots.sql")\n'
        'def f(conn, name):\n    return conn.execute(SQL[f"lot_{name}"])\n',
        "def f(conn, name):\n"
        '    return conn.execute(load_queries("coffeetrace.trace", "lots.sql")[name])\n',
        "from coffeetrace.sql import load_queries\n"
        'def _q(name):\n    return load_queries("coffeetrace.trace", "lots.sql")[name]\n',
    ],
)
def test_checks_notice_names_built_at_run_time(text: str) -> None:
    use = _scan_text(ROOT / "trace" / "_probe_dynamic.py", text)
    assert use.problems


def test_checks_notice_inline_sql(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text('def f(conn):\n    conn.execute("select 1")\n', encoding="utf-8")
    assert [t for _, t in _sql_constants(probe)] == ["select 1"]


def _scan_text(path: Path, text: str) -> ModuleUse:
    """_scan of `text` as if it were the module at `path` (nothing is written there)."""
    original = Path.read_text

    def read_text(self: Path, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
        return text if self == path else original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Path, "read_text", read_text)
        return _scan(path)
