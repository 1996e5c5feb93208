"""Named SQL queries kept in .sql files, parsed once.

A file holds blocks that start with a `-- name: query_name` line; everything up to
the next such line is that query. Each package that talks to the database owns its
`sql/*.sql` files; a module loads the file it needs once, at import, and runs its
queries by their literal names:

    SQL = load_queries("coffeetrace.trace", "lots.sql")
    conn.execute(SQL["lot_by_id"], {"id": lot_id})

Names are unique across the project, and tests/foundation/test_sql.py checks that every
name a module uses exists in the file it loaded, that names are never built at run time,
and that every query is used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import LiteralString, cast

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, LiteralString]:
    """The queries of one .sql file's text, by name."""
    queries: dict[str, LiteralString] = {}
    matches = list(_NAME.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].strip()
        if m.group(1) in queries:
            raise ValueError(f"query {m.group(1)!r} is defined twice")
        # The one place text becomes a query: the .sql files ship inside the package and
        # are as much the program as its .py files, so their text is trusted like a
        # literal (psycopg's `LiteralString` guard against injected SQL stays meaningful
        # everywhere else: values always travel as parameters).
        queries[m.group(1)] = cast(LiteralString, body)
    return queries


@cache
def load_queries(package: str, filename: str) -> Mapping[str, LiteralString]:
    """Queries of `package`'s `sql/<filename>`, by name (read once per process)."""
    text = files(package).joinpath("sql", filename).read_text(encoding="utf-8")
    return parse_queries(text)
