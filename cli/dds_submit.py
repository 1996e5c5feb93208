"""`coffeetrace dds ...`: file a lot's due diligence statement in the EU Information System
(EUDR V3 API) and follow it: submit, amend, status, withdraw, verify.

The statement is the SubmitDdsRequest XML that `coffeetrace export dds LOT` writes (`--file`),
or, for `dds submit LOT` without `--file`, the one it builds itself with the same filing
options and EUDR readiness gate (`--force` recorded in the chain);
the client is euis/ (coffeetrace.euis), configured by the COFFEETRACE_EUDR_* settings; each filed
statement's status is kept per statement in dds_submissions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from coffeetrace.cli.apps import app
from coffeetrace.cli.dds import ready_dds
from coffeetrace.cli.trace import COOP_HELP, LOT_HELP, _connection
from coffeetrace.console import friendly, say
from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, ValidationFailed
from coffeetrace.euis import store
from coffeetrace.euis.client import EuisClient, EuisConfig
from coffeetrace.euis.errors import EudrUnavailable
from coffeetrace.euis.model import Overview
from coffeetrace.euis.statement import StatementDocument, read_statement
from coffeetrace.settings import Settings, get_settings
from coffeetrace.trace import dds
from coffeetrace.trace.lot_lookup import find_lot

dds_app = typer.Typer(
    help="Due diligence statements in the EU Information System (EUDR V3 API): submit, "
    "amend, status, withdraw, verify. Settings: COFFEETRACE_EUDR_*.",
    no_args_is_help=True,
)
app.add_typer(dds_app, name="dds")

FILE_HELP = "The statement: SubmitDdsRequest XML as `coffeetrace export dds LOT` writes it."
UUID_HELP = "The statement's EU UUID (default: the lot's latest one still open)."
OPEN = ("SUBMITTED", "AVAILABLE")
# statuses after which the EU changes nothing any more: not asked again by `dds status`
SETTLED = ("WITHDRAWN", "REJECTED", "OBSOLETE")


def _config() -> tuple[Settings, EuisConfig]:
    settings = get_settings()
    return settings, EuisConfig.from_settings(settings)


def _statement(path: Path) -> StatementDocument:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc.strerror}", file=str(path)) from None
    return read_statement(data, source=str(path))


def _lot(conn: DbConn, ref: str, coop: str | None) -> Row:
    return find_lot(conn, ref, cooperative_code=coop)


def _pick(rows: list[Row], eu_uuid: str | None, lot_ref: str) -> Row:
    if eu_uuid is not None:
        found = [r for r in rows if str(r["eu_uuid"]) == eu_uuid.lower()]
        if not found:
            raise NotFound(f"lot {lot_ref} has no statement {eu_uuid} here", uuid=eu_uuid)
        return found[0]
    open_ = [r for r in rows if r["status"] in OPEN]
    if not open_:
        raise NotFound(
            f"lot {lot_ref} has no statement in {' or '.join(OPEN)} "
            "(`coffeetrace dds status` shows them all)",
            lot=lot_ref,
        )
    return open_[0]


def _line(
    uuid: Any,
    status: str,
    reference: str | None,
    verification: str | None,
    internal: str | None,
    rejection: str | None = None,
    message: str | None = None,
) -> str:
    numbers = f"{reference} / {verification}" if reference else "no reference number yet"
    text = f"{uuid}  {status:<9}  {numbers}  internal reference {internal or '-'}"
    if rejection:
        text += f"\n    rejected: {rejection}"
    if message:
        text += f"\n    from the authority: {message}"
    return text


def _row_line(row: Row) -> str:
    return _line(
        row["eu_uuid"],
        row["status"],
        row["reference_number"],
        row["verification_number"],
        row["internal_reference"],
        row["rejection_reason"],
        row["authority_message"],
    )


def _overview_line(overview: Overview) -> str:
    return _line(
        overview.uuid,
        overview.status,
        overview.reference_number,
        overview.verification_number,
        overview.internal_reference,
        overview.rejection_reason,
        overview.authority_message,
    )


@dds_app.command("submit")
@friendly
def submit(
    lot: str = typer.Argument(..., help=LOT_HELP),
    file: Path | None = typer.Option(
        None,
        "--file",
        "-f",
        help=FILE_HELP + " Without it, the statement is built from the lot now.",
    ),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
    again: bool = typer.Option(
        False, "--again", help="File the same statement although the lot has it open already."
    ),
    activity: str = typer.Option(
        "IMPORT", "--activity", help="Without --file: IMPORT, EXPORT or DOMESTIC."
    ),
    role: str | None = typer.Option(
        None, "--role", help="Without --file: OPERATOR or REPRESENTATIVE_OPERATOR."
    ),
    operator_eori: str | None = typer.Option(
        None, "--operator-eori", help="Without --file: the filing operator's EORI."
    ),
    operator_name: str | None = typer.Option(None, "--operator-name", help="Its name."),
    country: str | None = typer.Option(
        None, "--country", help="Without --file: the country of activity (DE, NL, ...)."
    ),
    border_country: str | None = typer.Option(
        None, "--border-country", help="Without --file: country of entry or exit."
    ),
    confidential: bool = typer.Option(
        False, "--confidential", help="Without --file: geoLocationConfidential."
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="Without --file: internal reference (default: lot code)."
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Without --file: build it although the lot's EUDR readiness lists blockers"
        " (recorded in the chain, naming them).",
    ),
) -> None:
    """File the lot's statement (submitDds); its status starts as SUBMITTED."""
    settings, config = _config()
    statement = None if file is None else _statement(file)
    with _connection(settings) as conn:
        row = _lot(conn, lot, coop)
        if statement is None:
            filing = dds.Filing(
                activity=activity,
                role=role,
                operator=dds.EconomicOperator(
                    name=operator_name,
                    identifiers=(("eori", operator_eori),) if operator_eori else (),
                ),
                country_of_activity=country,
                border_cross_country=border_country,
                geolocation_confidential=confidential,
                internal_reference=reference,
            )
            doc = ready_dds(conn, settings, row["id"], filing, force=force)
            if len(doc["statements"]) > 1:
                raise ValidationFailed(
                    f"lot {lot} needs {len(doc['statements'])} statements (the EU system's"
                    " limits): write them with `coffeetrace export dds LOT -o FILE.xml` and"
                    " submit each with --file"
                )
            statement = read_statement(
                dds.to_xml(doc["statements"][0]),
                source=f"the statement built for lot {lot}",
            )
        same = [
            r
            for r in store.submissions_of_lot(conn, row["id"], config.environment)
            if r["status"] in OPEN and r["statement_sha256"] == statement.sha256
        ]
        if same and not again:
            raise Conflict(
                f"lot {lot} already has this very statement open ({same[0]['eu_uuid']}, "
                f"{same[0]['status']}); amend or withdraw it, or pass --again",
                uuid=str(same[0]["eu_uuid"]),
            )
        conn.commit()  # no transaction stays open while the EU answers
        with EuisClient(config) as client:
            try:
                eu_uuid = client.submit(statement)
            except EudrUnavailable as exc:
                hint = (
                    f"`coffeetrace dds status --reference {statement.internal_reference}` "
                    "tells whether the EU has it"
                    if statement.internal_reference
                    else "ask the EU by the statement's internal reference before filing again"
                )
                raise EudrUnavailable(
                    f"{exc.message}. The statement may or may not have been filed: {hint}",
                    operation=exc.operation,
                ) from None
        # said before it is stored, so that the EU's UUID is never lost
        say(f"the EU took the statement of lot {lot}: UUID {eu_uuid} ({config.environment})")
        stored = store.record_submission(
            conn,
            cooperative_id=row["cooperative_id"],
            lot_id=row["id"],
            environment=config.environment,
            eu_uuid=eu_uuid,
            statement=statement,
        )
        conn.commit()
    typer.echo(_row_line(stored))
    say(
        f"its reference and verification numbers come once it is AVAILABLE: `coffeetrace dds "
        f"status {lot}` (the EU asks for at least 30 minutes before the first check)"
    )


