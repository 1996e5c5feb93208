"""What the EU's answers become at this edge: small frozen types, independent of zeep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# EudrStatusType of the common V3 schema (SUSPENDED and UPDATED: "not active in current release")
STATUSES = (
    "SUBMITTED",
    "AVAILABLE",
    "REJECTED",
    "WITHDRAWN",
    "ARCHIVED",
    "SUSPENDED",
    "UPDATED",
    "GROUPED",
    "OBSOLETE",
)
# VerifyResultType of the Verify Declaration schema
VERIFY_RESULTS = ("EXISTING_USABLE", "EXISTING_NON_USABLE", "NON_EXISTENT")


@dataclass(frozen=True)
class Modification:
    """The answer to amendDds and withdrawDds: the statement's status after the change."""

    uuid: str
    status: str


@dataclass(frozen=True)
class Overview:
    """One statement as getDds and getDdsByInternalReference describe it (OverviewType)."""

    uuid: str
    internal_reference: str
    status: str
    reference_number: str | None = None
    verification_number: str | None = None
    rejection_reason: str | None = None
    authority_message: str | None = None
    authority_message_at: datetime | None = None
    date: datetime | None = None
    updated_by: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class Verification:
    """The answer of verifyDeclaration for a reference and verification number."""

    reference_number: str
    result: str
    status: str | None
    checked_at: datetime

    @property
    def usable(self) -> bool:
        return self.result == "EXISTING_USABLE"


@dataclass(frozen=True)
class FiledStatement:
    """A statement's full content as getDdsByIdentifiers returns it: the `dds:statement`
    element (DueDiligenceStatementBaseType) as XML."""

    reference_number: str
    verification_number: str
    xml: bytes
