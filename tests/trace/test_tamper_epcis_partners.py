"""Edits behind the application's back (plain SQL, as psql would) of captured EPCIS
events and of trading partnerships are named by the chain audit (`verify --coop`,
verification.verify_chain): each row is compared with the signed event that recorded it.
The untouched rows verify."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from coffeetrace.trace import cooperatives, epcis_capture, organisations, partners, verification
from coffeetrace.trace.epcis_capture import CaptureLimits
from coffeetrace.trace.keys import KeyRing
from tests.api.epcis_helpers import document, object_event
from tests.factories import make_world

E1 = object_event(eventID="urn:uuid:00000000-0000-4000-8000-00000000a001")
E2 = object_event(  # no eventID: the capture gives it its event hash
    eventTime="2024-05-02T08:00:00.000+07:00", bizStep="example:roasting"
)


@pytest.fixture
def built(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    coop = make_world(conn, keys=keys, code="ea-tu").coop["id"]
    exporter = cooperatives.create_cooperative(conn, "bmt-export", "BMT", keys=keys)["id"]
    organisations.set_roles(conn, "bmt-export", ["exporter"])
    body = json.dumps(document(E1, E2)).encode()
    epcis_capture.accept(conn, coop, body, "rollback", CaptureLimits(100, 10**6))
    assert epcis_capture.process_next(conn, keys) is not None
    made = partners.propose(conn, coop, "bmt-export", keys=keys)
    partners.accept(conn, exporter, made["id"], keys=keys)
    conn.commit()
    return {"coop": coop, "exporter": exporter, "partnership": made["id"]}


def _report(conn: psycopg.Connection, keys: KeyRing, coop: Any) -> Any:
    report = verification.verify_chain(conn, coop, keys=keys)
    conn.commit()
    return report


def _named(report: Any, problem: str, record_type: str) -> list[Any]:
    return [
        p for p in report["problems"]
        if p["problem"] == problem and p.get("record", {}).get("type") == record_type
    ]  # fmt: skip


def test_untouched_rows_verify(conn: psycopg.Connection, keys: KeyRing, built: Any) -> None:
    for org in (built["coop"], built["exporter"]):
        report = _report(conn, keys, org)
        assert report["ok"], report["problems"]


EPCIS_EDITS: list[tuple[str, str]] = [
    # the JSON of the event
    ("update epcis_events set event = jsonb_set(event, '{bizStep}', '\"receiving\"')"
     " where event_id = %(e)s", "epcis_event_edited"),
    # a column queries filter on, the JSON left alone
    ("update epcis_events set biz_step = 'receiving' where event_id = %(e)s",
     "epcis_event_edited"),
    ("update epcis_events set any_epcs = '{}' where event_id = %(e)s", "epcis_event_edited"),
    # the stored hash and the JSON together: the chain still holds the original hash
    ("update epcis_events set event = jsonb_set(event, '{action}', '\"ADD\"'),"
     " hash = 'ni:///sha-256;00?ver=CBV2.0' where event_id = %(e)s", "epcis_event_edited"),
    ("update epcis_events set event_time = event_time + interval '1 day' where event_id = %(e)s",
     "epcis_event_edited"),
    ("delete from epcis_events where event_id = %(e)s", "epcis_event_missing"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "problem"), EPCIS_EDITS)
def test_an_edited_captured_event_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: Any, sql: str, problem: str
) -> None:
    conn.execute(sql, {"e": E1["eventID"]})
    conn.commit()
    report = _report(conn, keys, built["coop"])
    assert not report["ok"]
    named = _named(report, problem, "epcis_event")
    assert [p["record"]["id"] for p in named] == [E1["eventID"]], report["problems"]
    if problem == "epcis_event_edited":
        assert named[0]["kind"] == "epcis_capture"


def test_a_captured_event_inserted_with_psql_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: Any
) -> None:
    conn.execute(
        "insert into epcis_events (cooperative_id, event_id, capture_id, event_type,"
        " event_time, hash, event)"
        " select cooperative_id, 'urn:uuid:forged', capture_id, event_type, event_time, hash,"
        " jsonb_set(event, '{eventID}', '\"urn:uuid:forged\"')"
        " from epcis_events where event_id = %(e)s",
        {"e": E1["eventID"]},
    )
    conn.commit()
    report = _report(conn, keys, built["coop"])
    named = _named(report, "epcis_event_unrecorded", "epcis_event")
    assert [p["record"]["id"] for p in named] == ["urn:uuid:forged"]


PARTNER_EDITS: list[tuple[str, str]] = [
    ("update organisation_partners set scopes = '{public_provenance}' where id = %(p)s",
     "partnership_edited"),
    ("update organisation_partners set status = 'ended', ended_at = now(), ended_by = invitee_id"
     " where id = %(p)s", "partnership_edited"),
    ("update organisation_partners set accepted_at = accepted_at - interval '1 year'"
     " where id = %(p)s", "partnership_edited"),
    ("delete from organisation_partners where id = %(p)s", "partnership_missing"),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "problem"), PARTNER_EDITS)
def test_an_edited_partnership_is_named_in_both_chains(
    conn: psycopg.Connection, keys: KeyRing, built: Any, sql: str, problem: str
) -> None:
    conn.execute(sql, {"p": built["partnership"]})
    conn.commit()
    for org in (built["coop"], built["exporter"]):
        report = _report(conn, keys, org)
        named = _named(report, problem, "partnership")
        assert [p["record"]["id"] for p in named] == [str(built["partnership"])], report


def test_a_partnership_inserted_with_psql_is_named(
    conn: psycopg.Connection, keys: KeyRing, built: Any
) -> None:
    other = cooperatives.create_cooperative(conn, "hh-import", "HH", keys=keys)["id"]
    forged = conn.execute(
        "insert into organisation_partners (proposer_id, invitee_id, status, accepted_at)"
        " values (%(a)s, %(b)s, 'active', now()) returning id",
        {"a": built["coop"], "b": other},
    ).fetchone()
    conn.commit()
    assert forged is not None
    report = _report(conn, keys, built["coop"])
    named = _named(report, "partnership_unrecorded", "partnership")
    assert [p["record"]["id"] for p in named] == [str(forged["id"])]


def test_a_deleted_capture_job_leaves_its_events_checked(
    conn: psycopg.Connection, keys: KeyRing, built: Any
) -> None:
    # the events lose their capture_id (on delete set null) but are still held to the chain
    conn.execute("delete from epcis_captures")
    conn.commit()
    assert _report(conn, keys, built["coop"])["ok"]
    conn.execute(
        "update epcis_events set biz_step = 'receiving' where event_id = %(e)s",
        {"e": E1["eventID"]},
    )
    conn.commit()
    named = _named(_report(conn, keys, built["coop"]), "epcis_event_edited", "epcis_event")
    assert [p["record"]["id"] for p in named] == [E1["eventID"]]
