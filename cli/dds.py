"""`coffeetrace export dds`: a lot's EUDR due diligence statement (trace/dds.py) as the
V3 SubmitDdsRequest XML, or as JSON of the same content with the split report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import typer

from coffeetrace.cli.apps import export_app
from coffeetrace.cli.trace import COOP_HELP, LOT_HELP, _connection, _write
from coffeetrace.console import friendly, say
from coffeetrace.db import DbConn
from coffeetrace.errors import RuleViolation, ValidationFailed
from coffeetrace.settings import Settings, get_settings
from coffeetrace.trace import dds, eudr_readiness
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import find_lot

ID_HELP = "Another identifier, TYPE:VALUE (vat, gln, tin, duns, cbr, cin, comp_num, ...); repeat."


def _identifiers(eori: str | None, more: list[str], option: str) -> tuple[tuple[str, str], ...]:
    pairs = [("eori", eori)] if eori else []
    for item in more:
        kind, sep, value = item.partition(":")
        if not sep or not value:
            raise ValidationFailed(f"{option} takes TYPE:VALUE (vat:DE123456789), not {item!r}")
        pairs.append((kind, value))
    return tuple(pairs)


def ready_dds(
    conn: DbConn, settings: Settings, lot_id: UUID, filing: dds.Filing, *, force: bool
) -> dict[str, Any]:
    """The lot's statement document (dds.build_dds) once its EUDR readiness is clear, each
    blocker printed otherwise (and RuleViolation "eudr_not_ready"); with `force`, the
    override's chain event is appended (its seq in "override_event_seq": the caller
    commits it with the statement it lets out)."""
    cooperative_id = eudr_readiness.lot_cooperative(conn, lot_id)
    try:
        ready = eudr_readiness.require_ready(
            conn,
            KeyRing(settings.effective_keys_dir()),
            cooperative_id,
            lot_id,
            max_cherry_kg_per_ha=settings.eudr_max_cherry_kg_per_ha,
            force=force,
            by="cli",
        )
    except RuleViolation as exc:
        for blocker in exc.details.get("blockers", []):
            say(f"  blocker: {blocker['code']}: {blocker['message']}")
        raise
    doc = dds.build_dds(conn, lot_id, filing, environment=settings.eudr_environment)
    if "override_event_seq" in ready:
        say(
            f"  forced past {len(ready['blockers'])} readiness blocker(s): chain event"
            f" {ready['override_event_seq']}"
        )
        doc["override_event_seq"] = ready["override_event_seq"]
    return doc


@export_app.command("dds")
@friendly
def export_dds_cmd(
    lot: str = typer.Argument(..., help=LOT_HELP),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
    activity: str = typer.Option(
        "IMPORT", "--activity", help="IMPORT, EXPORT or DOMESTIC (the EU's activity type)."
    ),
    role: str | None = typer.Option(
        None,
        "--role",
        help="OPERATOR or REPRESENTATIVE_OPERATOR (default: the latter when a represented"
        " operator is named).",
    ),
    operator_eori: str | None = typer.Option(
        None, "--operator-eori", help="The filing operator's EORI (recorded in the JSON)."
    ),
    operator_name: str | None = typer.Option(None, "--operator-name", help="Its name."),
    operator_id: list[str] = typer.Option([], "--operator-id", help=ID_HELP),
    represented_name: str | None = typer.Option(
        None, "--represented-name", help="The represented operator's name."
    ),
    represented_eori: str | None = typer.Option(
        None, "--represented-eori", help="The represented operator's EORI."
    ),
    represented_id: list[str] = typer.Option([], "--represented-id", help=ID_HELP),
    represented_email: str | None = typer.Option(None, "--represented-email"),
    represented_phone: str | None = typer.Option(None, "--represented-phone"),
    country: str | None = typer.Option(
        None, "--country", help="Country of activity: the EU member state (DE, NL, ...)."
    ),
    border_country: str | None = typer.Option(
        None,
        "--border-country",
        help="Country of entry (IMPORT) or exit (EXPORT); default: --country.",
    ),
    confidential: bool = typer.Option(
        False, "--confidential", help="geoLocationConfidential: keep the plots from downstream."
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="Internal reference (35 characters); default: the lot's code."
    ),
    comment: str | None = typer.Option(None, "--comment", help="For the competent authority."),
    grouped: list[str] = typer.Option(
        [], "--grouped", help="Reference number of a statement to group; repeat."
    ),
    fmt: str = typer.Option("xml", "--format", help="xml (one SubmitDdsRequest) or json."),
    part: int | None = typer.Option(
        None, "--part", min=1, help="Which statement, when the lot needs several (XML)."
    ),
    schemas: Path | None = typer.Option(
        None,
        "--schemas",
        help="Check the XML against the EU's XSDs in this folder (e.g."
        " ../shared/reference/eudr) before writing it.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write to this file (several statements as XML: FILE-1.xml, FILE-2.xml, ...).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Export although the lot's EUDR readiness lists blockers; the override is"
        " recorded in the chain, naming them.",
    ),
) -> None:
    """The lot's EUDR due diligence statement: the V3 SubmitDdsRequest the importer or
    exporter files with the EU Information System."""

    if fmt not in ("xml", "json"):
        raise ValidationFailed(f"--format is xml or json, not {fmt!r}")
    represented = None
    if represented_name or represented_eori or represented_id or represented_email:
        represented = dds.EconomicOperator(
            name=represented_name,
            identifiers=_identifiers(represented_eori, represented_id, "--represented-id"),
            email=represented_email,
            phone=represented_phone,
        )
    filing = dds.Filing(
        activity=activity,
        role=role,
        operator=dds.EconomicOperator(
            name=operator_name,
            identifiers=_identifiers(operator_eori, operator_id, "--operator-id"),
        ),
        represented=represented,
        country_of_activity=country,
        border_cross_country=border_country,
        geolocation_confidential=confidential,
        internal_reference=reference,
        comment=comment,
        grouped=tuple(grouped),
    )
    settings = get_settings()
    with _connection(settings) as conn:
        found = find_lot(conn, lot, cooperative_code=coop)
        doc = ready_dds(conn, settings, found["id"], filing, force=force)
        if doc.pop("override_event_seq", None) is not None:
            conn.commit()  # the override stays on record only with the statement it let out
        else:
            conn.rollback()
    statements = doc["statements"]
    n = len(statements)
    if part is not None and part > n:
        raise ValidationFailed(f"the lot needs {n} statement(s); there is no part {part}")
    xmls = [dds.to_xml(s) for s in statements]
    if schemas is not None:
        for xml in xmls:
            dds.validate_xml(xml, schemas)
    split = doc["split"]
    say(
        f"lot {doc['lot']['code']}: {n} statement{'s' if n > 1 else ''},"
        f" {sum(len(s['statement']['commodities']) for s in statements)} commodities,"
        f" {doc['producers']['entries']} producers ({doc['producers']['named']} named,"
        f" {doc['producers']['groups']} producer groups) from {doc['producers']['plots']} plots"
        + (", valid against the EU schemas" if schemas is not None else "")
    )
    for reason in split["reasons"]:
        say(f"  split: {reason}")
    for warning in doc["warnings"]:
        say(f"  warning: {warning}")
    if fmt == "json":
        _write(json.dumps(doc, indent=2, ensure_ascii=False), out)
        return
    if part is not None or n == 1:
        text = xmls[(part or 1) - 1].decode("utf-8").rstrip("\n")
        _write(text, out)
        return
    if out is None:
        raise ValidationFailed(
            f"the lot needs {n} statements (the EU system's limits): give -o FILE to write"
            " them all (FILE-1.xml ...), or --part N for one"
        )
    for i, xml in enumerate(xmls, start=1):
        path = out.with_name(f"{out.stem}-{i}{out.suffix or '.xml'}")
        path.write_bytes(xml)
        say(f"  statement {i} of {n}: {path}")
