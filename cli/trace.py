"""Commands of this package for the `coffeetrace` CLI: verify, checkpoint, keys, export
epcis/eudr."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import typer

from coffeetrace.cli.apps import app, export_app, keys_app
from coffeetrace.console import friendly, say
from coffeetrace.db import connect
from coffeetrace.embedded import database_url_for_command
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.settings import Settings, get_settings
from coffeetrace.trace import checkpoints
from coffeetrace.trace.epcis import export_epcis
from coffeetrace.trace.eudr import dumps, export_eudr
from coffeetrace.trace.jsonutil import jsonable
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.legacy import sign_legacy
from coffeetrace.trace.lot_lookup import find_lot
from coffeetrace.trace.registry import get_cooperative_by_code
from coffeetrace.trace.verification import verify_chain, verify_lot

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


CHECKPOINT_FETCH_TIMEOUT_S = 10
CHECKPOINT_MAX_BYTES = 1 << 20


def load_checkpoint(source: str) -> dict[str, Any]:
    """A kept checkpoint from a file or an http(s) URL: {"body", "signature"}, or a
    document that carries one under "checkpoint" (the provenance JSON, a verify answer)."""
    if source.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(source, timeout=CHECKPOINT_FETCH_TIMEOUT_S) as resp:
                raw = resp.read(CHECKPOINT_MAX_BYTES + 1)
        except (OSError, ValueError) as exc:
            raise ValidationFailed(f"cannot fetch the checkpoint {source}: {exc}") from exc
    else:
        try:
            raw = Path(source).read_bytes()[: CHECKPOINT_MAX_BYTES + 1]
        except OSError as exc:
            raise ValidationFailed(f"cannot read the checkpoint {source}: {exc.strerror}") from exc
    if len(raw) > CHECKPOINT_MAX_BYTES:
        raise ValidationFailed(f"the checkpoint {source} is larger than 1 MiB")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ValidationFailed(f"the checkpoint {source} is not JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("checkpoint"), dict):
        data = data["checkpoint"]
    if not (isinstance(data, dict) and isinstance(data.get("body"), dict)):
        raise ValidationFailed(f'{source} holds no checkpoint ({{"body", "signature"}})')
    return data


def _print_problems(problems: list[dict[str, Any]]) -> None:
    for p in problems:
        where = f"event seq {p['seq']} ({p['kind']})" if p["seq"] else (p["kind"] or "event")
        record = p.get("record")
        named = f" [{record['type']} {record['id']}]" if record else ""
        # a lot's trail crosses organisations: whose chain or record it is
        org = p.get("organisation") or {}
        owner = f" of {org.get('code') or org.get('id')}" if org else ""
        say(f"  {where}{owner}{named}: {p['problem']}: {p['detail']}")


@app.command("verify")
@friendly
def verify(
    lot: str | None = typer.Argument(
        None, help=LOT_HELP + " Without it: the whole chain of --coop."
    ),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
    checkpoint: str | None = typer.Option(
        None,
        "--checkpoint",
        help="A checkpoint kept earlier (file or URL): prove the chain extends it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report."),
) -> None:
    """Check a lot (or a cooperative's whole chain) against the hash chain, signatures and
    checkpoints; exit 1 if anything was tampered with, naming what."""

    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    kept = load_checkpoint(checkpoint) if checkpoint else None
    with _connection(settings) as conn:
        if lot is None:
            if coop is None:
                raise ValidationFailed("name a LOT, or --coop CODE to check its whole chain")
            report = verify_chain(conn, _coop_id(conn, coop), keys=keys, kept=kept)
            title = f"chain of {coop}"
        else:
            found = find_lot(conn, lot, cooperative_code=coop)
            report = verify_lot(conn, found["id"], keys=keys, kept=kept)
            title = f"lot {report['code']} ({report['public_id']})"
        conn.rollback()
    if as_json:
        _write(json.dumps(jsonable(report), indent=2), None)
    elif report["ok"]:
        proven = report.get("checkpoint")
        against = (
            f", proven against the {proven['source']} checkpoint of {proven['tree_size']} events"
            if proven
            else ""
        )
        say(f"{title}: OK, {report['checked_events']} events checked{against}")
    else:
        say(f"{title}: TAMPERED ({len(report['problems'])} problems)")
        _print_problems(report["problems"])
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("checkpoint")
@friendly
def checkpoint_cmd(
    coop: str | None = typer.Option(None, "--coop", help="Only this cooperative's chain."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Also write the checkpoint(s) here."),
) -> None:
    """Sign a checkpoint of each cooperative's chain now (or of --coop's), store it and let
    the witness see it; print it (keep it to check the chain later)."""

    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    issued = []
    with _connection(settings) as conn:
        if coop is not None:
            coop_ids = [_coop_id(conn, coop)]
        else:
            coop_ids = checkpoints.cooperatives_with_chains(conn)
        for coop_id in coop_ids:
            issued.append(checkpoints.issue(conn, keys, coop_id))
        conn.commit()
        for coop_id in coop_ids:  # only once committed: the witness never sees a rollback
            checkpoints.observe(conn, keys, coop_id)
    text = json.dumps(
        jsonable([{"body": c["body"], "signature": c["signature"]} for c in issued]), indent=2
    )
    if out is not None:
        _write(text, out)
    for c in issued:
        say(
            f"checkpoint {c['id']}: cooperative {c['body']['cooperative_id']}, tree size"
            f" {c['body']['tree_size']}, root {c['body']['root_hash'][:16]}..."
        )


def _coop_id(conn: psycopg.Connection[dict[str, Any]], code: str) -> Any:
    row = get_cooperative_by_code(conn, code)
    if row is None:
        raise NotFound(f"no cooperative has the code {code!r}")
    return row["id"]


@keys_app.command("list")
@friendly
def keys_list(coop: str = typer.Option(..., "--coop", help="Cooperative code.")) -> None:
    """The cooperative's public keys with their validity (never the private keys)."""
    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    with _connection(settings) as conn:
        coop_id = _coop_id(conn, coop)
    _write(json.dumps(keys.public_keys(coop_id), indent=2), None)


@keys_app.command("rotate")
@friendly
def keys_rotate(coop: str = typer.Option(..., "--coop", help="Cooperative code.")) -> None:
    """Make a new active key for the cooperative; the old one stops signing (its private
    key is deleted) and still verifies what it signed."""
    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    with _connection(settings) as conn:
        coop_id = _coop_id(conn, coop)
    result = keys.rotate(coop_id)
    say(f"{coop}: key {result['active']} is active; {result['retired'] or 'no key'} retired")


@keys_app.command("sign-legacy")
@friendly
def keys_sign_legacy(coop: str = typer.Option(..., "--coop", help="Cooperative code.")) -> None:
    """Once, after upgrading: sign the events and lots written before signatures (only
    if the chain's hashes and links still hold), and issue a checkpoint."""
    settings = get_settings()
    keys = KeyRing(settings.effective_keys_dir())
    with _connection(settings) as conn:
        coop_id = _coop_id(conn, coop)
        result = sign_legacy(conn, keys, coop_id)
        conn.commit()
        checkpoints.observe(conn, keys, coop_id)
    say(
        f"{coop}: {result['events_signed']} events and {result['statements']} lot statements"
        f" signed; checkpoint of {result['checkpoint']['body']['tree_size']} events issued"
    )


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
        doc = export_epcis(
            conn, found["id"], base_url or settings.public_base_url, dds_numbers="all"
        )
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
