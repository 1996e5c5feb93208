"""EPCIS query subscriptions over webhooks (GS1's REST bindings,
/queries/{name}/subscriptions): the events of a named query are POSTed to the
subscriber's `dest` as EPCISQueryDocuments, streaming (as soon as they are recorded) or
on a schedule (the bindings' second/minute/hour/dayOfMonth/month/dayOfWeek).

Delivery is at least once, in record-time order: each subscription has a cursor (the
record time and id of the last event its receiver acknowledged with a 2xx), stored in the
database and moved only after a 2xx, so a restart resends at most the callback that was
in flight. Events are taken only below the record horizon (epcis_record_horizon: the
start of the oldest open transaction), so an event that commits after a later-recorded
one is never skipped. The HTTP side (signing, sending, backoff) is api/epcis_deliverer.py.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import socket
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import epcis_hash, epcis_queries, epcis_query
from coffeetrace.trace import queries as q
from coffeetrace.trace.epcis_capture import EpcisValidation, NoSuchResource

SQL = load_queries("coffeetrace.trace", "epcis_queries.sql")
EVENTS_SQL = load_queries("coffeetrace.trace", "epcis_store.sql")
SCHEMES = ("http", "https")
MAX_ID = 2**63 - 1
# the bindings' schedule fields, finest first, with their ranges
FIELDS: dict[str, tuple[int, int]] = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "dayOfMonth": (1, 31),
    "month": (1, 12),
    "dayOfWeek": (1, 7),
}
# how fine each field is: the two days are the same level
RANK = {"second": 0, "minute": 1, "hour": 2, "dayOfMonth": 3, "dayOfWeek": 3, "month": 4}
ELEMENT = re.compile(r"^(?:(\d{1,2})|\[(\d{1,2})-(\d{1,2})\])$")
SCHEDULE_YEARS = 5  # a schedule that matches no time within this is refused


class UnsafeDestination(EpcisValidation):
    """A webhook `dest` this server does not call."""


# --- schedules -------------------------------------------------------------------------
def parse_schedule(schedule: Any) -> dict[str, list[int]]:
    """The values each field matches. A field is Element ("," Element)*, an Element a
    number or a range [low-high] (EPCIS 1.2 section 8.2.5.3). An omitted field finer than
    the finest given one is its lowest value (hour=1, minute=5: 01:05:00 once a day); a
    coarser one matches any value."""
    if not isinstance(schedule, dict) or not schedule:
        raise EpcisValidation("schedule: an object with at least one of " + ", ".join(FIELDS),
                              field="schedule")  # fmt: skip
    unknown = sorted(set(schedule) - set(FIELDS))
    if unknown:
        raise EpcisValidation(f"schedule.{unknown[0]}: not a field ({', '.join(FIELDS)})",
                              field="schedule")  # fmt: skip
    finest = min(RANK[f] for f in schedule)
    values: dict[str, list[int]] = {}
    for name, (low, high) in FIELDS.items():
        text = schedule.get(name)
        if text is None:
            # a day of the week is never implied: "month=2" starts on the 1st, any weekday
            lowest = RANK[name] < finest and name != "dayOfWeek"
            values[name] = [low] if lowest else list(range(low, high + 1))
            continue
        if not isinstance(text, str):
            raise EpcisValidation(
                f'schedule.{name}: must be a string such as "5" or "[1-5],30"', field="schedule"
            )
        chosen: set[int] = set()
        for element in text.split(","):
            m = ELEMENT.fullmatch(element.strip())
            if m is None:
                raise EpcisValidation(
                    f"schedule.{name}: {element!r} is neither a number nor a range [low-high]",
                    field="schedule",
                )
            first = int(m.group(1) or m.group(2))
            last = int(m.group(1) or m.group(3))
            if not low <= first <= last <= high:
                raise EpcisValidation(
                    f"schedule.{name}: {element!r} is outside {low} to {high} (or reversed)",
                    field="schedule",
                )
            chosen.update(range(first, last + 1))
        values[name] = sorted(chosen)
    return values


def next_time(values: Mapping[str, list[int]], after: datetime) -> datetime | None:
    """The first time (UTC, whole seconds) after `after` the schedule matches."""
    start = after.astimezone(UTC)
    day: date = start.date()
    for _ in range(366 * SCHEDULE_YEARS):
        if (
            day.month in values["month"]
            and day.day in values["dayOfMonth"]
            and day.isoweekday() in values["dayOfWeek"]
        ):
            for hour in values["hour"]:
                for minute in values["minute"]:
                    if day == start.date() and (hour, minute) < (start.hour, start.minute):
                        continue
                    for second in values["second"]:
                        at = datetime(
                            day.year, day.month, day.day, hour, minute, second, tzinfo=UTC
                        )
                        if at > start:
                            return at
        day += timedelta(days=1)
    return None


# --- destinations ----------------------------------------------------------------------
def check_dest(dest: Any) -> str:
    """The webhook URL when its form is one this server calls (http or https, a host);
    where it points is checked at each call (resolve_dest)."""
    if not isinstance(dest, str) or not dest or len(dest) > 2000:
        raise UnsafeDestination("dest: the callback URL (http or https)", field="dest")
    parts = urlsplit(dest)
    if parts.scheme.lower() not in SCHEMES:
        raise UnsafeDestination(
            f"dest: scheme {parts.scheme or '(none)'!r}; this server calls http and https only",
            field="dest",
        )
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise UnsafeDestination("dest: needs a host, and no user or password in it", field="dest")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as exc:
        raise UnsafeDestination(f"dest: {exc}", field="dest") from exc
    return dest


def resolve_dest(dest: str, *, allow_private: bool) -> tuple[str, int, str]:
    """(host, port, the address to connect to): the first address of the host, refused
    when any of them is loopback, private, link-local or otherwise not public (unless
    `allow_private`). The caller connects to that address, so a second DNS answer cannot
    point the call elsewhere."""
    parts = urlsplit(check_dest(dest))
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeDestination(f"dest: {host!r} does not resolve ({exc})", field="dest") from exc
    addresses = [str(info[4][0]) for info in infos]
    for text in addresses:
        address = ipaddress.ip_address(text.split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is 127.0.0.1
        if not allow_private and not (mapped or address).is_global:
            raise UnsafeDestination(
                f"dest: {host!r} is {address}, not a public address (private-network"
                " destinations need COFFEETRACE_EPCIS_WEBHOOK_ALLOW_PRIVATE=true)",
                field="dest",
            )
    return host, port, addresses[0]


def signature(token: str, body: bytes) -> str:
    """The GS1-Signature header of a callback: HMAC-SHA256 of the body with the
    subscription's signatureToken, as `sha256=` and lowercase hex."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


