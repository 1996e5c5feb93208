"""Trading partners (trace/partners.py) against the real database: proposed, accepted,
declined and ended by their rules; each change an event in both organisations' chains,
which verify; scopes stated per partnership, never a farm's personal data; one open
partnership per pair, even when both propose at once."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.trace import cooperatives, organisations, partners
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.verification import verify_chain
from tests.factories import make_world


@pytest.fixture
def orgs(conn: psycopg.Connection, keys: KeyRing) -> dict[str, Any]:
    """A cooperative with its farms, an exporter and an importer."""
    coop = make_world(conn, keys=keys, code="ea-tu").coop
    made = {"coop": coop["id"]}
    for code, role in (("bmt-export", "exporter"), ("hh-import", "importer")):
        made[role] = cooperatives.create_cooperative(conn, code, code.upper(), keys=keys)["id"]
        organisations.set_roles(conn, code, [role])
    return made


def _events(conn: psycopg.Connection, org: Any) -> list[dict[str, Any]]:
    return conn.execute(
        "select kind, payload from trace_events"
        " where cooperative_id = %s and kind like 'partnership_%%' order by seq",
        (org,),
    ).fetchall()


def test_a_partnership_is_proposed_accepted_and_ended(
    conn: psycopg.Connection, keys: KeyRing, orgs: dict[str, Any]
) -> None:
    coop, exporter = orgs["coop"], orgs["exporter"]
    proposed = partners.propose(conn, coop, "bmt-export", keys=keys)
    assert proposed["status"] == "proposed" and proposed["proposed_by_us"] is True
    assert (proposed["proposer"], proposed["invitee"]) == ("ea-tu", "bmt-export")
    assert proposed["partner"] == {
        "code": "bmt-export",
        "public_name": "BMT-EXPORT",
        "country": "VN",
        "roles": ["exporter"],
        "gln": None,
    }
    assert proposed["scopes"] == ["public_provenance", "eudr_geolocation"]
    assert not partners.are_partners(conn, coop, exporter)  # not before it is accepted
    assert partners.scopes(conn, exporter, coop) == ()

    # the exporter sees it from its side, and accepts
    seen = partners.get(conn, exporter, proposed["id"])
    assert seen["proposed_by_us"] is False and seen["partner"]["code"] == "ea-tu"
    accepted = partners.accept(conn, exporter, proposed["id"], keys=keys)
    assert accepted["status"] == "active" and accepted["accepted_at"] is not None
    assert partners.are_partners(conn, coop, exporter)
    assert partners.are_partners(conn, exporter, coop)
    assert partners.scopes(conn, exporter, coop) == ("public_provenance", "eudr_geolocation")
    assert partners.scopes(conn, coop, exporter) == ("public_provenance", "eudr_geolocation")
    assert not partners.are_partners(conn, coop, orgs["importer"])

    # either ends it; then they are partners no more, and may start again
    ended = partners.end(conn, coop, proposed["id"], keys=keys)
    assert ended["status"] == "ended" and ended["ended_by"] == "ea-tu"
    assert ended["accepted_at"] is not None
    assert not partners.are_partners(conn, coop, exporter)
    assert partners.scopes(conn, exporter, coop) == ()
    again = partners.propose(conn, exporter, str(coop), keys=keys)  # by id this time
    assert again["id"] != proposed["id"] and again["partner"]["code"] == "ea-tu"
    listed = partners.list_partnerships(conn, coop)
    assert sorted(p["status"] for p in listed) == ["ended", "proposed"]
    assert [p["id"] for p in partners.list_partnerships(conn, coop, status="ended")] == [
        proposed["id"]
    ]
    assert partners.list_partnerships(conn, orgs["importer"]) == []


def test_every_change_is_an_event_in_both_chains_which_verify(
    conn: psycopg.Connection, keys: KeyRing, orgs: dict[str, Any]
) -> None:
    coop, exporter, importer = orgs["coop"], orgs["exporter"], orgs["importer"]
    first = partners.propose(conn, coop, "bmt-export", keys=keys)
    partners.accept(conn, exporter, first["id"], keys=keys)
    partners.end(conn, exporter, first["id"], keys=keys)
    second = partners.propose(conn, importer, "bmt-export", keys=keys)
    partners.decline(conn, exporter, second["id"], keys=keys)
    kinds = ["partnership_proposed", "partnership_accepted", "partnership_ended"]
    assert [e["kind"] for e in _events(conn, coop)] == kinds
    assert [e["kind"] for e in _events(conn, exporter)] == [
        *kinds,
        "partnership_proposed",
        "partnership_declined",
    ]
    assert [e["kind"] for e in _events(conn, importer)] == [
        "partnership_proposed",
        "partnership_declined",
    ]
    # the same facts in both chains: who proposed, to whom, the scopes, who acted
    ours, theirs = _events(conn, coop)[2]["payload"], _events(conn, exporter)[2]["payload"]
    assert ours == theirs
    assert ours == {
        "partnership_id": str(first["id"]),
        "status": "ended",
        "proposer": {"id": str(coop), "code": "ea-tu"},
        "invitee": {"id": str(exporter), "code": "bmt-export"},
        "scopes": ["public_provenance", "eudr_geolocation"],
        "by": "bmt-export",
    }
    for org in (coop, exporter, importer):
        report = verify_chain(conn, org, keys=keys)
        assert report["ok"], report["problems"]
    # and an edit of one is named
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{scopes}', '[]')"
        " where cooperative_id = %s and kind = 'partnership_accepted'",
        (exporter,),
    )
    problems = verify_chain(conn, exporter, keys=keys)["problems"]
    assert "hash_mismatch" in {p["problem"] for p in problems}
    assert {p["kind"] for p in problems} == {"partnership_accepted"}
    assert verify_chain(conn, coop, keys=keys)["ok"]


def test_only_the_invitee_answers_and_only_open_ones_change(
    conn: psycopg.Connection, keys: KeyRing, orgs: dict[str, Any]
) -> None:
    coop, exporter, importer = orgs["coop"], orgs["exporter"], orgs["importer"]
    p = partners.propose(conn, coop, "bmt-export", keys=keys)
    with pytest.raises(Conflict, match="bmt-export accepts or declines it"):
        partners.accept(conn, coop, p["id"], keys=keys)
    with pytest.raises(Conflict, match="accepts or declines it"):
        partners.decline(conn, coop, p["id"], keys=keys)
    # an organisation that is no party to it does not find it, whatever it tries
    for change in (partners.accept, partners.decline, partners.end):
        with pytest.raises(NotFound, match="not one of your organisation's"):
            change(conn, importer, p["id"], keys=keys)
    with pytest.raises(NotFound):
        partners.get(conn, importer, p["id"])
    partners.decline(conn, exporter, p["id"], keys=keys)
    for change in (partners.accept, partners.decline):
        with pytest.raises(Conflict, match="is declined, not a proposal"):
            change(conn, exporter, p["id"], keys=keys)
    with pytest.raises(Conflict, match="declined already; nothing to end"):
        partners.end(conn, coop, p["id"], keys=keys)
    # a proposal its proposer ends is withdrawn: ended, never accepted
    withdrawn = partners.end(
        conn, coop, partners.propose(conn, coop, "bmt-export", keys=keys)["id"], keys=keys
    )
    assert withdrawn["status"] == "ended" and withdrawn["accepted_at"] is None


def test_one_open_partnership_per_pair(
    conn: psycopg.Connection, keys: KeyRing, orgs: dict[str, Any]
) -> None:
    coop, exporter = orgs["coop"], orgs["exporter"]
    p = partners.propose(conn, coop, "bmt-export", keys=keys)
    with pytest.raises(Conflict, match="it awaits their answer"):
        partners.propose(conn, coop, "bmt-export", keys=keys)
    with pytest.raises(Conflict, match=f"accept it \\(POST /v1/partners/{p['id']}/accept\\)"):
        partners.propose(conn, exporter, "ea-tu", keys=keys)
    partners.accept(conn, exporter, p["id"], keys=keys)
    with pytest.raises(Conflict, match="are partners already") as info:
        partners.propose(conn, exporter, "ea-tu", keys=keys)
    assert info.value.details == {"partnership_id": str(p["id"]), "status": "active"}


def test_what_cannot_be_proposed(
    conn: psycopg.Connection, keys: KeyRing, orgs: dict[str, Any]
) -> None:
    coop = orgs["coop"]
    with pytest.raises(RuleViolation, match="its own trading partner") as info:
        partners.propose(conn, coop, "ea-tu", keys=keys)
    assert info.value.rule == "partner_self"
    with pytest.raises(NotFound, match="no organisation has the code or id 'nobody'"):
        partners.propose(conn, coop, "nobody", keys=keys)
    for scopes, reason in (
        ([], "at least one scope"),
        (["farm_private"], "unknown scope 'farm_private'.*never a farm's personal data"),
    ):
        with pytest.raises(ValidationFailed, match=reason):
            partners.propose(conn, coop, "bmt-export", keys=keys, scopes=scopes)
    assert partners.list_partnerships(conn, coop) == []
    with pytest.raises(ValidationFailed):
        partners.list_partnerships(conn, coop, status="paused")
    # the database refuses any other scope too, whatever writes it
    for scopes in (["farm_private"], [], ["public_provenance", "eudr_geolocation", "x"]):
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "insert into organisation_partners (proposer_id, invitee_id, scopes)"
                " values (%s, %s, %s::text[])",
                (coop, orgs["exporter"], scopes),
            )


def test_scopes_are_stated_per_partnership(
    conn: psycopg.Connection, keys: KeyRing, orgs: dict[str, Any]
) -> None:
    coop, exporter, importer = orgs["coop"], orgs["exporter"], orgs["importer"]
    narrow = partners.propose(conn, importer, "bmt-export", keys=keys, scopes=["public_provenance"])
    partners.accept(conn, exporter, narrow["id"], keys=keys)
    wide = partners.propose(
        conn, coop, "bmt-export", keys=keys, scopes=["eudr_geolocation", "public_provenance"]
    )
    partners.accept(conn, exporter, wide["id"], keys=keys)
    assert partners.scopes(conn, importer, exporter) == ("public_provenance",)
    assert partners.scopes(conn, exporter, importer) == ("public_provenance",)
    assert partners.scopes(conn, exporter, coop) == ("public_provenance", "eudr_geolocation")
    assert partners.scopes(conn, importer, coop) == ()  # not partners: nothing
    assert partners.scopes(conn, coop, coop) == partners.SCOPES  # its own data
    assert not partners.are_partners(conn, coop, coop)


def test_two_proposals_at_once_leave_one_partnership(
    db_url: str, keys: KeyRing, conn: psycopg.Connection, orgs: dict[str, Any]
) -> None:
    conn.commit()
    with (
        psycopg.connect(db_url, row_factory=dict_row) as first,
        psycopg.connect(db_url, row_factory=dict_row) as second,
    ):
        partners.propose(first, orgs["coop"], "bmt-export", keys=keys)  # not committed yet
        outcome: dict[str, BaseException | None] = {}

        def other_side() -> None:
            try:
                partners.propose(second, orgs["exporter"], "ea-tu", keys=keys)
                outcome["error"] = None
            except BaseException as exc:  # reported below
                outcome["error"] = exc
                second.rollback()

        thread = threading.Thread(target=other_side)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # waits on the first proposal's pair
        first.commit()
        thread.join(timeout=30)
        assert isinstance(outcome["error"], Conflict), outcome
        assert "has proposed a partnership to your organisation already" in str(outcome["error"])
    (row,) = conn.execute("select status from organisation_partners").fetchall()
    assert row["status"] == "proposed"
    for org in (orgs["coop"], orgs["exporter"]):
        assert verify_chain(conn, org, keys=keys)["ok"]
