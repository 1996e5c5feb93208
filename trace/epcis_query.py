"""EPCIS 2.0 queries of the REST bindings over the captured events of one tenant.

`parse` reads the query string parameters of GET /events (GS1's names and syntax: lists
pipe-delimited, `GE_`/`LT_` times as RFC 3339, identifiers as EPC URNs or Digital Links);
`page` runs them, keyset-paged: the next page continues after the last event of this one
(`nextPageToken` names it, so a page is stable however many events are captured
meanwhile). Answers are EPCISQueryDocuments (`query_document`) holding each event as it
was captured, with the server's recordTime.

Matching: EPCs, classes, locations and transformation IDs compare in their canonical
Digital Link form (trace/epcis_hash.py canonical_id), so an SGTIN URN finds an event that
wrote its Digital Link and the other way round; EPC patterns (`urn:epc:idpat:...`) match
exactly the class they name, not as wildcards. CBV terms compare as bare words, whatever
form the event and the parameter wrote them in; other vocabulary as full URIs. A
parameter this server does not implement is refused (QueryParameterException) rather
than ignored, so no answer is silently wider than asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import epcis_hash
from coffeetrace.trace.epcis_capture import (
    EPCIS_CONTEXT,
    NoSuchResource,
    QueryParameterError,
    cbv_terms,
    identifier,
    is_uri,
    vocabulary_term,
)

SQL = load_queries("coffeetrace.trace", "epcis_store.sql")
EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
ACTIONS = ("ADD", "OBSERVE", "DELETE")
DEFAULT_PER_PAGE = 30  # GS1's default perPage
MAX_COUNT = 2**31 - 1  # of perPage and eventCountLimit
PREFIXES = epcis_hash.STANDARD_PREFIXES
CBV_FIELDS = {"BizStep": cbv_terms("bizStep"), "Disp": cbv_terms("disposition")}

# parameter -> (SQL parameter, how its values are read)
LISTS: dict[str, tuple[str, str]] = {
    "eventType": ("event_types", "type"),
    "EQ_action": ("actions", "action"),
    "EQ_bizStep": ("biz_steps", "BizStep"),
    "EQ_disposition": ("dispositions", "Disp"),
    "EQ_readPoint": ("read_points", "id"),
    "EQ_bizLocation": ("biz_locations", "id"),
    "EQ_transformationID": ("transformation_ids", "id"),
    "EQ_eventID": ("event_ids", "uri"),
    "MATCH_epc": ("match_epc", "id"),
    "MATCH_parentID": ("match_parent_id", "id"),
    "MATCH_inputEPC": ("match_input_epc", "id"),
    "MATCH_outputEPC": ("match_output_epc", "id"),
    "MATCH_anyEPC": ("match_any_epc", "id"),
    "MATCH_epcClass": ("match_epc_class", "id"),
    "MATCH_inputEPCClass": ("match_input_epc_class", "id"),
    "MATCH_outputEPCClass": ("match_output_epc_class", "id"),
    "MATCH_anyEPCClass": ("match_any_epc_class", "id"),
}
TIMES = {
    "GE_eventTime": "ge_event_time",
    "LT_eventTime": "lt_event_time",
    "GE_recordTime": "ge_record_time",
    "LT_recordTime": "lt_record_time",
}
CONTROLS = ("orderBy", "orderDirection", "eventCountLimit", "perPage", "nextPageToken")
PARAMETERS = (*LISTS, *TIMES, *CONTROLS)  # every query parameter GET /events takes


@dataclass(frozen=True)
class EventQuery:
    """A parsed query: the SQL filters, the order, the event count limit, the page size."""

    filters: dict[str, Any]
    by_record_time: bool
    descending: bool
    count_limit: int | None
    per_page: int


@dataclass(frozen=True)
class Position:
    """Where a page starts: after this (sort time, id), `served` events served before."""

    after_time: datetime
    after_id: int
    served: int


def _values(name: str, text: str) -> list[str]:
    items = text.split("|")
    if any(not item.strip() for item in items):
        raise QueryParameterError(
            f"{name}: empty value in {text!r} (values are separated by '|')", parameter=name
        )
    return [item.strip() for item in items]


def _refuse(name: str, value: str, expected: str) -> QueryParameterError:
    return QueryParameterError(f"{name}: {value!r} is not {expected}", parameter=name)


def _list(name: str, text: str, *, from_path: bool = False) -> list[str]:
    """The values of a list parameter, checked and as the store compares them. A value a
    path gives is one value, and an identifier there need not be a URI (it matches only
    what holds it)."""
    kind = LISTS[name][1]
    values = [text] if from_path else _values(name, text)
    for value in values:
        if from_path and kind in ("id", "uri"):
            break
        if kind == "action" and value not in ACTIONS:
            raise _refuse(name, value, "ADD, OBSERVE or DELETE")
        if kind == "type" and value not in EVENT_TYPES and not is_uri(value):
            raise _refuse(name, value, "an EPCIS event type (ObjectEvent, ...) or a URI")
        if kind in ("BizStep", "Disp") and value not in CBV_FIELDS[kind] and not is_uri(value):
            raise _refuse(name, value, "a CBV term or a URI")
        if kind in ("id", "uri") and not is_uri(value):
            raise _refuse(name, value, "a URI (an EPC URN, a Digital Link, ...)")
    if kind in ("BizStep", "Disp"):
        return [vocabulary_term(v, kind, PREFIXES) or v for v in values]
    if kind == "id":
        return [identifier(v, PREFIXES) or v for v in values]
    return values


def _time(name: str, text: str) -> datetime:
    at = epcis_hash.parse_time(text)
    if at is None:
        raise QueryParameterError(
            f"{name}: {text!r} is not a date-time (RFC 3339, e.g. 2024-05-01T00:00:00Z;"
            " write + as %2B in a URL)",
            parameter=name,
        )
    return at


def _count(name: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_COUNT:
        raise QueryParameterError(
            f"{name}: must be an integer from 1 to {MAX_COUNT}, got {text!r}", parameter=name
        )
    return int(text)


def parse(
    params: Sequence[tuple[str, str]],
    *,
    max_per_page: int,
    allowed: Sequence[str] = PARAMETERS,
    implied: Mapping[str, str] | None = None,
) -> tuple[EventQuery, Position | None]:
    """The query of a request's query string (name, value pairs, as sent) and the
    position its nextPageToken names. `allowed`: the parameters the resource takes;
    `implied`: those its path gives (GET /epcs/{epc}/events implies MATCH_anyEPC).
    QueryParameterError names the first parameter that is unknown, repeated or wrong."""
    given: dict[str, str] = {}
    for name, value in params:
        if name not in allowed:
            known = name in PARAMETERS
            raise QueryParameterError(
                f"{name}: "
                + (
                    "this resource's path sets it already"
                    if known
                    else "not a query parameter this server implements (see docs/epcis.md)"
                ),
                parameter=name,
            )
        if name in given:
            raise QueryParameterError(
                f"{name}: given twice; give it once, its values separated by '|'",
                parameter=name,
            )
        given[name] = value
    merged = {**given, **(implied or {})}
    filters: dict[str, Any] = {column: None for column, _ in LISTS.values()}
    filters.update({column: None for column in TIMES.values()})
    for name, (column, _) in LISTS.items():
        if name in given:
            filters[column] = _list(name, given[name])
        if implied and name in implied:
            filters[column] = _list(name, implied[name], from_path=True)
    for name, column in TIMES.items():
        if name in merged:
            filters[column] = _time(name, merged[name])
    order_by = given.get("orderBy")
    if order_by not in (None, "eventTime", "recordTime"):
        raise QueryParameterError(
            f"orderBy: {order_by!r}; this server orders by eventTime or recordTime",
            parameter="orderBy",
        )
    direction = given.get("orderDirection")
    if direction not in (None, "ASC", "DESC"):
        raise QueryParameterError(
            f"orderDirection: must be ASC or DESC, got {direction!r}", parameter="orderDirection"
        )
    # without orderBy, the first events in the default order (GS1 asks for an exception;
    # see docs/epcis.md)
    count_limit = (
        _count("eventCountLimit", given["eventCountLimit"]) if "eventCountLimit" in given else None
    )
    # the server's upper limit wins over a larger perPage (the bindings allow it)
    asked = _count("perPage", given["perPage"]) if "perPage" in given else DEFAULT_PER_PAGE
    # without orderBy: record-time order, oldest first (new events come last, so paging a
    # growing store misses nothing); with it, GS1's default direction is DESC
    descending = (direction or "DESC") == "DESC" if order_by else direction == "DESC"
    query = EventQuery(
        filters=filters,
        by_record_time=order_by != "eventTime",
        descending=descending,
        count_limit=count_limit,
        per_page=min(asked, max_per_page),
    )
    token = given.get("nextPageToken")
    return query, _position(token) if token is not None else None


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)
# nextPageToken: the last event's sort time (microseconds since 1970: exact, like
# timestamptz), its id and the number of events served so far. Its format is the whole of
# it, so that a token the pattern lets through always parses (a time beyond the years 1
# to 9999 is taken as the nearest of them).
TOKEN = r"^(-?[0-9]{1,18})_([0-9]{1,18})_([0-9]{1,10})$"


def _token(position: Position) -> str:
    at = (position.after_time - EPOCH) // MICROSECOND
    return f"{at}_{position.after_id}_{position.served}"


def _position(token: str) -> Position:
    m = re.fullmatch(TOKEN, token)
    if m is None:
        raise QueryParameterError(
            "nextPageToken: not one this server gave (take it from the Link header)",
            parameter="nextPageToken",
        )
    micros = int(m.group(1))
    try:
        at = EPOCH + micros * MICROSECOND
    except OverflowError:
        at = LAST if micros > 0 else FIRST
    return Position(at, int(m.group(2)), int(m.group(3)))


def answer_event(row: Row) -> Row:
    """A stored event as a query answers it: as captured, with the server's recordTime."""
    event = dict(row["event"])
    record = row["record_time"].astimezone(UTC).isoformat(timespec="milliseconds")
    event["recordTime"] = record.replace("+00:00", "Z")
    return event


