"""The statuses of filed statements, per statement (table dds_submissions, migration 0047).

Plain functions over a connection; the caller owns the transaction. Rows are dicts with the
table's columns.
"""

from __future__ import annotations

from typing import Any, LiteralString, cast
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.euis.model import Modification, Overview
from coffeetrace.euis.statement import StatementDocument
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.euis", "submissions.sql")


def _one(conn: DbConn, query: LiteralString, params: dict[str, Any]) -> Row | None:
    return cast(Row | None, conn.execute(query, params).fetchone())


def _rows(conn: DbConn, query: LiteralString, params: dict[str, Any]) -> list[Row]:
    return cast(list[Row], conn.execute(query, params).fetchall())


def record_submission(
    conn: DbConn,
    *,
    cooperative_id: UUID,
    lot_id: UUID,
    environment: str,
    eu_uuid: str,
    statement: StatementDocument,
) -> Row:
    """A statement the EU took (SUBMITTED, with its UUID)."""
    row = _one(
        conn,
        SQL["dds_submission_insert"],
        {
            "cooperative_id": cooperative_id,
            "lot_id": lot_id,
            "environment": environment,
            "eu_uuid": UUID(eu_uuid),
            "internal_reference": statement.internal_reference,
            "operator_role": statement.operator_role,
            "activity_type": statement.activity_type,
            "statement_sha256": statement.sha256,
            "statement_bytes": len(statement.xml),
        },
    )
    assert row is not None
    return row


def submissions_of_lot(conn: DbConn, lot_id: UUID, environment: str) -> list[Row]:
    """The lot's statements in `environment`, newest first."""
    return _rows(
        conn, SQL["dds_submissions_of_lot"], {"lot_id": lot_id, "environment": environment}
    )


def submissions_by_internal_reference(
    conn: DbConn, internal_reference: str, environment: str
) -> list[Row]:
    return _rows(
        conn,
        SQL["dds_submissions_by_internal_reference"],
        {"internal_reference": internal_reference, "environment": environment},
    )


def submission_by_eu_uuid(conn: DbConn, eu_uuid: str, environment: str) -> Row | None:
    return _one(
        conn,
        SQL["dds_submission_by_eu_uuid"],
        {"eu_uuid": UUID(eu_uuid), "environment": environment},
    )


def record_overview(conn: DbConn, submission_id: UUID, overview: Overview) -> Row:
    """What getDds said of the statement: status, numbers, rejection reason, messages."""
    row = _one(
        conn,
        SQL["dds_submission_refresh"],
        {
            "id": submission_id,
            "status": overview.status,
            "reference_number": overview.reference_number,
            "verification_number": overview.verification_number,
            "rejection_reason": overview.rejection_reason,
            "authority_message": overview.authority_message,
            "authority_message_at": overview.authority_message_at,
            "eu_version": overview.version,
            "eu_updated_at": overview.date,
        },
    )
    assert row is not None
    return row


def record_amendment(
    conn: DbConn, submission_id: UUID, result: Modification, statement: StatementDocument
) -> Row:
    row = _one(
        conn,
        SQL["dds_submission_amended"],
        {
            "id": submission_id,
            "status": result.status,
            "internal_reference": statement.internal_reference,
            "statement_sha256": statement.sha256,
            "statement_bytes": len(statement.xml),
        },
    )
    assert row is not None
    return row


def record_withdrawal(conn: DbConn, submission_id: UUID, result: Modification) -> Row:
    row = _one(
        conn, SQL["dds_submission_withdrawn"], {"id": submission_id, "status": result.status}
    )
    assert row is not None
    return row