# --- subscriptions ---------------------------------------------------------------------
def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def document(row: Row) -> Row:
    """A subscription as the bindings' response (no signatureToken), with its delivery
    state: `status` (active, failing), `lastError`, `attempts`."""
    doc: Row = {
        "subscriptionID": str(row["id"]),
        "queryName": row["query_name"],
        "dest": row["dest"],
        "createdAt": _iso(row["created_at"]),
        "initialRecordTime": _iso(row["initial_record_time"]),
        "status": row["status"],
        "attempts": row["attempts"],
    }
    if row["stream"]:
        doc["stream"] = True
    else:
        doc["schedule"] = row["schedule"]
        doc["reportIfEmpty"] = row["report_if_empty"]
        doc["nextRunAt"] = _iso(row["next_run_at"])
    for key, column in (("lastNotifiedAt", "last_notified_at"), ("minRecordTime", "cursor_time")):
        if row[column] is not None:
            doc[key] = _iso(row[column])
    if row["last_error"]:
        doc["lastError"] = row["last_error"]
    return doc


FIELDS_IN = {"dest", "signatureToken", "stream", "schedule", "reportIfEmpty", "initialRecordTime"}


def create(
    conn: DbConn, cooperative_id: UUID, query_name: str, body: Any, *, allow_private: bool
) -> Row:
    """Subscribe `dest` to the cooperative's query; the subscription's row. Where `dest`
    points is checked now (a clear 400) and again at each call (DNS may change)."""
    epcis_queries.get(conn, cooperative_id, query_name)
    if not isinstance(body, dict):
        raise EpcisValidation("the body must be a JSON object with dest and stream or schedule")
    unknown = sorted(set(body) - FIELDS_IN)
    if unknown:
        raise EpcisValidation(f"{unknown[0]}: not a field of a subscription", field=unknown[0])
    dest = check_dest(body.get("dest"))
    resolve_dest(dest, allow_private=allow_private)
    token = body.get("signatureToken")
    if not isinstance(token, str) or not 16 <= len(token) <= 1000:
        raise EpcisValidation(
            "signatureToken: a secret of 16 to 1000 characters (callbacks are signed with it)",
            field="signatureToken",
        )
    stream, schedule = body.get("stream"), body.get("schedule")
    if (stream is not None) == (schedule is not None):
        raise EpcisValidation('give either "stream": true or a "schedule" (not both)',
                              field="stream")  # fmt: skip
    if stream is not None and stream is not True:
        raise EpcisValidation("stream: must be true (or give a schedule)", field="stream")
    next_run = None
    if schedule is not None:
        next_run = next_time(parse_schedule(schedule), datetime.now(UTC))
        if next_run is None:
            raise EpcisValidation(f"schedule: matches no time in the next {SCHEDULE_YEARS} years",
                                  field="schedule")  # fmt: skip
    report_if_empty = body.get("reportIfEmpty", False)
    if not isinstance(report_if_empty, bool):
        raise EpcisValidation("reportIfEmpty: true or false", field="reportIfEmpty")
    initial = body.get("initialRecordTime")
    initial_at = None
    if initial is not None:
        initial_at = epcis_hash.parse_time(str(initial)) if isinstance(initial, str) else None
        if initial_at is None:
            raise EpcisValidation("initialRecordTime: an RFC 3339 date-time",
                                  field="initialRecordTime")  # fmt: skip
    params = dict(
        cooperative_id=cooperative_id,
        query_name=query_name,
        dest=dest,
        signature_token=token,
        stream=schedule is None,
        schedule=Jsonb(schedule) if schedule is not None else None,
        report_if_empty=report_if_empty,
        initial_record_time=initial_at,
        next_run_at=next_run,
    )
    row = q.one(conn, SQL["epcis_subscription_insert"], params)
    assert row is not None  # insert ... returning
    return row


