"""DDS reference numbers that travel with the coffee.

An organisation records the reference and verification numbers of a due diligence
statement it filed for one of its lots ("filed"), or received with it from its supplier
("received"). Each recording is a signed chain event of the organisation
("dds_reference") holding the row's facts, and the row names it (event_seq), so that a
row edited, inserted or deleted with psql is named by verification (`check_lots` for a
lot's, `check_chain` for the organisation's whole chain). The event names no lot in its
lot_ids: a reference is not part of the lot's provenance and does not move its signed
statement; the payload names the lot.

The references in force for a lot (`in_force`) are its own and those of every lot
upstream of it, through blends, packing and shipments' receipts (the backward walk of
genealogy), each with the lot and the organisation it was recorded on; statements filed
through coffeetrace (euis/, table dds_submissions) count once the EU made them AVAILABLE,
in the environment the caller names. A lot's statement groups the upstream ones
(`to_group`, dds.build_dds's groupedDeclarations); its EPCIS export carries them as
regulatory information (`regulatory_information`); its page says one is on file.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import checkpoints
from coffeetrace.trace import queries as q
from coffeetrace.trace.chain import append_event, events_of_kind
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.trace", "dds_references.sql")
log = logging.getLogger(__name__)

EVENT_KIND: Final = "dds_reference"
ROLES: Final = ("filed", "received")
# the EU's ReferenceNumberType (at most 14 characters; its numbers are upper-case letters
# and digits) and VerificationNumberType (5 to 35); RULES.md "Identifiers and lifecycle"
REFERENCE_NUMBER: Final = re.compile(r"^[A-Z0-9]{1,14}$")
VERIFICATION_NUMBER: Final = re.compile(r"^[A-Z0-9]{5,35}$")
NOTE_MAX: Final = 2000
RECORDED_BY_MAX: Final = 200
REGULATORY_ACT: Final = "EU 2023/1115"
IDENTIFIER_TYPE: Final = "gs1:RegulatoryIdentifierType-DUE_DILIGENCE_STATEMENT"
FACTS: Final = (
    "cooperative_id",
    "lot_id",
    "reference_number",
    "verification_number",
    "role",
    "note",
    "recorded_by",
    "recorded_at",
)


def _number(value: Any, field: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text ({what})", field=field)
    text = value.strip().upper()
    if not pattern.fullmatch(text):
        shown = value[:40].encode("unicode_escape").decode("ascii")
        raise ValidationFailed(f"{field} {shown!r} is not {what}", field=field)
    return text


def check_numbers(reference_number: Any, verification_number: Any) -> tuple[str, str]:
    """The two numbers upper-cased, or ValidationFailed naming the one that is not the EU's."""
    return (
        _number(
            reference_number,
            "reference_number",
            REFERENCE_NUMBER,
            "a DDS reference number (1 to 14 letters and digits, as the EU gives it)",
        ),
        _number(
            verification_number,
            "verification_number",
            VERIFICATION_NUMBER,
            "a DDS verification number (5 to 35 letters and digits)",
        ),
    )


def facts_of(row: Row) -> dict[str, Any]:
    """What the chain records of a reference row, JSON-native."""
    found: dict[str, Any] = jsonable({f: row[f] for f in FACTS})
    return found


def record(
    conn: DbConn,
    keys: KeyRing,
    cooperative_id: UUID,
    lot_id: UUID,
    *,
    reference_number: Any,
    verification_number: Any,
    role: Any = "received",
    note: Any = None,
    recorded_by: str,
) -> Row:
    """Record a statement's numbers on one of the organisation's lots, in one signed chain
    event. NotFound for another organisation's lot (as for none), ValidationFailed naming
    the field, Conflict when the lot holds that reference number already."""
    if q.one(conn, SQL["own_lot"], {"lot_id": lot_id, "cooperative_id": cooperative_id}) is None:
        raise NotFound("no such lot", lot_id=str(lot_id))
    reference, verification = check_numbers(reference_number, verification_number)
    if role not in ROLES:
        raise ValidationFailed(
            f"role is one of {', '.join(ROLES)} (the organisation filed the statement, or"
            " received it with the coffee)",
            field="role",
        )
    if note is not None:
        if not isinstance(note, str) or "\x00" in note or len(note) > NOTE_MAX:
            raise ValidationFailed(f"note is text of at most {NOTE_MAX} characters", field="note")
        note = note.strip() or None
    by = recorded_by.strip()[:RECORDED_BY_MAX] or "unknown"
    row = q.one(
        conn,
        SQL["insert_reference"],
        {
            "cooperative_id": cooperative_id,
            "lot_id": lot_id,
            "reference_number": reference,
            "verification_number": verification,
            "role": role,
            "note": note,
            "recorded_by": by,
        },
    )
    if row is None:
        raise Conflict(
            f"the lot holds DDS reference {reference} already",
            field="reference_number",
            reference_number=reference,
        )
    event = append_event(
        conn,
        cooperative_id,
        EVENT_KIND,
        [],  # not the lot's provenance: its signed statement stays as it is
        datetime.now(UTC),
        {"lot_id": str(lot_id), "reference": {"id": str(row["id"]), "facts": facts_of(row)}},
        keys=keys,
    )
    q.execute(conn, SQL["set_reference_seq"], {"seq": event["seq"], "id": row["id"]})
    checkpoints.issue(conn, keys, cooperative_id)  # partners can hold the chain to it at once
    log.info("dds_reference_recorded lot_id=%s seq=%s role=%s", lot_id, event["seq"], role)
    return {**row, "event_seq": event["seq"]}


