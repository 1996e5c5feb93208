"""Commands of this package for the `coffeetrace` CLI: verify, export epcis/eudr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import typer

from coffeetrace.cli.apps import app, export_app
from coffeetrace.console import friendly, say
from coffeetrace.db import connect
from coffeetrace.embedded import database_url_for_command
from coffeetrace.settings import Settings, get_settings
from coffeetrace.trace.epcis import export_epcis
from coffeetrace.trace.eudr import dumps, export_eudr
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.lots import find_lot
from coffeetrace.trace.verification import verify_lot

LOT_HELP = "The lot's public id, or its code (with --coop when two cooperatives use it)."
COOP_HELP = "Cooperative code, where a lot code is used by several cooperatives."


@contextmanager
def _connection(settings: Settings) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection to the configured database, starting the embedded one if need be."""
    with (
        database_url_for_command(settings) as url,
        connect(url, timeout_s=settings.db_connect_timeout_s) as conn,
    ):
        yield conn


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text + "\n")
    else:
        out.write_text(text + "\n", encoding="utf-8")


@app.command("verify")
@friendly
def verify(
    lot: str = typer.Argument(..., help=LOT_HELP),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report."),
) -> None:
    """Check a lot's trace events and rows against the hash chain; exit 1 if tampered."""

    settings = get_settings()
    with _connection(settings) as conn:
        found = find_lot(conn, lot, cooperative_code=coop)
        report = verify_lot(conn, found["id"])
        conn.rollback()
    if as_json:
        _write(json.dumps(jsonable(report), indent=2), None)
    elif report["ok"]:
        say(
            f"lot {report['code']} ({report['public_id']}): OK, {report['checked_events']}"
            f" events and {report['checked_lots']} lots checked"
        )
    else:
        say(f"lot {report['code']} ({report['public_id']}): TAMPERED")
        for p in report["problems"]:
            where = f"event seq {p['seq']} ({p['kind']})" if p["seq"] else "missing event"
            say(f"  {where}: {p['problem']}: {p['detail']}")
    if not report["ok"]:
        raise typer.Exit(1)


@export_app.command("epcis")
@friendly
def export_epcis_cmd(
    lot: str = typer.Argument(..., help=LOT_HELP),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
    base_url: str | None = typer.Option(
        None, "--base-url", help="Base of identifiers (default: COFFEETRACE_PUBLIC_BASE_URL)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write to this file.",
    ),
) -> None:
    """The lot's whole history as an EPCIS 2.0 JSON-LD document."""

    settings = get_settings()
    with _connection(settings) as conn:
        found = find_lot(conn, lot, cooperative_code=coop)
        doc = export_epcis(conn, found["id"], base_url or settings.public_base_url)
        conn.rollback()
    _write(json.dumps(doc, indent=2, ensure_ascii=False), out)


@export_app.command("eudr")
@friendly
def export_eudr_cmd(
    lot: str = typer.Argument(..., help=LOT_HELP),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write to this file.",
    ),
) -> None:
    """GeoJSON FeatureCollection of the plots that fed the lot, for the EU (EUDR)."""

    settings = get_settings()
    with _connection(settings) as conn:
        found = find_lot(conn, lot, cooperative_code=coop)
        collection = export_eudr(conn, found["id"])
        conn.rollback()
    _write(dumps(collection, indent=2), out)