def _key(subscription_id: str) -> UUID | None:
    try:
        return UUID(subscription_id)
    except ValueError:
        return None


def get(conn: DbConn, cooperative_id: UUID, query_name: str, subscription_id: str) -> Row:
    epcis_queries.get(conn, cooperative_id, query_name)
    params = dict(cooperative_id=cooperative_id, query_name=query_name, id=_key(subscription_id))
    row = q.one(conn, SQL["epcis_subscription_get"], params) if params["id"] else None
    if row is None:
        raise NoSuchResource(f"there is no subscription {subscription_id!r} of {query_name!r}")
    return row


def listing(conn: DbConn, cooperative_id: UUID, query_name: str) -> list[Row]:
    epcis_queries.get(conn, cooperative_id, query_name)
    params = dict(cooperative_id=cooperative_id, query_name=query_name)
    return q.rows(conn, SQL["epcis_subscription_list"], params)


def delete(conn: DbConn, cooperative_id: UUID, query_name: str, subscription_id: str) -> None:
    get(conn, cooperative_id, query_name, subscription_id)
    params = dict(cooperative_id=cooperative_id, query_name=query_name, id=_key(subscription_id))
    q.execute(conn, SQL["epcis_subscription_delete"], params)


# --- what to deliver -------------------------------------------------------------------
def due(conn: DbConn, limit: int) -> list[Row]:
    """Subscriptions (of every organisation) whose delivery is due, with their query."""
    return q.rows(conn, SQL["epcis_subscriptions_due"], {"limit": limit})