def page(
    conn: DbConn, cooperative_id: UUID, query: EventQuery, position: Position | None
) -> tuple[list[Row], str | None]:
    """One page of the cooperative's events matching `query` (after `position`, else
    from the first), and the nextPageToken of the next page (None on the last)."""
    served = position.served if position else 0
    size = query.per_page
    if query.count_limit is not None:
        size = min(size, query.count_limit - served)
    if size <= 0:
        return [], None
    params = {
        **query.filters,
        "cooperative_id": cooperative_id,
        "by_record_time": query.by_record_time,
        "descending": query.descending,
        "after_time": position.after_time if position else None,
        "after_id": position.after_id if position else None,
        "limit": size + 1,
    }
    # unprepared: the plan is made for these values, which folds the unused filters away
    rows = conn.execute(SQL["epcis_events_page"], params, prepare=False).fetchall()
    more = len(rows) > size
    rows = rows[:size]
    served += len(rows)
    if query.count_limit is not None and served >= query.count_limit:
        more = False
    next_token = None
    if more and rows:
        last = rows[-1]
        at = last["record_time"] if query.by_record_time else last["event_time"]
        next_token = _token(Position(at, int(last["id"]), served))
    return [answer_event(r) for r in rows], next_token


def query_document(events: list[Row], query_name: str = "SimpleEventQuery") -> Row:
    """An EPCISQueryDocument holding `events`."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": now,
        "epcisBody": {
            "queryResults": {"queryName": query_name, "resultsBody": {"eventList": events}}
        },
    }


def event(conn: DbConn, cooperative_id: UUID, event_id: str) -> Row:
    """The cooperative's event `event_id` as an EPCISQueryDocument; NoSuchResource when it
    has none."""
    row = conn.execute(
        SQL["epcis_event_by_id"], {"cooperative_id": cooperative_id, "event_id": event_id}
    ).fetchone()
    if row is None:
        raise NoSuchResource(f"there is no event {event_id!r}")
    return query_document([answer_event(row)])


def event_types_document() -> Row:
    """GET /eventTypes: the event types this repository takes (the five of EPCIS 2.0;
    an extension type is stored and queried like them, by its URI)."""
    return {"@context": EPCIS_CONTEXT, "type": "Collection", "member": list(EVENT_TYPES)}