# --- the references in force -------------------------------------------------------


def in_force(conn: DbConn, lot_id: UUID, *, environment: str | None) -> list[Row]:
    """The references in force for the lot: [{"reference_number", "verification_number",
    "role" ("filed"|"received"), "source" ("recorded", or "submitted": filed through
    coffeetrace and AVAILABLE in `environment`), "own" (recorded on this lot, else on a lot
    upstream of it), "lot": {"id", "code", "public_id"}, "organisation": {"code", "name"},
    "number_public" (the recording organisation's page setting), "recorded_at"}], oldest
    first; one entry per lot and reference number (a recorded one before a submission's).
    The caller checks tenancy of the lot first."""
    seen: set[tuple[UUID, str]] = set()
    out: list[Row] = []
    rows = q.rows(conn, SQL["references_in_force"], {"lot_id": lot_id, "environment": environment})
    rows.sort(key=lambda r: r["source"] != "recorded")  # stable: keeps the time order
    for r in rows:
        key = (r["lot_id"], r["reference_number"])
        if key in seen:
            continue
        seen.add(key)
        out.append(
            {
                "reference_number": r["reference_number"],
                "verification_number": r["verification_number"],
                "role": r["role"],
                "source": r["source"],
                "own": r["lot_id"] == lot_id,
                "lot": {"id": r["lot_id"], "code": r["lot_code"], "public_id": r["lot_public_id"]},
                "organisation": {"code": r["organisation_code"], "name": r["organisation_name"]},
                "number_public": bool(r["number_public"]),
                "recorded_at": r["recorded_at"],
            }
        )
    out.sort(key=lambda e: (e["recorded_at"], e["reference_number"]))
    return out


def to_group(references: Sequence[Row]) -> list[str]:
    """The reference numbers a statement of the lot groups: every upstream one, and the
    ones the lot received; never one the lot's own organisation filed for it (a statement
    cannot group itself, RULES.md "Grouped declarations")."""
    found = [r["reference_number"] for r in references if not (r["own"] and r["role"] == "filed")]
    return list(dict.fromkeys(found))


def page_summary(references: Sequence[Row]) -> Row:
    """What the public page says: whether a statement is on file, and the numbers their
    organisations allow to show (never a verification number)."""
    return {
        "on_file": bool(references),
        "numbers": list(
            dict.fromkeys(r["reference_number"] for r in references if r["number_public"])
        ),
    }


def regulatory_information(references: Sequence[Row], *, verification: bool) -> list[Row]:
    """The references as GS1 Web Vocabulary regulatory information (terms provisional in
    the vocabulary: docs/eudr.md), for the lot's EPCIS events; `verification`: with the
    verification numbers (for the lot's own organisation, never in public)."""
    out = [
        {
            "type": "gs1:RegulatoryInformation",
            "gs1:regulatoryAct": REGULATORY_ACT,
            "gs1:regulatoryIdentifier": {
                "type": "gs1:RegulatoryIdentifier",
                "gs1:regulatoryIdentifierType": IDENTIFIER_TYPE,
                "ct:ddsReferenceNumber": r["reference_number"],
                **({"ct:ddsVerificationNumber": r["verification_number"]} if verification else {}),
            },
            "gs1:regulatoryInformationProvider": {
                "type": "gs1:Organization",
                "gs1:organizationName": r["organisation"]["name"],
            },
        }
        for r in references
    ]
    return out


