"""Named SQL queries kept in .sql files, parsed once.

A file holds blocks that start with a `-- name: query_name` line; everything up to
the next such line is that query. Each package that talks to the database owns its
own `sql/queries.sql` (or several files) and loads them with `load_queries`.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    queries: dict[str, str] = {}
    matches = list(_NAME.finditer(text))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[m.end() : end].strip()
        if m.group(1) in queries:
            raise ValueError(f"query {m.group(1)!r} is defined twice")
        queries[m.group(1)] = body
    return queries


@cache
def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    """Queries of `package`'s `sql/<filename>`, by name."""
    text = files(package).joinpath("sql", filename).read_text(encoding="utf-8")
    return parse_queries(text)
