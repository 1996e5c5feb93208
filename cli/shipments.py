"""Commands of shipments between trading partners: `shipment create|list|accept|reject`
(what an organisation's operator does through /v1/shipments). The rules are
trace/shipments.py's."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import typer

from coffeetrace.cli.apps import app
from coffeetrace.cli.organisations import ORG_HELP, _org_id
from coffeetrace.cli.trace import _connection
from coffeetrace.console import friendly, say
from coffeetrace.db import DbConn, Row
from coffeetrace.errors import ValidationFailed
from coffeetrace.settings import get_settings
from coffeetrace.trace import shipments
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import find_lot, lot_by_public_id
from coffeetrace.trace.rules import TraceRules

shipment_app = typer.Typer(
    help="Shipments of kg of lots to trading partners, and their receipts.",
    no_args_is_help=True,
)
app.add_typer(shipment_app, name="shipment")

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
WHEN_HELP = "ISO 8601 with a time zone (2026-01-15T08:00:00+07:00); default now."


def _when(given: str | None, name: str) -> datetime:
    if given is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(given)
    except ValueError:
        raise ValidationFailed(f"{name} {given[:40]!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise ValidationFailed(f"{name} {given[:40]!r} needs a time zone (+07:00, Z)")
    return at


def _shipment_id(given: str) -> UUID:
    try:
        return UUID(given)
    except ValueError:
        raise ValidationFailed(
            f"{given[:60]!r} is not a shipment id (see coffeetrace shipment list)"
        ) from None


def _parts(given: str, n: int, option: str, form: str) -> list[str]:
    parts = given.split(":", n - 1)
    if len(parts) != n or not all(parts):
        raise ValidationFailed(f"{option} {given[:60]!r} is not {form}")
    return parts


def _lot(conn: DbConn, ref: str, org: str) -> UUID:
    """A lot of the organisation by its public id or its code."""
    lot = lot_by_public_id(conn, ref) or find_lot(conn, ref, cooperative_code=org)
    return UUID(str(lot["id"]))


def _document(given: str) -> Row:
    """TYPE:NUMBER:FILE (its SHA-256 computed here) or TYPE:NUMBER:SHA256."""
    kind, rest = _parts(given, 2, "--document", "TYPE:NUMBER:FILE")
    number, _, source = rest.rpartition(":")
    if not number or not source:
        raise ValidationFailed(f"--document {given[:60]!r} is not TYPE:NUMBER:FILE")
    if SHA256_HEX.fullmatch(source):
        return {"type": kind, "number": number, "sha256": source}
    try:
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    except OSError as exc:
        raise ValidationFailed(f"cannot read the document {source}: {exc.strerror}") from None
    return {"type": kind, "number": number, "sha256": digest}


def _measurement(given: str) -> tuple[str, Any]:
    key, sep, value = given.partition("=")
    if not sep or not key:
        raise ValidationFailed(f"--measure {given[:60]!r} is not KEY=VALUE")
    try:
        return key, float(value)
    except ValueError:
        return key, value


def _line(row: Row) -> str:
    """One shipment, tab-separated: id, status, direction, the other party, kg, departure."""
    other = row["receiver"] if row["direction"] == "out" else row["sender"]
    return "\t".join(
        [
            str(row["id"]),
            row["status"],
            row["direction"],
            other["code"],
            str(row["shipped_kg"]),
            row["departed_at"].isoformat(),
        ]
    )


@shipment_app.command("create")
@friendly
def shipment_create(
    org: str = typer.Option(..., "--org", help=ORG_HELP),
    to: str = typer.Option(..., "--to", help="The receiving partner's code."),
    lot: list[str] = typer.Option(
        ..., "--lot", help="LOT:KG, a lot (public id or code) and the kg shipped; repeat."
    ),
    departure_place: str = typer.Option(..., "--from", help="Where it departs from."),
    departed_at: str | None = typer.Option(None, "--departed-at", help=WHEN_HELP),
    carrier: str | None = typer.Option(None, "--carrier"),
    vehicle: str | None = typer.Option(None, "--vehicle", help="Truck plate, vessel and voyage."),
    container: str | None = typer.Option(None, "--container", help="ISO 6346 number."),
    seal: str | None = typer.Option(None, "--seal"),
    document: list[str] = typer.Option(
        [], "--document", help="TYPE:NUMBER:FILE or TYPE:NUMBER:SHA256; repeat."
    ),
    sale: str | None = typer.Option(
        None, "--sale", help="TYPE:ID of the sale (a CBV business transaction: inv:INV-17)."
    ),
) -> None:
    """Ship kg of the organisation's lots to a partner; prints the shipment's id."""
    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    sale_reference = None
    if sale is not None:
        kind, ident = _parts(sale, 2, "--sale", "TYPE:ID")
        sale_reference = {"type": kind, "id": ident}
    with _connection(settings) as conn:
        lines = []
        for given in lot:
            ref, _, kg = given.rpartition(":")
            if not ref or not kg:
                raise ValidationFailed(f"--lot {given[:60]!r} is not LOT:KG")
            lines.append((_lot(conn, ref, org), kg))
        row = shipments.create(
            conn,
            _org_id(conn, org),
            to,
            departed_at=_when(departed_at, "--departed-at"),
            departure_place=departure_place,
            lines=lines,
            carrier=carrier,
            vehicle=vehicle,
            container=container,
            seal=seal,
            documents=[_document(d) for d in document],
            sale_reference=sale_reference,
            rules=TraceRules.from_settings(settings),
            keys=keys,
        )
        conn.commit()
    say(f"shipment {row['id']} of {row['shipped_kg']} kg to {to}: in transit")
    print(row["id"])


@shipment_app.command("list")
@friendly
def shipment_list(
    org: str = typer.Option(..., "--org", help=ORG_HELP),
    direction: str | None = typer.Option(None, "--direction", help="out (sent) or in."),
    status: str | None = typer.Option(
        None, "--status", help=f"Only those {'|'.join(shipments.STATUSES)}."
    ),
) -> None:
    """The organisation's shipments (stdout, tab-separated): id, status, direction, the
    other party, kg, departure."""
    with _connection(get_settings()) as conn:
        org_id = _org_id(conn, org)
        after = None
        while True:
            rows = shipments.list_shipments(
                conn, org_id, direction=direction, status=status, after=after, limit=500
            )
            for row in rows:
                print(_line(row))
            if len(rows) < 500:
                break
            after = rows[-1]["id"]
        conn.rollback()


@shipment_app.command("accept")
@friendly
def shipment_accept(
    shipment: str = typer.Argument(..., help="The shipment's id (shipment list)."),
    org: str = typer.Option(..., "--org", help=ORG_HELP),
    line: list[str] = typer.Option(
        ...,
        "--line",
        help="N:KG:CODE, a line's number, the kg received and the new lot's code; every line.",
    ),
    place: str = typer.Option(..., "--place", help="Where it was received."),
    received_at: str | None = typer.Option(None, "--received-at", help=WHEN_HELP),
    measure: list[str] = typer.Option([], "--measure", help="KEY=VALUE (moisture_pct=11.8)."),
) -> None:
    """Accept a shipment addressed to the organisation: its new lots are made."""
    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    lines = []
    for given in line:
        number, kg, code = _parts(given, 3, "--line", "N:KG:CODE")
        if not number.isdigit():
            raise ValidationFailed(f"--line {given[:60]!r}: {number!r} is not a line number")
        lines.append({"line": int(number), "received_kg": kg, "code": code})
    with _connection(settings) as conn:
        row = shipments.accept(
            conn,
            _org_id(conn, org),
            _shipment_id(shipment),
            received_at=_when(received_at, "--received-at"),
            arrival_place=place,
            lines=lines,
            measurements=dict(_measurement(m) for m in measure),
            loss_tolerance_pct=settings.shipment_loss_tolerance_pct,
            rules=TraceRules.from_settings(settings),
            keys=keys,
        )
        conn.commit()
    receipt = row["receipt"]
    flag = "beyond" if receipt["loss_flagged"] else "within"
    say(
        f"shipment {row['id']} accepted: {receipt['received_kg']} kg received,"
        f" {receipt['loss_pct']} % lost ({flag} the tolerance of"
        f" {receipt['loss_tolerance_pct']} %)"
    )
    for item in row["lines"]:
        print(f"{item['line']}\t{item['receiver_lot']['code']}\t{item['receiver_lot']['id']}")


@shipment_app.command("reject")
@friendly
def shipment_reject(
    shipment: str = typer.Argument(..., help="The shipment's id (shipment list)."),
    org: str = typer.Option(..., "--org", help=ORG_HELP),
    reason: str = typer.Option(..., "--reason", help="Why; the sender reads it."),
) -> None:
    """Reject a shipment addressed to the organisation: its kg return to the sender."""
    keys = KeyRing(get_settings().effective_keys_dir())
    with _connection(get_settings()) as conn:
        row = shipments.reject(
            conn, _org_id(conn, org), _shipment_id(shipment), reason=reason, keys=keys
        )
        conn.commit()
    say(f"shipment {row['id']} rejected; its kg are back in {row['sender']['code']}'s lots")