@dds_app.command("amend")
@friendly
def amend(
    lot: str = typer.Argument(..., help=LOT_HELP),
    file: Path = typer.Option(..., "--file", "-f", help=FILE_HELP),
    eu_uuid: str | None = typer.Option(None, "--uuid", help=UUID_HELP),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
) -> None:
    """Amend the lot's statement (amendDds), keeping its reference number.

    Only an AVAILABLE statement, within 72 hours of its submission."""
    settings, config = _config()
    statement = _statement(file)
    with _connection(settings) as conn:
        row = _lot(conn, lot, coop)
        target = _pick(store.submissions_of_lot(conn, row["id"], config.environment), eu_uuid, lot)
        conn.commit()  # no transaction stays open while the EU answers
        with EuisClient(config) as client:
            result = client.amend(str(target["eu_uuid"]), statement)
        stored = store.record_amendment(conn, target["id"], result, statement)
        conn.commit()
    typer.echo(_row_line(stored))


@dds_app.command("withdraw")
@friendly
def withdraw(
    lot: str = typer.Argument(..., help=LOT_HELP),
    eu_uuid: str | None = typer.Option(None, "--uuid", help=UUID_HELP),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
) -> None:
    """Withdraw the lot's statement (withdrawDds).

    Within 72 hours of its submission, and not once it is grouped into another statement or
    used at customs."""
    settings, config = _config()
    with _connection(settings) as conn:
        row = _lot(conn, lot, coop)
        target = _pick(store.submissions_of_lot(conn, row["id"], config.environment), eu_uuid, lot)
        conn.commit()  # no transaction stays open while the EU answers
        with EuisClient(config) as client:
            result = client.withdraw(str(target["eu_uuid"]))
        stored = store.record_withdrawal(conn, target["id"], result)
        conn.commit()
    typer.echo(_row_line(stored))


