"""EPCIS named queries (GS1's REST bindings, /queries): an organisation stores a query
under a name and reads its events at /queries/{name}/events, the same code path and
paging as GET /events (trace/epcis_query.py).

A query is the body's `query` object of GS1's query language: it must validate against
GS1's query-schema.json (shipped unchanged beside this module) and use only parameters
GET /events implements, with values GET /events takes; the controls a request gives
(perPage, nextPageToken) are the request's, not the query's. Both are checked when the
query is created, so a stored query always runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any
from uuid import UUID

import jsonschema_rs
from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import epcis_query
from coffeetrace.trace import queries as q
from coffeetrace.trace.epcis_capture import (
    EpcisError,
    EpcisValidation,
    NoSuchResource,
    QueryParameterError,
    schema_problems,
)

SQL = load_queries("coffeetrace.trace", "epcis_queries.sql")
# GS1's "REST Bindings/query-schema.json" (gs1/EPCIS, commit 2b888be), unchanged
QUERY_SCHEMA_FILE = "EPCIS-Query-Schema.json"
# what a stored query may hold: GET /events' parameters but the request's own paging
QUERY_PARAMETERS = tuple(p for p in epcis_query.PARAMETERS if p not in ("perPage", "nextPageToken"))
NAME = r"^[A-Za-z0-9._~-]{1,200}$"  # a name stays one plain path segment


class QueryExists(EpcisError):
    status_code = 409
    exception = "ResourceAlreadyExistsException"
    title = "Resource already exists"


@cache
def query_validator() -> jsonschema_rs.Draft7Validator:
    text = files("coffeetrace.trace").joinpath(QUERY_SCHEMA_FILE).read_text(encoding="utf-8")
    return jsonschema_rs.Draft7Validator(json.loads(text), validate_formats=True)


def parameters(query: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The query as GET /events' query string pairs: lists pipe-delimited, times and
    numbers as text."""
    pairs: list[tuple[str, str]] = []
    for name, value in query.items():
        if isinstance(value, list):
            pairs.append((name, "|".join(str(v) for v in value)))
        elif isinstance(value, bool):
            pairs.append((name, str(value).lower()))
        elif isinstance(value, float) and value.is_integer():
            # JSON Schema's integer includes 6723.0: written as the integer it is
            pairs.append((name, str(int(value))))
        else:
            pairs.append((name, str(value)))
    return pairs


def check_query(query: Any, max_per_page: int) -> dict[str, Any]:
    """The query once GS1's schema and GET /events both take it; EpcisValidation or
    QueryParameterError naming the field else."""
    if not isinstance(query, dict):
        raise EpcisValidation("query: must be a JSON object of query parameters", field="query")
    problems = schema_problems(query_validator(), query)
    if problems:
        raise EpcisValidation(f"query.{problems[0]}", problems=problems[:20])
    if "@context" in query:
        raise QueryParameterError(
            "query.@context: this server takes identifiers and CBV terms as URIs or bare"
            " words; write the query without @context",
            parameter="@context",
        )
    for value in query.values():
        if isinstance(value, list) and any("|" in str(v) for v in value):
            raise QueryParameterError(
                "query: a value holds '|', which this server reads as a list separator",
                parameter="query",
            )
    epcis_query.parse(parameters(query), max_per_page=max_per_page, allowed=QUERY_PARAMETERS)
    return query


def check_name(name: Any) -> str:
    if not isinstance(name, str) or re.fullmatch(NAME, name) is None:
        raise EpcisValidation(
            "name: 1 to 200 letters, digits or ._~- (it is a path segment of"
            " /epcis/queries/{name})",
            field="name",
        )
    return name


def document(row: Row) -> Row:
    """A named query as the bindings write it: {"name", "query"}."""
    return {"name": row["name"], "query": row["query"]}


def create(conn: DbConn, cooperative_id: UUID, body: Any, max_per_page: int) -> Row:
    """Store the body's query under its name; QueryExists when the name is taken."""
    if not isinstance(body, dict):
        raise EpcisValidation('the body must be a JSON object {"name": ..., "query": {...}}')
    unknown = sorted(set(body) - {"name", "query"})
    if unknown:
        raise EpcisValidation(f"{unknown[0]}: not a field of a named query (name, query)",
                              field=unknown[0])  # fmt: skip
    if "query" not in body:
        raise EpcisValidation("query: missing (the query's parameters)", field="query")
    name = check_name(body.get("name"))
    query = check_query(body["query"], max_per_page)
    params = {"cooperative_id": cooperative_id, "name": name, "query": Jsonb(query)}
    row = q.one(conn, SQL["epcis_named_query_insert"], params)
    if row is None:
        raise QueryExists(f"there is a query named {name!r} already; delete it first")
    return document(row)


def get(conn: DbConn, cooperative_id: UUID, name: str) -> Row:
    """The cooperative's query `name`; NoSuchResource when it has none."""
    row = q.one(
        conn, SQL["epcis_named_query_get"], {"cooperative_id": cooperative_id, "name": name}
    )
    if row is None:
        raise NoSuchResource(f"there is no query named {name!r}")
    return row


def listing(
    conn: DbConn, cooperative_id: UUID, *, limit: int, after: str | None
) -> tuple[list[Row], str | None]:
    """A page of the cooperative's queries by name, and the last name when more follow."""
    params = {"cooperative_id": cooperative_id, "after": after, "limit": limit + 1}
    rows = q.rows(conn, SQL["epcis_named_query_list"], params)
    more = len(rows) > limit
    rows = rows[:limit]
    return [document(r) for r in rows], rows[-1]["name"] if more and rows else None


def delete(conn: DbConn, cooperative_id: UUID, name: str) -> None:
    """Remove the query and its subscriptions; NoSuchResource when there is none."""
    params = {"cooperative_id": cooperative_id, "name": name}
    if q.one(conn, SQL["epcis_named_query_delete"], params) is None:
        raise NoSuchResource(f"there is no query named {name!r}")


def event_query(
    stored: Mapping[str, Any], request: list[tuple[str, str]], max_per_page: int
) -> tuple[epcis_query.EventQuery, epcis_query.Position | None]:
    """The stored query with the request's perPage and nextPageToken (no other)."""
    for name, _ in request:
        if name not in ("perPage", "nextPageToken"):
            raise QueryParameterError(
                f"{name}: the named query sets the query; a request gives only perPage and"
                " nextPageToken",
                parameter=name,
            )
    return epcis_query.parse([*parameters(stored), *request], max_per_page=max_per_page)
