"""Trading partners: one organisation names another (by code or id) as a partner, the
other accepts or declines; either ends it. Shipments (a later session) go only between
partners, and what a partner may see of the other's upstream data is the partnership's
`scopes`.

A partnership is proposed -> active (accepted) or declined; proposed or active -> ended
(by either: a proposal ended by its proposer is withdrawn). Two organisations have at most
one open (proposed or active) partnership; declined and ended ones stay as history, and a
new one can be proposed after them.

Scopes say what each partner may see of the other's upstream data: `public_provenance`
(the public provenance of shipped lots: what their public pages show) and
`eudr_geolocation` (the plots of shipped lots, which an EU importer's due diligence
needs). Both by default; no scope reaches a farm's personal data (farm_private), and the
database refuses any other (migration 0050).

Every change is a signed event in the chains of both organisations ("partnership_proposed",
"partnership_accepted", "partnership_declined", "partnership_ended"), appended in the order
of their ids: a transaction that appends to two chains always takes their locks in that
order, so two such transactions never wait for each other in a cycle. Every function takes
an open connection (the caller owns the transaction); an organisation is named by its id
(its cooperative_id).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final, LiteralString
from uuid import UUID

import psycopg

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import organisations
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "partners.sql")

PUBLIC_PROVENANCE: Final = "public_provenance"
EUDR_GEOLOCATION: Final = "eudr_geolocation"
SCOPES: Final = (PUBLIC_PROVENANCE, EUDR_GEOLOCATION)
DEFAULT_SCOPES: Final = SCOPES
STATUSES: Final = ("proposed", "active", "declined", "ended")
EVENT_KINDS: Final = {
    "proposed": "partnership_proposed",
    "active": "partnership_accepted",
    "declined": "partnership_declined",
    "ended": "partnership_ended",
}


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes once each, in `SCOPES` order; ValidationFailed for none or another."""
    given = list(scopes)
    other = [s for s in given if s not in SCOPES]
    if other:
        raise ValidationFailed(
            f"unknown scope {str(other[0])[:40]!r}: a partner may be shown"
            f" {', '.join(SCOPES)}, and never a farm's personal data",
            field="scopes",
        )
    if not given:
        raise ValidationFailed(f"name at least one scope ({', '.join(SCOPES)})", field="scopes")
    return [s for s in SCOPES if s in given]


def _check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ValidationFailed(
            f"status {status[:20]!r} is none of {', '.join(STATUSES)}", field="status"
        )


# --- reading ------------------------------------------------------------------------
def get(conn: DbConn, viewer: UUID, partnership_id: UUID) -> Row:
    """The partnership as `viewer` sees it: {"id", "status", "scopes", "proposer",
    "invitee" (codes), "proposed_by_us", "proposed_at", "accepted_at", "declined_at",
    "ended_at", "ended_by" (a code or None), "partner" (the other side's public profile)}.
    NotFound when `viewer` is not a party to it, as when there is none."""
    row = q.one(
        conn,
        SQL["partnerships_of"],
        {"viewer": viewer, "id": partnership_id, "status": None, "after": None, "limit": 1},
    )
    if row is None:
        raise _not_yours(partnership_id)
    return row


def list_partnerships(
    conn: DbConn,
    viewer: UUID,
    *,
    status: str | None = None,
    after: UUID | None = None,
    limit: int = 50,
) -> list[Row]:
    """`viewer`'s partnerships as `get` gives them, by id after `after`."""
    _check_status(status)
    return q.rows(
        conn,
        SQL["partnerships_of"],
        {"viewer": viewer, "id": None, "status": status, "after": after, "limit": limit},
    )


def scopes(conn: DbConn, viewer: UUID, owner: UUID) -> tuple[str, ...]:
    """What `viewer` may see of `owner`'s upstream data: the scopes of their active
    partnership, none when they are not partners; every scope when they are the same
    organisation (its own data is not a partner's to grant)."""
    if viewer == owner:
        return SCOPES
    row = q.one(conn, SQL["partnership_active_scopes"], {"a": viewer, "b": owner})
    return tuple(row["scopes"]) if row is not None else ()


def are_partners(conn: DbConn, a: UUID, b: UUID) -> bool:
    """Whether `a` and `b` have an active (accepted, not ended) partnership."""
    return a != b and q.one(conn, SQL["partnership_active_scopes"], {"a": a, "b": b}) is not None