def horizon(conn: DbConn) -> datetime:
    row = q.one(conn, SQL["epcis_record_horizon"])
    assert row is not None
    at: datetime = row["horizon"]
    return at


def next_batch(
    conn: DbConn, sub: Row, below: datetime, *, max_events: int, max_bytes: int
) -> tuple[list[Row], tuple[datetime, int] | None]:
    """The next events after the subscription's cursor, recorded before `below`, oldest
    first: at most `max_events`, and no more than `max_bytes` of JSON (an event larger
    than that goes alone); and the cursor after them (None when there are none)."""
    query, _ = epcis_query.parse(
        epcis_queries.parameters(sub["query"]), max_per_page=max_events,
        allowed=epcis_queries.QUERY_PARAMETERS,
    )  # fmt: skip
    filters = dict(query.filters)
    limit = filters.get("lt_record_time")
    filters["lt_record_time"] = min(limit, below) if limit is not None else below
    # a subscription reports in record-time order, oldest first, all of it (the query's
    # orderBy and eventCountLimit are for its /events)
    ordered = replace(query, filters=filters, by_record_time=True, descending=False,
                      count_limit=None, per_page=max_events)  # fmt: skip
    if sub["cursor_time"] is not None:
        position = epcis_query.Position(sub["cursor_time"], int(sub["cursor_id"]), 0)
    else:  # from initialRecordTime on, inclusive
        position = epcis_query.Position(
            sub["initial_record_time"] - epcis_query.MICROSECOND, MAX_ID, 0
        )
    params = {
        **ordered.filters,
        "cooperative_id": sub["cooperative_id"],
        "by_record_time": True,
        "descending": False,
        "after_time": position.after_time,
        "after_id": position.after_id,
        "limit": max_events,
    }
    # the query GET /events runs (unprepared, as there: a plan for these values)
    rows = conn.execute(EVENTS_SQL["epcis_events_page"], params, prepare=False).fetchall()
    batch: list[Row] = []
    size = 0
    for row in rows:
        event = epcis_query.answer_event(row)
        length = len(json.dumps(event, separators=(",", ":")).encode())
        if batch and size + length > max_bytes:
            break
        batch.append(row)
        size += length
    if not batch:
        return [], None
    last = batch[-1]
    return [epcis_query.answer_event(r) for r in batch], (last["record_time"], int(last["id"]))


def delivered(conn: DbConn, sub_id: UUID, cursor: tuple[datetime, int] | None) -> None:
    q.execute(conn, SQL["epcis_subscription_delivered"], {
        "id": sub_id, "cursor_time": cursor[0] if cursor else None,
        "cursor_id": cursor[1] if cursor else None,
    })  # fmt: skip


def looked(conn: DbConn, sub_id: UUID) -> None:
    """Nothing was due of the subscription: it goes to the back of the due ones."""
    q.execute(conn, SQL["epcis_subscription_looked"], {"id": sub_id})


def schedule_next(conn: DbConn, sub: Row) -> None:
    """After a scheduled run: the next time its schedule matches."""
    at = next_time(parse_schedule(sub["schedule"]), datetime.now(UTC))
    q.execute(conn, SQL["epcis_subscription_scheduled"], {"id": sub["id"], "next_run_at": at})


def failed(
    conn: DbConn,
    sub_id: UUID,
    error: str,
    *,
    base_s: float,
    max_s: float,
    failing_after: int,
    attempts: int,
) -> Row:
    """A failed callback: the next attempt after an exponential backoff; 'failing' after
    `failing_after` failures in a row."""
    backoff = min(max_s, base_s * 2 ** min(attempts, 30))
    row = q.one(conn, SQL["epcis_subscription_failed"], {
        "id": sub_id, "error": error[:500], "backoff_s": backoff, "failing_after": failing_after,
    })  # fmt: skip
    assert row is not None
    return row
