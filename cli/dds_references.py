"""`coffeetrace dds record|references|number-public`: the DDS reference and verification
numbers that travel with the coffee (trace/dds_references.py), as POST /v1/lots/{id}/dds,
GET /v1/lots/{id}/dds/references and PUT /v1/organisations/me/dds-number-public do."""

from __future__ import annotations

import json

import typer

from coffeetrace.cli.dds_submit import dds_app
from coffeetrace.cli.trace import COOP_HELP, LOT_HELP, _connection
from coffeetrace.console import friendly, say
from coffeetrace.settings import get_settings
from coffeetrace.trace import dds_references, organisations
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.lot_lookup import find_lot


@dds_app.command("record")
@friendly
def record_cmd(
    lot: str = typer.Argument(..., help=LOT_HELP),
    reference: str = typer.Option(..., "--reference", help="The DDS reference number."),
    verification: str = typer.Option(..., "--verification", help="Its verification number."),
    role: str = typer.Option(
        "received", "--role", help="filed (by the lot's organisation) or received (with it)."
    ),
    note: str | None = typer.Option(None, "--note", help="A note kept with the numbers."),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
) -> None:
    """Record the numbers of a statement filed or received for the lot (a signed chain
    event); they follow the coffee to every downstream lot."""
    settings = get_settings()
    with _connection(settings) as conn:
        found = find_lot(conn, lot, cooperative_code=coop)
        row = dds_references.record(
            conn,
            KeyRing(settings.effective_keys_dir()),
            found["cooperative_id"],
            found["id"],
            reference_number=reference,
            verification_number=verification,
            role=role,
            note=note,
            recorded_by="cli",
        )
        conn.commit()
    say(
        f"lot {found['code']}: DDS {row['reference_number']} ({row['role']}) recorded,"
        f" chain event {row['event_seq']}"
    )


@dds_app.command("references")
@friendly
def references_cmd(
    lot: str = typer.Argument(..., help=LOT_HELP),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
) -> None:
    """The DDS references in force for the lot (its own and every upstream lot's), as JSON."""
    settings = get_settings()
    with _connection(settings) as conn:
        found = find_lot(conn, lot, cooperative_code=coop)
        refs = dds_references.in_force(conn, found["id"], environment=settings.eudr_environment)
    for r in refs:
        say(
            f"  {r['reference_number']} ({r['role']}, {r['source']}) on lot {r['lot']['code']}"
            f" of {r['organisation']['code']}"
        )
    typer.echo(
        json.dumps(
            jsonable({"references": refs, "grouped": dds_references.to_group(refs)}), indent=2
        )
    )


@dds_app.command("number-public")
@friendly
def number_public_cmd(
    coop: str = typer.Option(..., "--coop", help="The organisation's code."),
    public: bool = typer.Option(
        ..., "--show/--hide", help="Show the DDS reference numbers on its public lot pages."
    ),
) -> None:
    """Whether the organisation's public lot pages show the DDS reference numbers it
    recorded (they always say that a statement is on file)."""
    settings = get_settings()
    with _connection(settings) as conn:
        org = organisations.find(conn, coop)
        row = dds_references.set_number_public(conn, org["id"], public)
        conn.commit()
    say(f"{row['code']}: DDS numbers {'shown' if row['dds_number_public'] else 'hidden'} on pages")
