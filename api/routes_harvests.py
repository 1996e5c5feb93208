"""`GET /v1/harvests`: the cooperative's harvests, newest first, with what is left of each,
so that a clerk can choose the `harvest_ids` of a cherry lot (POST /v1/lots)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, Field

from coffeetrace.api.deps import Conn, Reader
from coffeetrace.api.routes_registry import Limit, _get
from coffeetrace.api.schemas import Error, Page, error_responses
from coffeetrace.errors import ValidationFailed
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.api", "harvests.sql")
REGISTRY_SQL = load_queries("coffeetrace.api", "registry.sql")

router = APIRouter(prefix="/v1", tags=["lots"], responses=error_responses(401, 403, 404, 422))

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# next_cursor: the last row's time (microseconds since 1970, exact like timestamptz; 16
# digits reach past the year 2200) and id. The schema states the whole format, so a cursor
# it lets through always parses.
UUID_TEXT = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CURSOR = rf"^(-?[0-9]{{1,16}})_({UUID_TEXT})$"
Cursor = Annotated[
    str | None,
    Query(pattern=CURSOR, description="`next_cursor` of the previous page, unchanged."),
]
# any cooperative's device ids fit (no NUL, which PostgreSQL text cannot hold)
DEVICE_FILTER = r"^[A-Za-z0-9_.-]{1,200}$"


class HarvestLot(BaseModel):
    lot_id: UUID
    code: str
    kg: float = Field(description="Kilograms the lot took from the harvest.")


class Harvest(BaseModel):
    id: UUID
    time: datetime
    tree_id: UUID
    tree_tag: str
    plot_id: UUID
    plot_code: str
    farm_id: UUID
    farm_code: str
    device_id: str
    cherry_kg: float
    ripeness_pct: float | None
    assigned_kg: float = Field(description="Kilograms already in cherry lots (`lots`).")
    remaining_kg: float = Field(
        description="Kilograms a new lot can still take: cherry_kg less assigned_kg."
    )
    lots: list[HarvestLot]


def _cursor(row: dict[str, Any]) -> str:
    return f"{(row['time'] - EPOCH) // MICROSECOND}_{row['id']}"


def _after(cursor: str | None) -> tuple[datetime | None, UUID | None]:
    if cursor is None:
        return None, None
    m = re.fullmatch(CURSOR, cursor)
    try:
        if m is None:
            raise ValueError(cursor)
        return EPOCH + int(m.group(1)) * MICROSECOND, UUID(m.group(2))
    except (ValueError, OverflowError):
        raise ValidationFailed(
            "cursor is not one this API returned; pass next_cursor unchanged", field="cursor"
        ) from None


# An RFC 3339 date-time text, as the schema's format says (the time zone is checked by
# _aware, with a clearer message): pydantic alone would also take "0.5" as seconds since
# 1970.
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?$"
)


def _time_text(value: Any) -> Any:
    if isinstance(value, str) and not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time, e.g. 2025-11-10T00:00:00+07:00")
    return value


QueryTime = Annotated[datetime, BeforeValidator(_time_text)]


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValidationFailed(
            f"{field}: give the time zone, e.g. 2025-11-10T00:00:00+07:00 or"
            " 2025-11-10T00:00:00Z (a time without one is ambiguous)",
            field=field,
        )
    return value


@router.get(
    "/harvests",
    response_model=Page[Harvest],
    summary="Harvests, newest first, with the kilograms left for a lot",
    description="Filters combine (all must hold). A harvest a lot took only part of stays"
    " `unassigned` while kilograms are left: `POST /v1/lots` with its id takes what is left."
    " A tree, plot, farm or device of another cooperative answers 404.",
    responses={
        422: {
            "model": Error,
            "description": "A filter is invalid: not of its format, a time without its time"
            " zone, `from` not before `to`, or a cursor this API did not return",
        }
    },
)
def list_harvests(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: Cursor = None,
    plot_id: UUID | None = None,
    tree_id: UUID | None = None,
    farm_id: UUID | None = None,
    device_id: Annotated[str | None, Query(pattern=DEVICE_FILTER)] = None,
    since: Annotated[
        QueryTime | None,
        Query(alias="from", description="Harvested at or after this time (with time zone)."),
    ] = None,
    until: Annotated[
        QueryTime | None,
        Query(alias="to", description="Harvested before this time (with time zone)."),
    ] = None,
    unassigned: Annotated[
        bool | None,
        Query(
            description="true: only harvests with kilograms left (none in a lot yet, or"
            " only part of them); false: only those with nothing left (wholly in lots)."
        ),
    ] = None,
) -> dict:
    coop = caller.cooperative_id
    since, until = _aware(since, "from"), _aware(until, "to")
    if since is not None and until is not None and since >= until:
        raise ValidationFailed(
            f"from ({since.isoformat()}) must be before to ({until.isoformat()}):"
            " the period is [from, to)",
            field="from",
        )
    after_time, after_id = _after(cursor)
    # name an id that is not the caller's (404) rather than answer an empty page
    for query, kind, value in (
        (REGISTRY_SQL["get_plot"], "plot", plot_id),
        (REGISTRY_SQL["get_tree"], "tree", tree_id),
        (REGISTRY_SQL["get_farm"], "farm", farm_id),
    ):
        if value is not None:
            _get(conn, query, kind, value, coop)
    if device_id is not None:  # harvests name the device by the id its row has
        device_id = _get(conn, REGISTRY_SQL["get_device"], "device", device_id, coop)["id"]
    rows = conn.execute(
        SQL["list_harvests"],
        {
            "cooperative_id": coop,
            "after_time": after_time,
            "after_id": after_id,
            "plot_id": plot_id,
            "tree_id": tree_id,
            "farm_id": farm_id,
            "device_id": device_id,
            "since": since,
            "until": until,
            "unassigned": unassigned,
            "limit": limit + 1,
        },
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": _cursor(rows[-1]) if more and rows else None}