# --- the organisation's page setting ---------------------------------------------------


def set_number_public(conn: DbConn, cooperative_id: UUID, public: bool) -> Row:
    """Whether the organisation's public pages show the reference numbers it recorded."""
    row = q.one(
        conn, SQL["set_number_public"], {"cooperative_id": cooperative_id, "public": public}
    )
    if row is None:
        raise NotFound("no such organisation", organisation_id=str(cooperative_id))
    return row


def number_public(conn: DbConn, cooperative_id: UUID) -> bool:
    row = q.one(conn, SQL["number_public"], {"cooperative_id": cooperative_id})
    return bool(row and row["dds_number_public"])


# --- verification -----------------------------------------------------------------------


def _problem(seq: Any, problem: str, detail: str, rid: str, **more: Any) -> Row:
    return {
        "seq": seq,
        "kind": EVENT_KIND,
        "problem": problem,
        "detail": detail,
        "record": {"type": "lot_dds_reference", "id": rid},
        **more,
    }


def _recorded(events: Sequence[Row]) -> dict[str, tuple[int, UUID, Row]]:
    """reference id -> (event seq, the event's organisation, the facts it recorded)."""
    out: dict[str, tuple[int, UUID, Row]] = {}
    for ev in events:
        if ev["kind"] != EVENT_KIND:
            continue
        item = (ev["payload"] or {}).get("reference") or {}
        out[str(item.get("id"))] = (ev["seq"], ev["cooperative_id"], item.get("facts") or {})
    return out


def _compare(rows: Sequence[Row], recorded: dict[str, tuple[int, UUID, Row]]) -> list[Row]:
    problems: list[Row] = []
    for row in rows:
        rid = str(row["id"])
        found = recorded.pop(rid, None)
        if found is None or row["event_seq"] != found[0] or row["cooperative_id"] != found[1]:
            problems.append(
                _problem(
                    row["event_seq"],
                    "dds_reference_unrecorded",
                    f"DDS reference {row['reference_number']} of lot {row['lot_id']} is in no"
                    " dds_reference event of its organisation that names it: it was written"
                    " behind the application's back",
                    rid,
                )
            )
            continue
        seq, _, facts = found
        current = facts_of(row)
        fields = [f for f in FACTS if facts.get(f) != current.get(f)]
        if fields:
            changes = "; ".join(
                f"{f} {json.dumps(facts.get(f))} became {json.dumps(current.get(f))}"
                for f in fields
            )
            problems.append(
                _problem(
                    seq,
                    "dds_reference_edited",
                    f"DDS reference {rid} differs from what event {seq} recorded: {changes}",
                    rid,
                    fields=fields,
                )
            )
    return problems


def check_lots(conn: DbConn, lot_ids: Sequence[UUID]) -> list[Row]:
    """The reference rows of the lots (a lot's verification: the lot and its upstream)
    against the events they name. The events' hashes and signatures are checked by
    verification with the lot's other events (`event_seqs`); a row deleted with psql is
    named by the organisation's whole-chain audit (`check_chain`)."""
    rows = q.rows(conn, SQL["references_of_lots"], {"lot_ids": list(lot_ids)})
    seqs = sorted({r["event_seq"] for r in rows if r["event_seq"] is not None})
    events = q.rows(conn, SQL["events_by_seq"], {"seqs": seqs}) if seqs else []
    return _compare(rows, _recorded(events))


def event_seqs(conn: DbConn, lot_ids: Sequence[UUID]) -> set[int]:
    """The chain events the lots' reference rows name (for verification to check)."""
    rows = q.rows(conn, SQL["references_of_lots"], {"lot_ids": list(lot_ids)})
    return {r["event_seq"] for r in rows if r["event_seq"] is not None}


def check_chain(conn: DbConn, cooperative_id: UUID) -> list[Row]:
    """Every reference row of the organisation against the dds_reference events of its
    chain, and every reference an event recorded that is no longer stored."""
    rows = q.rows(conn, SQL["references_of_cooperative"], {"cooperative_id": cooperative_id})
    events = events_of_kind(conn, cooperative_id, EVENT_KIND)
    recorded = _recorded(events)
    problems = _compare(rows, recorded)
    for rid, (seq, _, facts) in recorded.items():
        problems.append(
            _problem(
                seq,
                "dds_reference_missing",
                f"DDS reference {facts.get('reference_number')} ({rid}), recorded by event"
                f" {seq}, is not in the store",
                rid,
            )
        )
    return problems