@dds_app.command("status")
@friendly
def status(
    lot: str | None = typer.Argument(None, help=LOT_HELP),
    reference: str | None = typer.Option(
        None, "--reference", help="Ask by the statement's internal reference instead of a lot."
    ),
    coop: str | None = typer.Option(None, "--coop", help=COOP_HELP),
    local: bool = typer.Option(
        False, "--local", help="Show what is stored, without asking the EU."
    ),
) -> None:
    """Ask the EU for the status of the lot's statements, and store it.

    By lot: getDds for each of its statements not yet settled; by --reference:
    getDdsByInternalReference."""
    if (lot is None) == (reference is None):
        raise ValidationFailed("name a lot or --reference REF (one of them)")
    settings = get_settings()
    with _connection(settings) as conn:
        if lot is not None:
            row = _lot(conn, lot, coop)
            environment = settings.eudr_environment
            rows = store.submissions_of_lot(conn, row["id"], environment)
            if not rows:
                say(f"lot {lot} has no statement filed in {environment} through coffeetrace")
                return
            asked = [str(r["eu_uuid"]) for r in rows if r["status"] not in SETTLED]
            if asked and not local:
                conn.commit()  # no transaction stays open while the EU answers
                with EuisClient(EuisConfig.from_settings(settings)) as client:
                    overviews = {o.uuid.lower(): o for o in client.get(asked)}
                by_uuid = {str(r["eu_uuid"]): r for r in rows}
                for eu_uuid, overview in overviews.items():
                    if eu_uuid in by_uuid:
                        by_uuid[eu_uuid] = store.record_overview(
                            conn, by_uuid[eu_uuid]["id"], overview
                        )
                conn.commit()
                rows = [by_uuid[str(r["eu_uuid"])] for r in rows]
            for r in rows:
                typer.echo(_row_line(r))
            return
        assert reference is not None
        environment = settings.eudr_environment
        if local:
            stored_rows = store.submissions_by_internal_reference(conn, reference, environment)
            for r in stored_rows:
                typer.echo(_row_line(r))
            if not stored_rows:
                say(f"nothing stored with internal reference {reference!r} in {environment}")
            return
        with EuisClient(EuisConfig.from_settings(settings)) as client:
            overviews_list = client.get_by_internal_reference(reference)
        for overview in overviews_list:
            found = store.submission_by_eu_uuid(conn, overview.uuid, environment)
            if found is not None:
                store.record_overview(conn, found["id"], overview)
            typer.echo(
                _overview_line(overview)
                + ("" if found is not None else "\n    (not filed through coffeetrace)")
            )
        conn.commit()


@dds_app.command("verify")
@friendly
def verify(
    reference_number: str = typer.Argument(..., help="The statement's reference number."),
    verification_number: str = typer.Argument(..., help="Its verification number."),
) -> None:
    """Ask the EU whether a statement, yours or a supplier's, may be used.

    verifyDeclaration; exit status 1 unless the answer is EXISTING_USABLE."""
    _, config = _config()
    with EuisClient(config) as client:
        result = client.verify(reference_number, verification_number)
    typer.echo(
        f"{reference_number}  {result.result}  status {result.status or '-'}  "
        f"checked {result.checked_at.isoformat()}"
    )
    if not result.usable:
        raise typer.Exit(1)