# --- changing -----------------------------------------------------------------------
def propose(
    conn: DbConn,
    proposer: UUID,
    partner: str | UUID,
    *,
    keys: KeyRing,
    scopes: Iterable[str] = DEFAULT_SCOPES,
) -> Row:
    """`proposer` names the organisation `partner` (its code or id) as a trading partner,
    stating the scopes each may see; returns the partnership as `get` gives it.

    NotFound for an unknown organisation; RuleViolation "partner_self" for itself;
    Conflict when the two already have an open partnership (the message says whose move
    it is)."""
    granted = check_scopes(scopes)
    other = organisations.find(conn, partner)
    if other["id"] == proposer:
        raise RuleViolation(
            "partner_self",
            "an organisation cannot be its own trading partner; name another's code",
            field="partner",
        )
    _refuse_if_open(conn, proposer, other)
    try:
        with conn.transaction():  # a savepoint: a concurrent proposal leaves the rest
            row = q.one(
                conn,
                SQL["partnership_insert"],
                {"proposer_id": proposer, "invitee_id": other["id"], "scopes": granted},
            )
    except psycopg.errors.UniqueViolation:
        # the other proposed at the same moment: the same answer as had it been first
        _refuse_if_open(conn, proposer, other)
        raise
    assert row is not None  # insert ... returning
    return _record(conn, keys, proposer, _lock(conn, proposer, row["id"]), "proposed", row["at"])


def accept(conn: DbConn, organisation: UUID, partnership_id: UUID, *, keys: KeyRing) -> Row:
    """The invitee accepts a proposal: the two are partners from now on."""
    return _answer(conn, organisation, partnership_id, "active", keys=keys)


def decline(conn: DbConn, organisation: UUID, partnership_id: UUID, *, keys: KeyRing) -> Row:
    """The invitee declines a proposal; either may propose again later."""
    return _answer(conn, organisation, partnership_id, "declined", keys=keys)


def end(conn: DbConn, organisation: UUID, partnership_id: UUID, *, keys: KeyRing) -> Row:
    """Either party ends an active partnership, or a proposal (its proposer withdraws
    it). What was shipped while it was active stays shipped."""
    current = _lock(conn, organisation, partnership_id)
    if current["status"] not in ("proposed", "active"):
        raise Conflict(
            f"partnership {partnership_id} is {current['status']} already; nothing to end",
            status=current["status"],
        )
    changed = q.one(conn, SQL["partnership_end"], {"id": partnership_id, "by": organisation})
    assert changed is not None  # locked in a state the update takes
    return _record(conn, keys, organisation, current, "ended", changed["at"])


def _answer(
    conn: DbConn, organisation: UUID, partnership_id: UUID, status: str, *, keys: KeyRing
) -> Row:
    current = _lock(conn, organisation, partnership_id)
    verb = "accept" if status == "active" else "decline"
    if current["status"] != "proposed":
        raise Conflict(
            f"partnership {partnership_id} is {current['status']}, not a proposal to {verb}",
            status=current["status"],
        )
    if current["proposer_id"] == organisation:
        raise Conflict(
            f"your organisation proposed partnership {partnership_id}: organisation"
            f" {current['invitee_code']} accepts or declines it (you may end it)",
            status=current["status"],
        )
    query: LiteralString = (
        SQL["partnership_accept"] if status == "active" else SQL["partnership_decline"]
    )
    changed = q.one(conn, query, {"id": partnership_id})
    assert changed is not None  # locked while proposed
    return _record(conn, keys, organisation, current, status, changed["at"])


def _lock(conn: DbConn, organisation: UUID, partnership_id: UUID) -> Row:
    row = q.one(conn, SQL["partnership_lock"], {"id": partnership_id, "viewer": organisation})
    if row is None:
        raise _not_yours(partnership_id)
    return row


def _not_yours(partnership_id: UUID) -> NotFound:
    return NotFound(
        f"partnership {partnership_id} is not one of your organisation's", kind="partnership"
    )


def _refuse_if_open(conn: DbConn, proposer: UUID, other: Row) -> None:
    open_ = q.one(conn, SQL["partnership_open_between"], {"a": proposer, "b": other["id"]})
    if open_ is None:
        return
    details: dict[str, Any] = {"partnership_id": str(open_["id"]), "status": open_["status"]}
    if open_["status"] == "active":
        message = f"your organisation and {other['code']} are partners already"
    elif open_["proposer_id"] == proposer:
        message = (
            f"your organisation proposed a partnership to {other['code']} on"
            f" {open_['proposed_at']:%Y-%m-%d}; it awaits their answer"
        )
    else:
        message = (
            f"{other['code']} has proposed a partnership to your organisation already:"
            f" accept it (POST /v1/partners/{open_['id']}/accept)"
        )
    raise Conflict(message, **details)


def _record(
    conn: DbConn, keys: KeyRing, actor: UUID, locked: Row, status: str, at: datetime
) -> Row:
    """The change as an event in both organisations' chains; the partnership as `actor`
    sees it now."""
    by = locked["proposer_code"] if locked["proposer_id"] == actor else locked["invitee_code"]
    payload = {
        "partnership_id": str(locked["id"]),
        "status": status,
        "proposer": {"id": str(locked["proposer_id"]), "code": locked["proposer_code"]},
        "invitee": {"id": str(locked["invitee_id"]), "code": locked["invitee_code"]},
        "scopes": list(locked["scopes"]),
        "by": by,
    }
    for organisation in sorted((locked["proposer_id"], locked["invitee_id"])):
        append_event(conn, organisation, EVENT_KINDS[status], [], at, payload, keys=keys)
    return get(conn, actor, locked["id"])
